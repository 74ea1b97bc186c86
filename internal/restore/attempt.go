package restore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"

	"github.com/pgarchive/pgarchive/internal/crypt"
	"github.com/pgarchive/pgarchive/internal/dumpcheck"
	"github.com/pgarchive/pgarchive/internal/tee"
)

// attempt is one copy being read: ciphertext -> age -> {SHA-256, pipe} ->
// decompressor. Hashing runs beside decompression, on another core.
type attempt struct {
	cancel context.CancelFunc
	body   io.ReadCloser // the ciphertext download
	pipe   *io.PipeReader
	dec    io.ReadCloser // nil in raw mode
	out    io.Reader
	done   chan error // the tee's verdict: size and SHA-256 against the manifest
	ended  bool
}

// countingReader reports ciphertext progress.
type countingReader struct {
	r  io.Reader
	on func(int)
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && c.on != nil {
		c.on(n)
	}
	return n, err
}

func start(ctx context.Context, c Copy, opt Options) (*attempt, error) {
	ctx, cancel := context.WithCancel(ctx)
	body, err := c.Open(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("opening: %w", err)
	}
	a := &attempt{cancel: cancel, body: body, done: make(chan error, 1)}
	var src io.Reader = countingReader{body, opt.OnCiphertext}
	if pin := opt.Manifest.Ciphertext.HeaderSHA256; pin != "" {
		// Before any decryption: only a header the manifest pins may
		// hand on plaintext (see docs/format.md, Authenticity).
		if src, err = crypt.CheckHeader(src, pin); err != nil {
			a.close()
			return nil, err
		}
	}
	plain, err := age.Decrypt(src, opt.Identities.List...)
	if err != nil {
		a.close()
		return nil, err
	}
	pr, pw := io.Pipe()
	a.pipe = pr
	want := opt.Manifest.Dump
	go func() {
		h := sha256.New()
		res, err := tee.Copy(plain, []tee.Sink{{W: h}, {W: pw}}, tee.DefaultOptions)
		if err == nil && res.N != want.Size {
			err = fmt.Errorf("decrypted dump has %d bytes, the manifest says %d", res.N, want.Size)
		}
		if got := hex.EncodeToString(h.Sum(nil)); err == nil && got != want.SHA256 {
			err = fmt.Errorf("decrypted dump has SHA-256 %s, the manifest says %s", got, want.SHA256)
		}
		pw.CloseWithError(err)
		a.done <- err
	}()
	a.out = pr
	if !opt.Raw {
		dec, err := dumpcheck.Decompress(want.Compression, pr)
		if err != nil {
			a.close()
			return nil, fmt.Errorf("%s: %w", want.Compression, err)
		}
		a.dec, a.out = dec, dec
	}
	return a, nil
}

// finish is called at the decompressor's EOF: the rest of the pipe must be
// consumed (trailing bytes after a compressed stream still count towards the
// hash) before the tee's verdict is known.
func (a *attempt) finish() error {
	if _, err := io.Copy(io.Discard, a.pipe); err != nil {
		return err
	}
	a.ended = true
	return <-a.done
}

func (a *attempt) close() {
	a.cancel()
	a.body.Close()
	if a.dec != nil {
		a.dec.Close()
	}
	if a.pipe != nil {
		a.pipe.CloseWithError(errors.New("restore: copy abandoned"))
		if !a.ended {
			<-a.done // the tee goroutine ends once its source or pipe is closed
		}
	}
}
