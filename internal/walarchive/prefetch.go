package walarchive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pgarchive/pgarchive/internal/atomicfile"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// Prefetching (wal-fetch): recovery asks restore_command for one segment
// at a time and waits for each. The prefetcher, started by the first
// wal-fetch of a segment and running beside recovery, fetches the next
// segments of the timeline (checked exactly as wal-fetch checks them) into
// <data directory>/pg_wal/pgarchive-prefetch/<file>, renamed into place
// only once whole; restore_command then just renames the file into %p
// (restore-cluster writes that into restore_command, so most calls start
// no pgarchive at all). Only verified files ever appear there, in the
// recovering cluster's own 0700 directory.
type PrefetchSpool struct{ Dir string }

// PrefetchDir is the spool's path relative to the data directory, as
// restore_command uses it.
const PrefetchDir = "pg_wal/pgarchive-prefetch"

// PrefetchFor is the spool of the cluster in dataDir.
func PrefetchFor(dataDir string) PrefetchSpool {
	return PrefetchSpool{Dir: filepath.Join(dataDir, filepath.FromSlash(PrefetchDir))}
}

func (p PrefetchSpool) want() string { return filepath.Join(p.Dir, "want") }
func (p PrefetchSpool) lock() string { return filepath.Join(p.Dir, "prefetcher.lock") }

// Take moves a prefetched file into dest; ok is false when there is none
// (or name is no WAL file name: it never leaves the spool directory).
func (p PrefetchSpool) Take(name, dest string) bool {
	if _, err := walname.Parse(name); err != nil {
		return false
	}
	return os.Rename(filepath.Join(p.Dir, name), dest) == nil
}

// Want tells the prefetcher which segment recovery needs next.
func (p PrefetchSpool) Want(name string) error {
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return err
	}
	return atomicfile.WriteBytes(p.want(), []byte(name), atomicfile.Options{})
}

// Running reports whether a prefetcher holds the lock.
func (p PrefetchSpool) Running() bool {
	return held(p.lock())
}

// PrefetchOptions run the prefetcher.
type PrefetchOptions struct {
	Fetch   FetchOptions // File and Dest are set per file
	SegSize int64
	Ahead   int // segments kept ready beyond the one recovery needs
	Jobs    int // fetched at once
	// IdleExit ends the prefetcher once recovery has asked for nothing new
	// for this long; the spool is then emptied.
	IdleExit time.Duration
	Log      *slog.Logger
}

// Run prefetches until idle. It returns at once when another prefetcher
// runs.
func (p PrefetchSpool) Run(ctx context.Context, opt PrefetchOptions) error {
	if err := os.MkdirAll(p.Dir, 0o700); err != nil {
		return err
	}
	f, ok, err := tryLock(p.lock())
	if err != nil || !ok {
		return err // !ok: another prefetcher runs
	}
	defer f.Close()
	defer p.empty()
	var (
		mu      sync.Mutex
		busy    = map[string]bool{}
		placed  = map[string]uint64{} // files put in the spool, by segment number
		missing = map[string]bool{}   // not archived (yet): not asked again until want moves
		wg      sync.WaitGroup
		sem     = make(chan struct{}, max(opt.Jobs, 1))
		last    = time.Now()
		want    string
	)
	for ctx.Err() == nil {
		if _, err := os.Stat(p.Dir); err != nil {
			break // the data directory is gone (a drill's scratch cluster, removed)
		}
		w, tli, next, ok := p.next(opt.SegSize, placed, &mu)
		if ok && w != want {
			want, last = w, time.Now()
			mu.Lock()
			clear(missing)
			mu.Unlock()
		}
		if time.Since(last) > opt.IdleExit {
			break
		}
		if ok {
			for i := uint64(0); i < uint64(max(opt.Ahead, 1)); i++ {
				name := walname.SegmentName(tli, next+i, opt.SegSize)
				mu.Lock()
				skip := busy[name] || missing[name]
				_, have := placed[name]
				mu.Unlock()
				if skip || have {
					continue
				}
				if _, err := os.Stat(filepath.Join(p.Dir, name)); err == nil {
					continue
				}
				mu.Lock()
				busy[name] = true
				mu.Unlock()
				sem <- struct{}{}
				wg.Add(1)
				go func(name string, n uint64) {
					defer wg.Done()
					defer func() { <-sem }()
					err := p.fetchOne(ctx, opt, name)
					mu.Lock()
					delete(busy, name)
					if err == nil {
						placed[name] = n
					} else {
						missing[name] = true
					}
					mu.Unlock()
				}(name, next+i)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	wg.Wait()
	return nil
}

// next reads which segment recovery needs: the one after the newest
// placed file that was taken, or what wal-fetch last asked for.
func (p PrefetchSpool) next(segSize int64, placed map[string]uint64, mu *sync.Mutex) (string, uint32, uint64, bool) {
	b, _ := os.ReadFile(p.want())
	w := strings.TrimSpace(string(b))
	f, err := walname.Parse(w)
	if err != nil || f.Kind != walname.Segment {
		return "", 0, 0, false
	}
	n, err := f.SegNo(segSize)
	if err != nil {
		return "", 0, 0, false
	}
	mu.Lock()
	defer mu.Unlock()
	for name, m := range placed {
		if _, err := os.Stat(filepath.Join(p.Dir, name)); errors.Is(err, os.ErrNotExist) {
			delete(placed, name) // taken by restore_command
			if g, _ := walname.Parse(name); g.Timeline == f.Timeline && m+1 > n {
				n = m + 1
			}
		}
	}
	name := walname.SegmentName(f.Timeline, n, segSize)
	if name != w {
		_ = atomicfile.WriteBytes(p.want(), []byte(name), atomicfile.Options{})
	}
	return name, f.Timeline, n, true
}

// fetchOne fetches name into the spool, checked as wal-fetch checks it.
func (p PrefetchSpool) fetchOne(ctx context.Context, opt PrefetchOptions, name string) error {
	fo := opt.Fetch
	fo.File = name
	fo.Dest = filepath.Join(p.Dir, name)
	fo.Log = slog.New(slog.DiscardHandler) // the foreground call reports problems
	_, err := Fetch(ctx, fo)
	if err != nil && !errors.Is(err, ErrNotFound) {
		opt.Log.Debug(fmt.Sprintf("prefetch %s: %v", name, err))
	}
	return err
}

// empty removes what recovery did not take.
func (p PrefetchSpool) empty() {
	ents, _ := os.ReadDir(p.Dir)
	for _, e := range ents {
		if _, err := walname.Parse(e.Name()); err == nil || e.Name() == "want" {
			os.Remove(filepath.Join(p.Dir, e.Name()))
		}
	}
}
