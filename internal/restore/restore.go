// Package restore streams an archive back to its dump: it downloads one
// copy, decrypts it with age and decompresses it, with no temporary file. If
// a copy turns out missing or corrupt part way, it carries on from another
// upstream at the same offset of the output, so the reader sees one unbroken
// stream. At the end it checks the dump's size and SHA-256 against the
// manifest and, for plain SQL, pg_dump's completion line; a failed check is
// returned instead of io.EOF, so a consumer never mistakes it for success.
package restore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"filippo.io/age"

	"github.com/pgarchive/pgarchive/internal/dumpcheck"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/manifest"
)

// Copy is one upstream's stored copy of the archive.
type Copy struct {
	Upstream string
	Open     func(ctx context.Context) (io.ReadCloser, error) // the ciphertext
}

// Options say what to deliver and how to check it.
type Options struct {
	Manifest   *manifest.Manifest
	Identities *keys.Identities
	// Raw delivers the dump as pg_dump's compressor wrote it, not decompressed
	// (then pg_dump's completion line can't be checked, only the SHA-256).
	Raw          bool
	OnCiphertext func(n int) // progress, in ciphertext bytes read
	Log          *slog.Logger
}

// Reader is the restored dump.
type Reader struct {
	ctx    context.Context
	copies []Copy
	opt    Options

	next      int // next copy to try
	cur       *attempt
	curName   string
	pending   error // arrived with data; handled on the next Read
	delivered int64
	skip      int64 // output bytes of a new copy already delivered by an earlier one
	tail      dumpcheck.Tail
	err       error

	// Used is the upstream whose copy delivered the end of the stream.
	Used string
	// Failures are the copies given up on, with why.
	Failures []error
}

// Open prepares to read the archive from copies, in order.
func Open(ctx context.Context, copies []Copy, opt Options) *Reader {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Reader{ctx: ctx, copies: copies, opt: opt}
}

// Read implements io.Reader. Once ctx is done it fails with ctx's error,
// whatever the copy's backend does with it (a local file ignores it), so
// a restore stops on SIGTERM instead of running to the end.
func (r *Reader) Read(p []byte) (int, error) {
	for {
		if r.err != nil {
			return 0, r.err
		}
		if err := r.ctx.Err(); err != nil {
			r.err = err
			return 0, err
		}
		if r.cur == nil {
			if err := r.openNext(); err != nil {
				r.err = err
				return 0, err
			}
		}
		var n int
		err := r.pending
		r.pending = nil
		if err == nil {
			n, err = r.cur.out.Read(p)
		}
		if r.skip > 0 && n > 0 {
			d := int(min(int64(n), r.skip))
			n = copy(p, p[d:n])
			r.skip -= int64(d)
		}
		if n > 0 {
			r.delivered += int64(n)
			if !r.opt.Raw {
				r.tail.Write(p[:n])
			}
			r.pending = err
			return n, nil
		}
		switch {
		case err == nil:
			continue
		case err == io.EOF:
			err = r.cur.finish()
			if err == nil {
				return 0, r.end()
			}
		}
		if cerr := r.ctx.Err(); cerr != nil {
			r.err = cerr
			return 0, cerr
		}
		r.abandon(err)
	}
}

// end runs the checks that need the whole stream.
func (r *Reader) end() error {
	r.Used = r.curName
	r.cur.close()
	r.cur = nil
	r.err = io.EOF
	if !r.opt.Raw {
		if err := r.tail.Check(); err != nil {
			r.err = err
		}
	}
	return r.err
}

func (r *Reader) abandon(err error) {
	r.Failures = append(r.Failures, fmt.Errorf("%s: %w", r.curName, err))
	r.cur.close()
	r.cur = nil
	r.skip = r.delivered
	if r.next < len(r.copies) {
		r.opt.Log.Warn(fmt.Sprintf("%s: copy on %s failed after %d bytes (%v); continuing from %s",
			r.opt.Manifest.Archive, r.curName, r.delivered, err, r.copies[r.next].Upstream))
	}
}

func (r *Reader) openNext() error {
	for r.next < len(r.copies) {
		c := r.copies[r.next]
		r.next++
		a, err := start(r.ctx, c, r.opt)
		if err == nil {
			r.cur, r.curName = a, c.Upstream
			return nil
		}
		if cerr := r.ctx.Err(); cerr != nil {
			return cerr
		}
		r.Failures = append(r.Failures, fmt.Errorf("%s: %w", c.Upstream, err))
	}
	return r.giveUp()
}

// giveUp explains why no copy could be read. A key that opens no copy is
// said plainly, with what the archive was encrypted to, since that is the
// usual cause and no upstream is at fault.
func (r *Reader) giveUp() error {
	m := r.opt.Manifest
	if len(r.Failures) == 0 {
		return fmt.Errorf("%s: no complete copy on any upstream", m.Archive)
	}
	keyErrs := 0
	for _, err := range r.Failures {
		var nomatch *age.NoIdentityMatchError
		if errors.As(err, &nomatch) {
			keyErrs++
		}
	}
	if keyErrs == len(r.Failures) {
		var to []string
		for _, rc := range m.Key.Recipients {
			to = append(to, strings.TrimSpace(rc.Kind+" "+rc.Fingerprint))
		}
		return fmt.Errorf("%s: the %s does not decrypt it; it was encrypted to %s", m.Archive, r.opt.Identities.Label, strings.Join(to, ", "))
	}
	return fmt.Errorf("%s: no copy could be restored: %w", m.Archive, errors.Join(r.Failures...))
}

// Close abandons the stream.
func (r *Reader) Close() error {
	if r.cur != nil {
		r.cur.close()
		r.cur = nil
	}
	if r.err == nil {
		r.err = errors.New("restore: reader closed")
	}
	return nil
}

// Delivered is how many bytes the reader has returned.
func (r *Reader) Delivered() int64 { return r.delivered }
