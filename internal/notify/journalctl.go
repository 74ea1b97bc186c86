package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Journal reads entries through journalctl, which knows every journal file
// format and the access rules (root or the systemd-journal group sees the
// system journal; others see their own entries only).
type Journal struct {
	Path    string        // journalctl; "" means look it up on PATH
	Timeout time.Duration // per query
}

// Read runs the queries in order and returns the entries of the first one
// that finds any. warnings carries what journalctl said on stderr (such as
// a hint about missing permissions); err is set when no query could run.
func (j Journal) Read(ctx context.Context, qs []Query) (entries []Entry, used Query, warnings []string, err error) {
	path := j.Path
	if path == "" {
		if path, err = exec.LookPath("journalctl"); err != nil {
			return nil, Query{}, nil, errors.New("journalctl not found on PATH")
		}
	}
	var errs []string
	for _, q := range qs {
		es, warn, err := j.run(ctx, path, q)
		warnings = append(warnings, warn...)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", q.Why, err))
			continue
		}
		if q.ByUnit {
			es = LastRun(es)
		}
		if len(es) > 0 {
			return es, q, warnings, nil
		}
	}
	if len(errs) > 0 && len(errs) == len(qs) {
		return nil, Query{}, warnings, fmt.Errorf("journalctl failed: %s", strings.Join(errs, "; "))
	}
	return nil, Query{}, warnings, nil
}

func (j Journal) run(ctx context.Context, path string, q Query) ([]Entry, []string, error) {
	if j.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, j.Timeout)
		defer cancel()
	}
	// --all: long and unprintable fields are printed too, not as null.
	args := append([]string{"--no-pager", "--all", "-o", "json"}, q.Args...)
	cmd := exec.CommandContext(ctx, path, args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	runErr := cmd.Run()
	var warnings []string
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if l = strings.TrimSpace(l); l != "" && len(warnings) < 5 {
			warnings = append(warnings, "journalctl: "+clip(flatten(l), 300))
		}
	}
	if runErr != nil {
		if ctx.Err() != nil {
			return nil, warnings, fmt.Errorf("no answer within %s", j.Timeout)
		}
		return nil, warnings, runErr
	}
	entries, skipped, err := ParseJournal(&out)
	if skipped > 0 {
		warnings = append(warnings, fmt.Sprintf("journalctl: %d unreadable entries skipped", skipped))
	}
	return entries, warnings, err
}
