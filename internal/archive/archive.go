// Package archive runs one archive: the dump is read once, hashed and
// encrypted as a stream, and the ciphertext fanned out to every upstream at
// once. Each upstream is then verified, and only a verified copy gets its
// manifest, so a manifest always means "this copy is complete".
package archive

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"time"

	rhash "github.com/rclone/rclone/fs/hash"

	"github.com/pgarchive/pgarchive/internal/crypt"
	"github.com/pgarchive/pgarchive/internal/dumpcheck"
	"github.com/pgarchive/pgarchive/internal/keys"
	"github.com/pgarchive/pgarchive/internal/manifest"
	"github.com/pgarchive/pgarchive/internal/naming"
	"github.com/pgarchive/pgarchive/internal/remote"
	"github.com/pgarchive/pgarchive/internal/sign"
	"github.com/pgarchive/pgarchive/internal/tee"
	"github.com/pgarchive/pgarchive/internal/textfmt"
)

// Job is everything one run needs; the CLI fills it in.
type Job struct {
	Database  string
	Prefix    string
	Source    *Source
	Keys      *keys.Keys
	Upstreams []*remote.Upstream
	Log       *slog.Logger
	Version   string
	Host      string
	Now       func() time.Time
	// CheckDump judges the dump while it streams (dumpcheck): a dump that
	// cannot restore (damaged or truncated compression, empty, no pg_dump
	// completion line) fails the run before any copy is complete, and every
	// upload in flight is aborted.
	CheckDump bool
	// Signer, when set, signs the manifest; the signature is stored before
	// the manifest, so a manifest never appears without it.
	Signer *sign.Signer
	// Spool, when set, also receives the ciphertext, the very bytes every
	// upstream gets (age is randomized: it could not be made again), so
	// that a copy some upstream failed to take can be kept for later. Its
	// write errors drop it from the run without failing the uploads.
	Spool io.Writer
	// Base, when set, makes the archive a base backup (see BaseBackup).
	Base *BaseBackup
}

// BaseBackup turns an archive into a base backup: named .tar, manifest
// format 4 with a base section.
type BaseBackup struct {
	// Inspect receives the plaintext as it streams, beside the encryption;
	// an error it returns fails the run before any copy is complete.
	Inspect io.Writer
	// Finish is called when the source ended, before the ciphertext does:
	// its error (the tool that wrote the stream failed, the tar is not
	// whole) aborts every upload, so no copy of a bad backup is complete.
	Finish func() error
	// Describe is called once every copy is uploaded; its section goes
	// into the manifest.
	Describe func() (*manifest.Base, error)
}

// Outcome is one upstream's result.
type Outcome struct {
	Upstream string
	Err      error
	Verified rhash.Type // hash compared after upload, rhash.None if only the size was
	// Duration is the upstream's upload and verification time, until it
	// failed or its manifest was stored.
	Duration time.Duration
}

// Result is what Run did.
type Result struct {
	Name     naming.Name
	Key      string
	Manifest *manifest.Manifest
	// ManifestBody is the manifest as put on the upstreams (nil when the
	// stream failed and no manifest exists).
	ManifestBody []byte
	// Signature is the armored signature over ManifestBody, nil unsigned.
	Signature []byte
	Outcomes  []Outcome
	// Spooled is true when job.Spool received the whole ciphertext.
	Spooled  bool
	SpoolErr error // why the spool was dropped, if it was
}

// Failed counts the upstreams that do not hold a complete copy.
func (r *Result) Failed() int {
	n := 0
	for _, o := range r.Outcomes {
		if o.Err != nil {
			n++
		}
	}
	return n
}

// abortGrace is how long uploads get to stop on their own after the stream
// failed before their requests are cancelled.
const abortGrace = 30 * time.Second

// maxTries bounds the draws of a run ID that no upstream holds yet.
const maxTries = 5

// Run archives job.Source. It returns an error when any upstream lacks a
// complete copy; the Result still says which ones hold one.
func Run(ctx context.Context, job Job) (*Result, error) {
	log := job.Log.With("database", job.Database)
	began := job.Now()
	name, err := naming.New(job.Database, began, job.Source.Compression.Suffix)
	if err != nil {
		return nil, err
	}
	name.Tar = job.Base != nil
	// Allocated once: outcome keeps pointers into it.
	res := &Result{Outcomes: make([]Outcome, len(job.Upstreams))}
	outcome := map[*remote.Upstream]*Outcome{}
	var live []*remote.Upstream
	for i, u := range job.Upstreams {
		res.Outcomes[i] = Outcome{Upstream: u.Name, Err: u.Err}
		outcome[u] = &res.Outcomes[i]
		if u.Err == nil {
			live = append(live, u)
		}
	}
	name, live = freeName(ctx, name, began, job.Prefix, live, outcome)
	res.Name, res.Key = name, name.Key(job.Prefix)
	log = log.With("archive", res.Key)
	// Said early on purpose: journald learns this process's unit from its
	// first entry and keeps it for later ones (see internal/logging).
	to := fmt.Sprintf("%d upstreams", len(live))
	if len(live) == 0 && job.Spool != nil {
		to = "the backlog only: no upstream answered"
	}
	log.Info(fmt.Sprintf("%s: archiving %s (%s) as %s to %s", job.Database, job.Source.Label,
		sizeLabel(job.Source.Size), res.Key, to))
	if len(live) == 0 && job.Spool == nil {
		report(log, res, job)
		return res, fmt.Errorf("%s: no upstream could be reached; nothing was uploaded", job.Database)
	}

	started := time.Now()
	sums, cipherSize, headerPin, err := stream(ctx, job, res, live, outcome, opened(job.Upstreams))
	if err != nil {
		for _, u := range live {
			if outcome[u].Err == nil {
				outcome[u].Err = fmt.Errorf("aborted: %w", err)
			}
		}
		report(log, res, job)
		return res, fmt.Errorf("%s: %w", job.Database, err)
	}

	m := &manifest.Manifest{
		Format:   manifest.DumpFormatVersion,
		Database: job.Database,
		Archive:  name.Base(),
		Created:  name.Created,
		Dump: manifest.Dump{Size: sums.plainSize, SHA256: sums.plainSHA256,
			Compression: job.Source.Compression.Name, Source: job.Source.Kind, Format: sums.format},
		Ciphertext: manifest.Blob{Size: cipherSize, SHA256: sums.cipher[rhash.SHA256],
			MD5: sums.cipher[rhash.MD5], CRC32: sums.cipher[rhash.CRC32], HeaderSHA256: headerPin},
		Key:       manifest.Key{Recipients: job.Keys.Described},
		Pgarchive: manifest.Provenance{Version: job.Version, Host: job.Host},
	}
	if job.Base != nil {
		if m.Base, err = job.Base.Describe(); err != nil {
			return res, fmt.Errorf("%s: %w", job.Database, err)
		}
		m.Format, m.Dump.Format = manifest.FormatVersion, manifest.BaseBackupFormat
	}
	body, err := m.Marshal()
	if err != nil {
		return res, fmt.Errorf("%s: manifest: %w", job.Database, err)
	}
	res.Manifest, res.ManifestBody = m, body
	if job.Signer != nil {
		if res.Signature, err = job.Signer.Sign(body); err != nil {
			return res, fmt.Errorf("%s: signing the manifest: %w", job.Database, err)
		}
	}
	for _, u := range live {
		o := outcome[u]
		if o.Err != nil {
			continue
		}
		t0 := time.Now()
		o.Verified, o.Err = seal(ctx, u, res.Key, cipherSize, sums.cipher, body, res.Signature, name.Created)
		// Verification runs upstream after upstream, so only each one's
		// own share of it counts.
		o.Duration += time.Since(t0)
	}
	for _, u := range live {
		if outcome[u].Duration == 0 {
			outcome[u].Duration = time.Since(started)
		}
	}
	report(log, res, job)
	if len(live) == 0 {
		return res, fmt.Errorf("%s: no upstream could be reached; nothing was uploaded", job.Database)
	}
	if n := res.Failed(); n > 0 {
		return res, fmt.Errorf("%s: %d of %d upstreams do not hold %s: %s", job.Database, n, len(res.Outcomes), res.Key, failures(res))
	}
	return res, nil
}

// freeName gives the archive a run ID (see naming.Name.ID), so concurrent
// runs never share a name, and asks each upstream whether it already holds
// an object of that name, data, manifest or signature: it drops the
// upstreams that don't answer from the run before anything streams, and
// draws another ID in the (astronomically unlikely) case of a clash.
func freeName(ctx context.Context, name naming.Name, now time.Time, prefix string, live []*remote.Upstream, outcome map[*remote.Upstream]*Outcome) (naming.Name, []*remote.Upstream) {
	for try := 0; try < maxTries && len(live) > 0; try++ {
		name.ID = naming.NewID(now)
		taken := false
		var still []*remote.Upstream
		for _, u := range live {
			found := false
			for _, key := range []string{name.Key(prefix), name.ManifestKey(prefix), name.Key(prefix) + naming.SignatureSuffix} {
				exists, err := remote.Exists(ctx, u, key)
				if err != nil {
					outcome[u].Err = fmt.Errorf("unreachable: %w", err)
					break
				}
				found = found || exists
			}
			if outcome[u].Err == nil {
				still = append(still, u)
			}
			taken = taken || found
		}
		live = still
		if !taken {
			return name, live
		}
	}
	for _, u := range live {
		outcome[u].Err = fmt.Errorf("no free archive name within second %s", name.Created.Format(naming.StampLayout))
	}
	return name, nil
}

type sums struct {
	format      string // the dump's format as the dump check found it, "" unchecked
	plainSize   int64
	plainSHA256 string
	cipher      map[rhash.Type]string // hex digests of the ciphertext
}

// hasher is a running digest that reports itself in hex, as rclone does.
type hasher interface {
	io.Writer
	Hex() string
}

type stdHash struct{ hash.Hash }

func (h stdHash) Hex() string { return hex.EncodeToString(h.Sum(nil)) }

type rcloneHash struct {
	*rhash.MultiHasher
	t rhash.Type
}

func (h rcloneHash) Hex() string { return h.Sums()[h.t] }

// opened lists the upstreams that could be opened, reachable or not now.
func opened(ups []*remote.Upstream) []*remote.Upstream {
	var out []*remote.Upstream
	for _, u := range ups {
		if u.Fs != nil {
			out = append(out, u)
		}
	}
	return out
}

// cipherHashers returns SHA-256 (for the manifest) plus each hash an
// upstream will be verified with, one hasher per type so they run in
// parallel. Upstreams that failed to answer count too: the manifest is
// fixed now, and a later retry or heal of their copy verifies against it.
func cipherHashers(ups []*remote.Upstream, size int64) (map[rhash.Type]hasher, error) {
	hs := map[rhash.Type]hasher{rhash.SHA256: stdHash{sha256.New()}}
	for _, u := range ups {
		t := remote.VerifyHash(u, size)
		if t == rhash.None || hs[t] != nil {
			continue
		}
		mh, err := rhash.NewMultiHasherTypes(rhash.NewHashSet(t))
		if err != nil {
			return nil, err
		}
		hs[t] = rcloneHash{mh, t}
	}
	return hs, nil
}

// errUploadDone marks a pipe whose upload has returned, so late writes fail.
// startUploads begins one upload per upstream, each reading its own pipe.
// The returned wait blocks until every upload has returned.
func startUploads(ctx context.Context, live []*remote.Upstream, key string, size int64, created time.Time, outcome map[*remote.Upstream]*Outcome) ([]*io.PipeWriter, func()) {
	pipes := make([]*io.PipeWriter, len(live))
	ups := make([]*upload, len(live))
	start := time.Now()
	for i, u := range live {
		ups[i] = startUpload(ctx, u, key, size, created)
		pipes[i] = ups[i].pw
	}
	return pipes, func() {
		for _, up := range ups {
			err := <-up.done
			outcome[up.u].Duration = up.end.Sub(start)
			if err != nil {
				outcome[up.u].Err = fmt.Errorf("upload failed: %w", err)
			}
		}
	}
}

// encryptInto is stage one: it reads the dump once, hashing, encrypting
// and (with a checker) judging it in parallel, and closes cw when done with
// the error, if any. A broken dump's verdict arrives before cw's end, so
// the uploads see an error instead of the end of the ciphertext, and abort.
func encryptInto(src *Source, enc *crypt.Encryptor, cw *io.PipeWriter, check *dumpcheck.Checker, base *BaseBackup) (int64, string, error) {
	h := sha256.New()
	// age writes 64 KiB chunks; batching them keeps stage two's blocks large.
	bw := bufio.NewWriterSize(cw, tee.DefaultOptions.BlockSize)
	aw, err := enc.Start(bw)
	var n int64
	if err == nil {
		sinks := []tee.Sink{{W: h}, {W: aw}}
		if check != nil {
			sinks = append(sinks, tee.Sink{W: check})
		}
		if base != nil {
			sinks = append(sinks, tee.Sink{W: base.Inspect})
		}
		var res tee.Result
		res, err = tee.Copy(src, sinks, tee.DefaultOptions)
		n = res.N
	}
	if err == nil && base != nil {
		err = base.Finish()
	}
	if err == nil {
		err = aw.Close()
	}
	if check != nil {
		if verdict := check.Close(); err == nil && verdict != nil {
			err = fmt.Errorf("%s: %w; nothing was stored, and the dump stays where it is for inspection", src.Label, verdict)
		}
	}
	if err == nil {
		err = bw.Flush()
	}
	cw.CloseWithError(err)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// stream runs both stages: plaintext -> {SHA-256, age}, then ciphertext ->
// {hashes, one pipe per upload}. It returns the digests and the final
// ciphertext size; per-upstream failures are left in outcome.
func stream(ctx context.Context, job Job, res *Result, live []*remote.Upstream, outcome map[*remote.Upstream]*Outcome, hashFor []*remote.Upstream) (*sums, int64, string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	enc, err := crypt.New(job.Keys.Recipients)
	if err != nil {
		return nil, 0, "", err
	}
	hs, err := cipherHashers(hashFor, enc.Size(job.Source.Size))
	if err != nil {
		return nil, 0, "", err
	}
	var sinks []tee.Sink
	for _, h := range hs {
		sinks = append(sinks, tee.Sink{W: h})
	}
	pipes, wait := startUploads(ctx, live, res.Key, enc.Size(job.Source.Size), res.Name.Created, outcome)
	for _, pw := range pipes {
		sinks = append(sinks, tee.Sink{W: pw, Optional: true})
	}
	spoolSink := -1
	if job.Spool != nil {
		spoolSink = len(sinks)
		sinks = append(sinks, tee.Sink{W: job.Spool, Optional: true})
	}

	cr, cw := io.Pipe()
	stage2 := make(chan error, 1)
	go func() {
		tr, err := tee.Copy(cr, sinks, tee.DefaultOptions)
		if spoolSink >= 0 {
			res.SpoolErr = tr.Errs[spoolSink]
			res.Spooled = err == nil && res.SpoolErr == nil
		}
		for _, pw := range pipes {
			pw.CloseWithError(err) // nil: a clean EOF for every upload still running
		}
		cr.CloseWithError(err) // unblocks stage one if every upload died
		stage2 <- err
	}()
	var check *dumpcheck.Checker
	if job.CheckDump {
		check = dumpcheck.Start(job.Source.Compression.Name)
	}
	n, plainSum, err1 := encryptInto(job.Source, enc, cw, check, job.Base)
	err2 := <-stage2
	err = err1
	if err2 != nil {
		err = err2 // names the real cause, not the closed pipe stage one saw
	}
	if err != nil {
		// Every upload's pipe already carries the error: each stops reading
		// and aborts on its own (rclone aborts an S3 multipart upload).
		// Cancelling at once would cut requests mid-flight (once, in a
		// test, a MinIO bucket was gone after an upload was cancelled during
		// rclone's CreateBucket), so only an upload still running after a
		// grace period is cut off.
		grace := time.AfterFunc(abortGrace, cancel)
		defer grace.Stop()
	}
	wait()
	if err != nil {
		return nil, 0, "", err
	}
	s := &sums{plainSize: n, plainSHA256: plainSum, cipher: map[rhash.Type]string{}}
	if check != nil {
		s.format = check.Format()
	}
	for t, h := range hs {
		s.cipher[t] = h.Hex()
	}
	return s, enc.Size(n), enc.HeaderSHA256(), nil
}

func sizeLabel(n int64) string {
	if n < 0 {
		return "size unknown"
	}
	return textfmt.Bytes(n)
}
