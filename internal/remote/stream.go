package remote

import (
	"strings"

	"github.com/rclone/rclone/fs"
	"github.com/rclone/rclone/fs/fspath"
)

// s3MaxParts is S3's limit when max_upload_parts is not configured.
const s3MaxParts = 10000

// StreamChunk is the S3 chunk size that lets an upload of unknown size reach
// total bytes in maxParts parts, rounded up to a whole MiB. It returns 0 when
// the configured chunk already suffices.
func StreamChunk(total int64, maxParts int, configured int64) int64 {
	if total <= 0 || maxParts <= 0 {
		return 0
	}
	need := (total + int64(maxParts) - 1) / int64(maxParts)
	need = (need + (1 << 20) - 1) &^ ((1 << 20) - 1)
	if need <= configured {
		return 0
	}
	return need
}

// streamRoot adds a chunk_size override to an S3 root so that a stream of
// unknown size can grow to total bytes; other roots are returned unchanged.
func streamRoot(root string, total int64) string {
	if total <= 0 {
		return root
	}
	info, _, _, m, err := fs.ConfigFs(root)
	if err != nil || info.Name != "s3" {
		return root
	}
	maxParts := s3MaxParts
	if v, ok := m.Get("max_upload_parts"); ok {
		var n fs.SizeSuffix
		if n.Set(v) == nil && n > 0 {
			maxParts = int(n)
		}
	}
	configured := fs.SizeSuffix(5 << 20)
	if v, ok := m.Get("chunk_size"); ok {
		_ = configured.Set(v)
	}
	chunk := StreamChunk(total, maxParts, int64(configured))
	if chunk == 0 {
		return root
	}
	name, rest, err := fspath.SplitFs(root)
	if err != nil || !strings.HasSuffix(name, ":") {
		return root
	}
	return strings.TrimSuffix(name, ":") + ",chunk_size=" + fs.SizeSuffix(chunk).String() + ":" + rest
}

// s3UploadCutoff is rclone's default size from which S3 uploads are multipart.
const s3UploadCutoff = 200 << 20

// multipartS3 tells whether rclone will upload size bytes to an S3 upstream
// in parts: always for a stream, else from upload_cutoff.
func multipartS3(u *Upstream, size int64) bool {
	info, _, _, m, err := fs.ConfigFs(u.Root)
	if err != nil || info.Name != "s3" {
		return false
	}
	if size < 0 {
		return true
	}
	cutoff := fs.SizeSuffix(s3UploadCutoff)
	if v, ok := m.Get("upload_cutoff"); ok {
		_ = cutoff.Set(v)
	}
	return size >= int64(cutoff)
}
