package job

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/pgarchive/pgarchive/internal/backlog"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

// RetryOptions say which backlog to deliver where.
type RetryOptions struct {
	StateDir  string
	Database  string             // "" for every database
	Upstreams []*remote.Upstream // the writable upstreams of the remote
	Log       *slog.Logger
}

// RetryBacklog delivers the backlog (of one database, or all) to the
// upstreams that lack its archives, logs a summary, and returns an error
// naming what remains.
func RetryBacklog(ctx context.Context, opt RetryOptions) error {
	res := backlog.Retry(ctx, backlog.RetryOptions{StateDir: opt.StateDir, Database: opt.Database, Upstreams: opt.Upstreams, Log: opt.Log})
	if res.Entries == 0 && res.Broken == 0 {
		return nil
	}
	summary := fmt.Sprintf("retry: %s in the backlog%s: %d delivered to every upstream and removed, %d remaining",
		textfmt.Plural(res.Entries+res.Broken, "archive"), forDB(opt.Database), res.Cleared, res.Remaining)
	var parts []string
	if res.Delivered+res.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%s delivered, %d failed", textfmt.Plural(res.Delivered, "copy"), res.Failed))
	}
	if res.Busy > 0 {
		parts = append(parts, fmt.Sprintf("%d in use by another pgarchive process", res.Busy))
	}
	if res.Broken > 0 {
		parts = append(parts, fmt.Sprintf("%d unreadable", res.Broken))
	}
	if len(parts) > 0 {
		summary += " (" + strings.Join(parts, "; ") + ")"
	}
	opt.Log.Info(summary, "backlog_remaining", res.Remaining)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if res.Remaining > 0 {
		u, _ := backlog.Usage(opt.StateDir)
		return fmt.Errorf("the backlog in %s still holds %s%s (%s in all): some upstream lacks them (see above)",
			backlog.Root(opt.StateDir), textfmt.Plural(res.Remaining, "archive"), forDB(opt.Database), textfmt.Bytes(u.Bytes))
	}
	return nil
}

// forDB ends a phrase with the database it is about, if any.
func forDB(db string) string {
	if db == "" {
		return ""
	}
	return " for database " + db
}
