// Package dumpcheck knows what a dump looks like: it undoes its compression
// (the one decompressor restore and archive share) and judges whether pg_dump
// finished it: a plain-SQL dump's completion comment, a custom-format
// archive's header, a tar archive's end. archive checks every dump with it
// while streaming, so a dump that cannot restore is never stored as complete.
package dumpcheck

import (
	"compress/bzip2"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// Decompress wraps r by the manifest's compression name. klauspost's gzip
// and zstd are used for speed: decompression bounds restore's throughput.
func Decompress(name string, r io.Reader) (io.ReadCloser, error) {
	switch name {
	case "none":
		return io.NopCloser(r), nil
	case "gzip":
		return gzip.NewReader(r)
	case "zstd":
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<30))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case "bzip2":
		return io.NopCloser(bzip2.NewReader(r)), nil
	case "xz":
		x, err := xz.NewReader(r)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(x), nil
	case "lz4":
		return io.NopCloser(lz4.NewReader(r)), nil
	}
	return nil, fmt.Errorf("unknown compression %q", name)
}
