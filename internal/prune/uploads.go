package prune

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/rclone/rclone/fs"

	"github.com/pgarchive/pgarchive/internal/remote"
)

// Upload is an unfinished multipart upload: what a run killed mid-upload
// (kill -9, a power cut) leaves on S3, invisible to listings, billed as
// storage, and never finished by anyone.
type Upload struct {
	Upstream  string    `json:"upstream"`
	Key       string    `json:"key"`
	Initiated time.Time `json:"initiated"`
}

// Uploads lists the unfinished multipart uploads under prefix on every
// upstream prune may delete from and whose backend has them (S3 and
// compatibles), older than maxAge. A younger one may belong to an archive
// run still going, so it is never touched. Upstreams that cannot say (no
// such command, or listing them is denied) are logged and skipped.
func Uploads(ctx context.Context, ups []*remote.Upstream, prefix string, maxAge time.Duration, now time.Time, log *slog.Logger) []Upload {
	var out []Upload
	for _, u := range ups {
		if u.Err != nil || !u.Deletes() {
			continue
		}
		f, err := scoped(ctx, u, prefix)
		if err != nil {
			log.Warn(fmt.Sprintf("prune: can't look for unfinished uploads on %s: %v", u.Name, err), "upstream", u.Name)
			continue
		}
		list, err := listUploads(ctx, f)
		if errors.Is(err, fs.ErrorCommandNotFound) {
			continue // not an S3 store: nothing of the kind
		}
		if err != nil {
			log.Warn(fmt.Sprintf("prune: can't list unfinished uploads on %s: %v", u.Name, err), "upstream", u.Name)
			continue
		}
		for _, up := range list {
			if now.Sub(up.Initiated) > maxAge {
				up.Upstream = u.Name
				out = append(out, up)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Upstream+out[i].Key < out[j].Upstream+out[j].Key })
	return out
}

// AbortUploads aborts, on each upstream of uploads, the unfinished uploads
// under prefix older than maxAge (with the backend's own cleanup), then
// reports which of uploads are gone and logs one line each.
func AbortUploads(ctx context.Context, ups []*remote.Upstream, prefix string, maxAge time.Duration, uploads []Upload, log *slog.Logger) (aborted []Upload, err error) {
	byName := map[string]*remote.Upstream{}
	for _, u := range ups {
		byName[u.Name] = u
	}
	done := map[string]bool{}
	var errs []error
	for _, up := range uploads {
		if done[up.Upstream] {
			continue
		}
		done[up.Upstream] = true
		u := byName[up.Upstream]
		f, err := scoped(ctx, u, prefix)
		if err == nil {
			_, err = f.Features().Command(ctx, "cleanup", nil, map[string]string{"max-age": maxAge.String()})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: aborting unfinished uploads: %w", u.Name, err))
			continue
		}
		left, err := listUploads(ctx, f)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: listing unfinished uploads: %w", u.Name, err))
			continue
		}
		still := map[string]bool{}
		for _, l := range left {
			still[l.Key+"@"+l.Initiated.String()] = true
		}
		for _, x := range uploads {
			if x.Upstream == up.Upstream && !still[x.Key+"@"+x.Initiated.String()] {
				aborted = append(aborted, x)
				log.Info(fmt.Sprintf("prune: aborted the unfinished upload of %s on %s (started %s)", x.Key, x.Upstream, x.Initiated.UTC().Format(time.RFC3339)),
					"upstream", x.Upstream, "archive", x.Key)
			}
		}
	}
	return aborted, errors.Join(errs...)
}

// scoped opens u at prefix, so the backend's cleanup reaches no upload
// outside pgarchive's folder.
func scoped(ctx context.Context, u *remote.Upstream, prefix string) (fs.Fs, error) {
	if prefix == "" {
		return u.Fs, nil
	}
	root := strings.TrimSuffix(u.Root, "/")
	if !strings.HasSuffix(root, ":") {
		root += "/"
	}
	return fs.NewFs(ctx, root+prefix)
}

// listUploads asks the backend for its unfinished uploads under f's root,
// keys relative to the upstream's root as rclone lists them per bucket.
func listUploads(ctx context.Context, f fs.Fs) ([]Upload, error) {
	cmd := f.Features().Command
	if cmd == nil {
		return nil, fs.ErrorCommandNotFound
	}
	out, err := cmd(ctx, "list-multipart-uploads", nil, nil)
	if err != nil {
		return nil, err
	}
	byBucket, ok := out.(map[string][]types.MultipartUpload)
	if !ok {
		return nil, fmt.Errorf("unexpected answer %T to list-multipart-uploads", out)
	}
	var list []Upload
	for bucket, ups := range byBucket {
		for _, up := range ups {
			if up.Key == nil || up.Initiated == nil {
				continue
			}
			list = append(list, Upload{Key: path.Join(bucket, *up.Key), Initiated: *up.Initiated})
		}
	}
	return list, nil
}
