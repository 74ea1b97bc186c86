package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/pgarchive/pgarchive/internal/archive"
	"github.com/pgarchive/pgarchive/internal/backlog"
	"github.com/pgarchive/pgarchive/internal/catalog"
	"github.com/pgarchive/pgarchive/internal/crypt"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/metrics"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/sign"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

// NightlyOptions are everything one archive run needs, resolved and
// checked by the caller.
type NightlyOptions struct {
	Database  string
	Prefix    string // cleaned (naming.CleanPrefix)
	Remote    string // the remote's name, recorded with backlog entries
	Source    *archive.Source
	Keys      *keys.Keys
	Signer    *sign.Signer // nil: unsigned
	CheckDump bool
	// Upstreams are the writable upstreams of the remote.
	Upstreams []*remote.Upstream
	// StateDir holds the backlog; "" runs without one.
	StateDir       string
	BacklogMaxSize int64
	// Heal, when set, runs a quick heal of the database after the upload,
	// over the upstreams ReadUpstreams resolves (read-only ones included,
	// as sources), judged under Policy.
	Heal          bool
	ReadUpstreams func(context.Context) ([]*remote.Upstream, error)
	Policy        catalog.Policy
	MetricsDir    string
	// Base makes the archive a base backup (internal/basebackup).
	Base *archive.BaseBackup

	Log     *slog.Logger
	Version string
	Host    string
	Now     func() time.Time
}

// NoTrustWarning is said once per run that reads the store without trusted
// signers.
const NoTrustWarning = "authenticity is not checked: no --trusted-signer is configured, so anyone who can write to the store can plant archives that look genuine"

// ErrInterrupted marks a run stopped by its context (SIGTERM, SIGINT).
var ErrInterrupted = errors.New("interrupted by a signal (SIGTERM or SIGINT)")

// Nightly is the archive run: yesterday's backlog first (a run that heals
// it is what makes a failed night cost nothing), then today's dump, spooled
// to the backlog while it uploads and kept there only if some upstream
// lacks it, then an optional heal. Today's archive failing wins over the
// backlog's failure, which wins over the heal's: the first is what the
// operator must fix first. Every outcome, early failures included, is
// written to the metrics.
func Nightly(ctx context.Context, opt NightlyOptions) (res *archive.Result, err error) {
	defer func() {
		if ctx.Err() != nil {
			err = interrupted(opt.Database, res)
		}
		RecordArchive(opt.MetricsDir, Backlog{Dir: opt.StateDir, MaxBytes: opt.BacklogMaxSize}, opt.Database, res, err, opt.Log)
	}()
	var backlogErr error
	if opt.StateDir != "" {
		backlogErr = RetryBacklog(ctx, RetryOptions{StateDir: opt.StateDir, Database: opt.Database, Upstreams: opt.Upstreams, Log: opt.Log})
	}
	job := archive.Job{
		Database: opt.Database, Prefix: opt.Prefix, Source: opt.Source, Keys: opt.Keys, Upstreams: opt.Upstreams,
		Log: opt.Log, Version: opt.Version, Host: opt.Host, Now: opt.Now, Signer: opt.Signer, CheckDump: opt.CheckDump,
		Base: opt.Base,
	}
	spool := startSpool(opt)
	if spool != nil {
		job.Spool = spool
	}
	res, err = archive.Run(ctx, job)
	if spool != nil {
		keepInBacklog(spool, opt, res)
	}
	var healErr error
	if opt.Heal {
		healErr = healDatabase(ctx, opt)
	}
	switch {
	case err != nil:
		return res, err
	case backlogErr != nil:
		return res, backlogErr
	}
	return res, healErr
}

// startSpool prepares the backlog copy of this run's ciphertext, or says
// why there is none. It never fails the run.
func startSpool(opt NightlyOptions) *backlog.Spool {
	if opt.StateDir == "" {
		return nil
	}
	if src := opt.Source; src.Size >= 0 && crypt.StreamSize(src.Size) > opt.BacklogMaxSize {
		opt.Log.Warn(fmt.Sprintf("backlog: the dump (%s) is larger than --backlog-max-size (%s): if an upstream fails, this archive can't be kept for retry",
			textfmt.Bytes(src.Size), textfmt.Bytes(opt.BacklogMaxSize)))
		return nil
	}
	sp, err := backlog.NewSpool(opt.StateDir, opt.BacklogMaxSize)
	if err != nil {
		opt.Log.Warn(fmt.Sprintf("%v; archiving without a backlog copy", err))
		return nil
	}
	return sp
}

// keepInBacklog keeps the spooled archive if some upstream lacks it and
// drops it otherwise.
func keepInBacklog(sp *backlog.Spool, opt NightlyOptions, res *archive.Result) {
	log := opt.Log
	if res == nil || res.Manifest == nil || res.Failed() == 0 {
		if res != nil && res.SpoolErr != nil && res.Manifest != nil {
			log.Warn(fmt.Sprintf("backlog: %s could not have been kept had an upstream failed: %v", res.Key, res.SpoolErr))
		}
		sp.Discard()
		return
	}
	k := backlog.Keep{Key: res.Key, Remote: opt.Remote, Size: res.Manifest.Ciphertext.Size, Manifest: res.ManifestBody,
		Signature: res.Signature, LastErrors: map[string]string{}}
	for _, o := range res.Outcomes {
		if o.Err != nil {
			k.Pending = append(k.Pending, o.Upstream)
			k.LastErrors[o.Upstream] = o.Err.Error()
		} else {
			k.Held = append(k.Held, o.Upstream)
		}
	}
	pending := strings.Join(k.Pending, ", ")
	if !res.Spooled {
		sp.Discard()
		log.Error(fmt.Sprintf("backlog: %s was NOT kept for %s (%v); run pgarchive heal once the upstream is back", res.Key, pending, res.SpoolErr), "archive", res.Key)
		return
	}
	if err := sp.Keep(k, log); err != nil {
		log.Error(fmt.Sprintf("backlog: %s was NOT kept for %s: %v", res.Key, pending, err), "archive", res.Key)
		return
	}
	log.Warn(fmt.Sprintf("backlog: kept %s (%s) in %s for %s; the next archive of %s or pgarchive retry uploads it",
		res.Key, textfmt.Bytes(res.Manifest.Ciphertext.Size), backlog.Root(opt.StateDir), pending, res.Manifest.Database), "archive", res.Key)
}

// healDatabase runs a quick heal of the database over every upstream.
func healDatabase(ctx context.Context, opt NightlyOptions) error {
	ups, err := opt.ReadUpstreams(ctx)
	if err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	if opt.Policy.Trusted == nil {
		opt.Log.Warn(NoTrustWarning)
	}
	cat, err := catalog.Scan(ctx, ups, opt.Prefix, opt.Database, opt.Policy)
	if err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	return Heal(ctx, HealOptions{Catalog: cat, Upstreams: ups, Database: opt.Database, Quick: true, MetricsDir: opt.MetricsDir, Log: opt.Log})
}

// interrupted says what a run stopped by a signal left: no upload it had
// started gets a manifest (S3 multipart uploads are aborted), the dump is
// untouched, and copies completed before the signal stay.
func interrupted(db string, res *archive.Result) error {
	left := "no archive was stored: uploads in flight were aborted and got no manifest"
	if res != nil && res.Manifest != nil {
		if held := len(res.Outcomes) - res.Failed(); held > 0 {
			left = fmt.Sprintf("%s is complete on %d of %d upstreams; the rest got no manifest", res.Key, held, len(res.Outcomes))
		}
	}
	return fmt.Errorf("%s: archive %w; %s; the dump is untouched", db, ErrInterrupted, left)
}

// Backlog is where an archive host keeps its backlog (Dir, --state-dir; ""
// for none) and how large it may grow.
type Backlog struct {
	Dir      string
	MaxBytes int64
}

// RecordArchive writes one archive run's metrics: per upstream whether it
// holds the new archive, its size and how long it took, and what this
// database still has in the backlog. A run that failed before it had a
// result (no dump, no key) is a failure everywhere. Metrics are a side
// channel: a failure to write them is logged, never the run's outcome.
func RecordArchive(dir string, bl Backlog, db string, res *archive.Result, runErr error, log *slog.Logger) {
	if dir == "" {
		return
	}
	run := metrics.ArchiveRun{Database: db, Time: time.Now()}
	switch {
	case res != nil:
		for _, o := range res.Outcomes {
			u := metrics.UpstreamRun{Name: o.Upstream, OK: o.Err == nil, Duration: o.Duration}
			if res.Manifest != nil {
				u.Bytes = res.Manifest.Ciphertext.Size
			}
			run.Upstreams = append(run.Upstreams, u)
		}
	case runErr != nil:
		run.FailedEarly = true
	default:
		return
	}
	if bl.Dir != "" {
		run.BacklogMax = bl.MaxBytes
		sum, err := backlog.Usage(bl.Dir)
		if err != nil {
			log.Warn(fmt.Sprintf("archive: backlog size for metrics: %v", err))
		}
		d := sum.Databases[db]
		run.BacklogArchives, run.BacklogBytes = d.Archives, d.Bytes
	}
	if err := metrics.WriteArchive(dir, run); err != nil {
		log.Warn(fmt.Sprintf("archive: writing metrics: %v", err))
	}
}
