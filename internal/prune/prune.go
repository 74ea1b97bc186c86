package prune

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/retention"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

// ProbeName is the object prune writes and deletes under the prefix to learn
// whether an upstream accepts deletes before it deletes anything. The
// catalog ignores it (it is no archive name), and its name is fixed so that
// an upstream refusing deletes keeps one probe, not one per run.
const ProbeName = ".pgarchive-prune-probe"

// parallel bounds the archives being deleted at once; each one's own
// deletions run on all its upstreams together.
const parallel = 8

// Options say what to prune.
type Options struct {
	Policy    retention.Policy
	Now       time.Time // keep-within counts back from here; zero: time.Now()
	Databases []string  // nil: every database in the catalog
	// Deletable says per catalog upstream whether prune may delete there:
	// false for read-only (:ro) union members, whose copies stay.
	Deletable []bool
	DryRun    bool
	// RemoveUntrusted plans untrusted archives (no valid signature by a
	// trusted key) for removal; without it they are never deleted.
	RemoveUntrusted bool
	// UploadsOlderThan, when positive, makes prune abort the unfinished
	// multipart uploads older than it under the prefix (S3 stores): the
	// leftovers of runs killed mid-upload. Younger ones are never touched.
	UploadsOlderThan time.Duration
	Log              *slog.Logger
}

// Run plans each database and, unless DryRun, applies the plans. It refuses
// to plan when an upstream could not be listed (the plan could not see its
// copies) and deletes nothing at all unless every upstream it would touch
// accepts a delete first. Deletion failures are logged per archive and
// upstream and make the returned error non-nil after everything else was
// done; the next run retries them.
func Run(ctx context.Context, ups []*remote.Upstream, cat *catalog.Catalog, prefix string, opt Options) (*Result, error) {
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	log := opt.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := unlisted(cat); err != nil {
		return nil, err
	}
	if err := opt.Policy.Validate(); err != nil {
		return nil, err
	}
	dbs := opt.Databases
	if len(dbs) == 0 {
		dbs = cat.Databases()
	}
	res := &Result{DryRun: opt.DryRun, Now: opt.Now.UTC(), Upstreams: cat.Upstreams}
	var work []job
	for _, db := range dbs {
		archives := OfDatabase(cat, db)
		if len(archives) == 0 {
			log.Warn(fmt.Sprintf("prune: no archives of database %s found; nothing to do for it", db), "database", db)
		}
		archives, unjudged := Unjudged(archives)
		archives, suspects := Suspects(archives)
		plan, err := opt.Policy.Plan(Items(archives), opt.Now)
		if err != nil {
			return nil, fmt.Errorf("database %s: %w", db, err)
		}
		skipped, doomed := judgeSuspects(suspects, opt.RemoveUntrusted)
		plan.Remove = append(plan.Remove, doomed...)
		archives = append(archives, suspects...)
		d := Database{Database: db, Plan: plan, Kept: len(plan.Keep), Archives: rows(plan), Skipped: len(unjudged) + len(skipped)}
		d.Archives = append(d.Archives, skipped...)
		for _, s := range skipped {
			log.Warn(fmt.Sprintf("prune: %s: %s", s.Archive, strings.Join(s.Reasons, ", ")), "database", db, "archive", s.Archive)
		}
		for _, a := range unjudged {
			why := fmt.Sprintf("manifest unreadable (%v): left alone, never deleted unread", a.ManifestErr)
			d.Archives = append(d.Archives, Archive{Archive: a.Name.Base(), Key: a.Key, Created: a.Name.Created,
				Action: "skip", Reasons: []string{why}})
			log.Warn(fmt.Sprintf("prune: %s: %s", a.Name.Base(), why), "database", db, "archive", a.Name.Base())
		}
		for i, n := range KeptCopies(plan, archives, len(cat.Upstreams)) {
			d.Upstreams = append(d.Upstreams, UpstreamCount{Upstream: cat.Upstreams[i], Kept: n})
		}
		res.Databases = append(res.Databases, d)
		for _, r := range Removals(plan, archives, opt.Deletable) {
			work = append(work, job{db: len(res.Databases) - 1, removal: r})
		}
	}
	if !opt.DryRun && len(work) > 0 {
		var rs []Removal
		for _, w := range work {
			rs = append(rs, w.removal)
		}
		if err := probeAll(ctx, ups, Touched(rs), prefix); err != nil {
			return nil, err
		}
		apply(ctx, ups, work)
	}
	failed := record(res, work)
	for _, w := range work {
		if !opt.DryRun && len(touchedBy(w.removal)) > 0 {
			logOutcome(log, res, w)
		}
	}
	uploadsErr := cleanUploads(ctx, ups, prefix, opt, res, log)
	log.Info(res.Summary())
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if failed > 0 {
		return res, fmt.Errorf("prune could not completely remove %s (see the errors above); the next prune retries", textfmt.Plural(failed, "archive"))
	}
	return res, uploadsErr
}

// cleanUploads finds the unfinished uploads old enough to be abandoned and,
// unless this is a dry run, aborts them; res.Uploads lists them (dry run:
// those that would be aborted).
func cleanUploads(ctx context.Context, ups []*remote.Upstream, prefix string, opt Options, res *Result, log *slog.Logger) error {
	if opt.UploadsOlderThan <= 0 || ctx.Err() != nil {
		return nil
	}
	found := Uploads(ctx, ups, prefix, opt.UploadsOlderThan, opt.Now, log)
	if opt.DryRun || len(found) == 0 {
		res.Uploads = found
		for _, u := range found {
			log.Info(fmt.Sprintf("prune --dry-run: would abort the unfinished upload of %s on %s (started %s)", u.Key, u.Upstream, u.Initiated.UTC().Format(time.RFC3339)))
		}
		return nil
	}
	aborted, err := AbortUploads(ctx, ups, prefix, opt.UploadsOlderThan, found, log)
	res.Uploads = aborted
	if err != nil {
		log.Error("prune: " + err.Error())
		return fmt.Errorf("prune could not abort every unfinished upload: %w", err)
	}
	return nil
}

// unlisted refuses a prune over an incomplete view: an upstream that could
// not be listed may hold the only complete copy of an archive, which would
// then be planned as incomplete and removed everywhere else.
func unlisted(cat *catalog.Catalog) error {
	bad := cat.ListFailures()
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("prune refused: could not list upstream %s, which may hold copies the plan would not see; nothing was deleted", strings.Join(bad, "; "))
}

// job is one removal and what became of it.
type job struct {
	db      int // index into Result.Databases
	removal Removal
	errs    map[int]error // per upstream
	done    []int         // upstreams where every object was deleted
}

func rows(plan retention.Plan) []Archive {
	out := []Archive{} // [] rather than null in JSON
	add := func(ds []retention.Decision, action string) {
		for _, d := range ds {
			out = append(out, Archive{Archive: path.Base(d.ID), Key: d.ID, Created: d.Time.UTC(),
				Complete: d.Complete, Action: action, Reasons: d.Reasons})
		}
	}
	add(plan.Keep, "keep")
	add(plan.Remove, "remove")
	sortRows(out, plan)
	return out
}

// sortRows orders rows newest first, as the planner orders items.
func sortRows(rs []Archive, plan retention.Plan) {
	item := map[string]retention.Item{}
	for _, ds := range [][]retention.Decision{plan.Keep, plan.Remove} {
		for _, d := range ds {
			item[d.ID] = d.Item
		}
	}
	sort.SliceStable(rs, func(i, j int) bool { return retention.Newer(item[rs[i].Key], item[rs[j].Key]) })
}

// probeAll checks, concurrently, that every touched upstream accepts a
// delete. Each probe removes itself where it can, so a refusal elsewhere
// leaves nothing behind on the upstreams that do accept deletes.
func probeAll(ctx context.Context, ups []*remote.Upstream, touched []int, prefix string) error {
	errs := make([]error, len(touched))
	var wg sync.WaitGroup
	for k, i := range touched {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = probe(ctx, ups[i], path.Join(prefix, ProbeName))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

var probeText = []byte("pgarchive prune wrote this to check that it may delete here before deleting archives; safe to remove\n")

func probe(ctx context.Context, u *remote.Upstream, key string) error {
	obj, err := remote.Put(ctx, u, key, bytes.NewReader(probeText), int64(len(probeText)), time.Now())
	if err != nil {
		return fmt.Errorf("upstream %s: could not write the delete probe %s (%v): prune needs credentials that may write and delete there; nothing was deleted", u.Name, key, err)
	}
	err = obj.Remove(ctx)
	if err == nil {
		return nil
	}
	if why := denial(err); why != "" {
		return fmt.Errorf("upstream %s refuses deletes (%s): prune needs credentials that may delete; nothing was deleted (the probe object %s stays there)", u.Name, why, key)
	}
	return fmt.Errorf("upstream %s: could not delete the probe object %s (%v); nothing was deleted", u.Name, key, err)
}

// denial names a permission error, or returns "" for other failures. S3
// SDK errors carry a code (AccessDenied); local folders return EACCES.
func denial(err error) string {
	var coded interface{ ErrorCode() string }
	if errors.As(err, &coded) && coded.ErrorCode() != "" {
		return coded.ErrorCode()
	}
	if errors.Is(err, os.ErrPermission) {
		return "permission denied"
	}
	return ""
}

// apply runs every removal, at most parallel archives at once.
func apply(ctx context.Context, ups []*remote.Upstream, work []job) {
	var g errgroup.Group
	g.SetLimit(parallel)
	for k := range work {
		g.Go(func() error {
			if ctx.Err() == nil {
				work[k].errs, work[k].done = removeArchive(ctx, ups, work[k].removal)
			}
			return nil
		})
	}
	_ = g.Wait()
}

// removeArchive deletes the manifests on every upstream, waits for all of
// them, then deletes the data objects on the upstreams whose manifest is
// gone.
func removeArchive(ctx context.Context, ups []*remote.Upstream, r Removal) (map[int]error, []int) {
	errs := map[int]error{}
	var mu sync.Mutex
	run := func(ts []Target, what string) {
		var wg sync.WaitGroup
		for _, t := range ts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := remote.Remove(ctx, ups[t.Upstream], t.Key); err != nil {
					mu.Lock()
					errs[t.Upstream] = errors.Join(errs[t.Upstream], fmt.Errorf("deleting %s %s: %w", what, t.Key, err))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
	}
	run(r.Manifests, "manifest")
	dataRan := ctx.Err() == nil
	if dataRan {
		failed := map[int]bool{}
		for i := range errs {
			failed[i] = true
		}
		run(r.DataAfter(failed), "data object")
	}
	hasData := map[int]bool{}
	for _, t := range r.Data {
		hasData[t.Upstream] = true
	}
	var done []int
	for _, i := range touchedBy(r) {
		if errs[i] == nil && (dataRan || !hasData[i]) {
			done = append(done, i)
		}
	}
	return errs, done
}

func touchedBy(r Removal) []int { return Touched([]Removal{r}) }

// deleteObject deletes key on u; an object that is already gone counts as
// deleted (another prune, or an operator, got there first).

// record folds the jobs into the result's rows and counts and returns how
// many archives failed.
func record(res *Result, work []job) int {
	failedTotal := 0
	for _, w := range work {
		d := &res.Databases[w.db]
		row := findRow(d.Archives, w.removal.Archive.Key)
		for _, i := range w.removal.LeftOn {
			row.LeftOn = append(row.LeftOn, res.Upstreams[i])
		}
		if len(touchedBy(w.removal)) == 0 {
			d.ReadOnly++
			continue
		}
		if res.DryRun {
			d.Removed++
			for _, i := range touchedBy(w.removal) {
				d.Upstreams[i].Removed++
			}
			continue
		}
		for _, i := range w.done {
			row.RemovedFrom = append(row.RemovedFrom, res.Upstreams[i])
			d.Upstreams[i].Removed++
		}
		failed := len(w.done) < len(touchedBy(w.removal))
		for _, i := range touchedBy(w.removal) {
			if err := w.errs[i]; err != nil {
				row.Errors = append(row.Errors, fmt.Sprintf("%s: %v", res.Upstreams[i], err))
				d.Upstreams[i].Failed++
			}
		}
		if failed {
			if len(row.Errors) == 0 {
				row.Errors = append(row.Errors, "interrupted")
			}
			d.Failed++
			failedTotal++
		} else {
			d.Removed++
		}
	}
	return failedTotal
}

func findRow(rows []Archive, key string) *Archive {
	for i := range rows {
		if rows[i].Key == key {
			return &rows[i]
		}
	}
	panic("prune: no row for " + key) // rows are built from the same plan
}

func logOutcome(log *slog.Logger, res *Result, w job) {
	d := res.Databases[w.db]
	row := findRow(d.Archives, w.removal.Archive.Key)
	attrs := []any{"database", d.Database, "archive", row.Archive}
	if len(row.Errors) == 0 {
		log.Info(row.describe(), attrs...)
		return
	}
	if len(w.errs) == 0 {
		log.Error(fmt.Sprintf("prune: %s: interrupted before all its objects were deleted; the next prune retries", row.Archive), attrs...)
	}
	for _, i := range touchedBy(w.removal) {
		if err := w.errs[i]; err != nil {
			log.Error(fmt.Sprintf("prune: %s on %s: %v", row.Archive, res.Upstreams[i], err), append(attrs, "upstream", res.Upstreams[i])...)
		}
	}
	if len(row.RemovedFrom) > 0 {
		log.Warn(fmt.Sprintf("prune: %s removed only from %s; the next prune retries the rest", row.Archive, strings.Join(row.RemovedFrom, ", ")), attrs...)
	}
}
