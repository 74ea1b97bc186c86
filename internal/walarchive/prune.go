package walarchive

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// PrunePlan picks the WAL files no kept base backup can need. Recovery
// from a backup on timeline T starting in segment S reads segments of T
// from S on, and of timelines after T, which branch off at or after S if
// they are its descendants; so a file of timeline t, segment s is needed
// by that backup unless t < T or s < S. A file is removed only when every
// kept backup agrees. History files are always kept (they are tiny and
// name the timelines' ancestry). Without a kept backup nothing is removed:
// WAL alone restores nothing, but its absence could be a listing problem.
// The decision compares (timeline, segment) pairs, never file names: those
// sort every segment of timeline 1 before any of timeline 2.
func PrunePlan(files []walname.File, kept []*manifest.Base, segSize int64) []walname.File {
	if len(kept) == 0 {
		return nil
	}
	type start struct {
		tli uint32
		seg uint64
	}
	var starts []start
	for _, b := range kept {
		lsn, _, err := b.Range()
		if err != nil {
			return nil // a kept backup we cannot read: keep everything
		}
		starts = append(starts, start{b.Timeline, lsn.SegNo(segSize)})
	}
	var out []walname.File
	for _, f := range files {
		if f.Kind == walname.History {
			continue
		}
		s, err := f.SegNo(segSize)
		if err != nil {
			continue
		}
		needed := false
		for _, st := range starts {
			if !(f.Timeline < st.tli || s < st.seg) {
				needed = true
				break
			}
		}
		if !needed {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// PruneResult counts what Prune did.
type PruneResult struct {
	Removed int      // files gone from every deletable upstream
	Errors  []string // one per file and upstream that failed
}

// Prune deletes files of c from every upstream that deletes (never a
// read-only member): the manifest first, so a file half deleted reads as
// a push cut short, never as archived with its data missing.
func Prune(ctx context.Context, ups []*remote.Upstream, prefix string, c walname.Cluster, files []walname.File, log *slog.Logger) PruneResult {
	var res PruneResult
	var mu sync.Mutex
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for _, f := range files {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			key := c.Key(prefix, f.Name)
			ok := true
			for _, u := range ups {
				if !u.Deletes() || u.Err != nil {
					continue
				}
				for _, k := range []string{key + naming.ManifestSuffix, key + naming.SignatureSuffix, key} {
					if err := remote.Remove(ctx, u, k); err != nil {
						ok = false
						mu.Lock()
						res.Errors = append(res.Errors, fmt.Sprintf("%s on %s: %v", k, u.Name, err))
						mu.Unlock()
						log.Error(fmt.Sprintf("prune: WAL %s: deleting %s on %s: %v", f.Name, k, u.Name, err), "upstream", u.Name)
						break
					}
				}
			}
			if ok {
				mu.Lock()
				res.Removed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return res
}

// ClusterPrune is one cluster's WAL prune.
type ClusterPrune struct {
	Cluster walname.Cluster
	Kept    int            // base backups kept
	Remove  []walname.File // planned
	Result  PruneResult    // done (zero in a dry run)
}

// PruneAll plans (and unless dryRun applies) the WAL prune of every
// cluster in invs, keeping what the base backups in bases need. bases are
// each cluster's base backups that stay after the archive prune.
func PruneAll(ctx context.Context, ups []*remote.Upstream, prefix string, invs []*Inventory, bases map[walname.Cluster][]*manifest.Base, dryRun bool, log *slog.Logger) []ClusterPrune {
	var out []ClusterPrune
	for _, inv := range invs {
		kept := bases[inv.Cluster]
		cp := ClusterPrune{Cluster: inv.Cluster, Kept: len(kept)}
		var all []walname.File
		seen := map[string]bool{}
		for _, u := range inv.Upstreams {
			for _, f := range u.Files {
				if !seen[f.Name] {
					seen[f.Name] = true
					all = append(all, f)
				}
			}
		}
		cp.Remove = PrunePlan(all, kept, inv.SegSize)
		if len(kept) == 0 {
			log.Warn(fmt.Sprintf("prune: WAL of %s kept whole: no base backup of it is kept", inv.Cluster))
		}
		if !dryRun && len(cp.Remove) > 0 {
			cp.Result = Prune(ctx, ups, prefix, inv.Cluster, cp.Remove, log)
			log.Info(fmt.Sprintf("prune: WAL of %s: removed %d files no kept base backup needs (%d base backups kept)", inv.Cluster, cp.Result.Removed, cp.Kept))
		}
		out = append(out, cp)
	}
	return out
}
