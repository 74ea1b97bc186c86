package archive

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	rhash "github.com/rclone/rclone/fs/hash"

	"github.com/pgarchive/pgarchive/internal/logging"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

// report logs one line per upstream and a summary. Each line stands alone,
// since `journalctl -u` shows only the message text.
func report(log *slog.Logger, res *Result, job Job) {
	var size, sum string
	if m := res.Manifest; m != nil {
		size = fmt.Sprintf("%s dump, %s encrypted", textfmt.Bytes(m.Dump.Size), textfmt.Bytes(m.Ciphertext.Size))
		sum = m.Ciphertext.SHA256
	}
	for _, o := range res.Outcomes {
		l := log.With("upstream", o.Upstream)
		if o.Err != nil {
			l.Error(fmt.Sprintf("%s: %s NOT stored on %s: %v", job.Database, res.Key, o.Upstream, o.Err))
			continue
		}
		check := "size checked; the backend offers no hash for this object"
		if o.Verified != rhash.None {
			check = "size and " + o.Verified.String() + " verified"
		}
		l.Info(fmt.Sprintf("%s: stored %s on %s (%s, %s)", job.Database, res.Key, o.Upstream, size, check),
			"bytes", res.Manifest.Ciphertext.Size, "sha256", sum)
	}
	ok := len(res.Outcomes) - res.Failed()
	attrs := []any{"upstreams_ok", ok, "upstreams_failed", res.Failed()}
	if res.Manifest != nil {
		attrs = append(attrs, "bytes", res.Manifest.Ciphertext.Size, "sha256", sum, "dump_sha256", res.Manifest.Dump.SHA256)
	}
	switch {
	case res.Failed() == 0:
		log.Log(context.Background(), logging.Notice, fmt.Sprintf("%s: archived %s to all %d upstreams (%s)", job.Database, res.Key, ok, size), attrs...)
	default:
		log.Error(fmt.Sprintf("%s: archive %s is complete on %d of %d upstreams; failed: %s", job.Database, res.Key, ok, len(res.Outcomes), failedNames(res)), attrs...)
	}
}

func failedNames(res *Result) string {
	var names []string
	for _, o := range res.Outcomes {
		if o.Err != nil {
			names = append(names, o.Upstream)
		}
	}
	return strings.Join(names, ", ")
}

func failures(res *Result) string {
	var parts []string
	for _, o := range res.Outcomes {
		if o.Err != nil {
			parts = append(parts, fmt.Sprintf("%s: %v", o.Upstream, o.Err))
		}
	}
	return strings.Join(parts, "; ")
}
