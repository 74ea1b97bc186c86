package walarchive

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pgarchive/pgarchive/internal/atomicfile"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// Asynchronous archiving (wal-push --async), as pgBackRest's archive-async:
// PostgreSQL's archive_command only waits for a marker, while one
// long-running uploader per data directory pushes every file PostgreSQL
// has marked ready (pg_wal/archive_status/*.ready), several at once and
// ahead of the calls, over connections it keeps. Nothing is acknowledged
// before it is durable: the uploader writes the marker ok/<file> (fsynced,
// renamed into place) only after Push returned nil, that is after the
// durability policy held; archive_command exits 0 only on that marker.
//
// Layout, below <data directory>/pg_wal/pgarchive-async/:
//
//	uploader.lock  flock'd by the running uploader
//	ok/<file>      pushed and durable; removed by the archive_command that acknowledges it
//	error/<file>   the last push failed: its message (the uploader retries)
type AsyncSpool struct{ Dir string }

// SpoolFor is the spool of the cluster in dataDir.
func SpoolFor(dataDir string) AsyncSpool {
	return AsyncSpool{Dir: filepath.Join(dataDir, "pg_wal", "pgarchive-async")}
}

func (s AsyncSpool) ok(name string) string    { return filepath.Join(s.Dir, "ok", name) }
func (s AsyncSpool) error(name string) string { return filepath.Join(s.Dir, "error", name) }
func (s AsyncSpool) lock() string             { return filepath.Join(s.Dir, "uploader.lock") }

// Running reports whether an uploader holds the spool's lock.
func (s AsyncSpool) Running() bool { return held(s.lock()) }

// ErrNotYet is Wait's answer when the uploader has not finished the file
// in time: PostgreSQL calls again.
var ErrNotYet = errors.New("not archived yet")

// Wait waits up to timeout for the uploader's verdict on name. On ok it
// removes the marker (PostgreSQL now marks the file done) and returns nil;
// a failure comes back as the uploader's message; start is called (at
// most every few seconds) while no uploader runs.
func (s AsyncSpool) Wait(ctx context.Context, name string, timeout time.Duration, start func() error) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var lastStart time.Time
	for {
		if _, err := os.Stat(s.ok(name)); err == nil {
			os.Remove(s.ok(name))
			os.Remove(s.error(name))
			return nil
		}
		if msg, err := os.ReadFile(s.error(name)); err == nil && len(msg) > 0 {
			os.Remove(s.error(name))
			return errors.New(strings.TrimSpace(string(msg)))
		}
		if time.Since(lastStart) > 3*time.Second && !s.Running() {
			lastStart = time.Now()
			if err := start(); err != nil {
				return fmt.Errorf("starting the uploader: %w", err)
			}
		}
		if time.Now().After(deadline) {
			return ErrNotYet
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// UploaderOptions run the uploader.
type UploaderOptions struct {
	Push PushOptions // Path is set per file
	Jobs int         // files pushed at once
	// IdleExit ends the uploader after this long without work; 0 never.
	IdleExit time.Duration
	Log      *slog.Logger
}

// RunUploader pushes every ready file of opt.Push.DataDir until idle. It
// returns at once (nil) when another uploader holds the lock.
func (s AsyncSpool) RunUploader(ctx context.Context, opt UploaderOptions) error {
	for _, d := range []string{"ok", "error"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o700); err != nil {
			return err
		}
	}
	f, ok, err := tryLock(s.lock())
	if err != nil || !ok {
		return err // !ok: another uploader runs
	}
	defer f.Close()
	jobs := max(opt.Jobs, 1)
	var mu sync.Mutex
	busy := map[string]bool{}
	failedAt := map[string]time.Time{}
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	idleSince := time.Now()
	opt.Log.Info(fmt.Sprintf("wal-push uploader started for %s (%d at once)", opt.Push.DataDir, jobs))
	for ctx.Err() == nil {
		ready := s.ready(opt.Push.DataDir)
		started := 0
		for _, name := range ready {
			mu.Lock()
			skip := busy[name] || time.Since(failedAt[name]) < 5*time.Second
			if !skip {
				busy[name] = true
			}
			mu.Unlock()
			if skip {
				continue
			}
			if _, err := os.Stat(s.ok(name)); err == nil {
				mu.Lock()
				delete(busy, name)
				mu.Unlock()
				continue
			}
			started++
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				err := s.pushOne(ctx, opt.Push, name)
				mu.Lock()
				delete(busy, name)
				if err != nil {
					failedAt[name] = time.Now()
				} else {
					delete(failedAt, name)
				}
				mu.Unlock()
			}()
		}
		mu.Lock()
		working := len(busy) > 0
		mu.Unlock()
		if started > 0 || working {
			idleSince = time.Now()
		} else if opt.IdleExit > 0 && time.Since(idleSince) > opt.IdleExit {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	wg.Wait()
	opt.Log.Info("wal-push uploader stopped")
	return nil
}

// pushOne pushes one ready file and leaves its marker.
func (s AsyncSpool) pushOne(ctx context.Context, base PushOptions, name string) error {
	opt := base
	opt.Path = filepath.Join("pg_wal", name)
	_, err := Push(ctx, opt)
	if err != nil {
		_ = atomicfile.WriteBytes(s.error(name), []byte(err.Error()+"\n"), atomicfile.Options{})
		return err
	}
	os.Remove(s.error(name))
	return atomicfile.WriteBytes(s.ok(name), []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), atomicfile.Options{})
}

// ready lists the files PostgreSQL waits to have archived: history files
// first (a new timeline's), then oldest first.
func (s AsyncSpool) ready(dataDir string) []string {
	ents, _ := os.ReadDir(filepath.Join(dataDir, "pg_wal", "archive_status"))
	var out []string
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".ready")
		if !ok {
			continue
		}
		if _, err := walname.Parse(name); err == nil {
			out = append(out, name)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		hi, hj := strings.HasSuffix(out[i], ".history"), strings.HasSuffix(out[j], ".history")
		if hi != hj {
			return hi
		}
		return out[i] < out[j]
	})
	return out
}
