// Package basebackup is what pgarchive knows of pg_basebackup's tar: it
// reads from the stream what restores need while job.BaseBackup archives
// it (inspect.go), chooses the base backup for a recovery target, and
// unpacks one into a data directory set up for point-in-time recovery
// (restore.go, unpack.go, recovery.go).
package basebackup

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/pgarchive/pgarchive/internal/dumpcheck"
	"github.com/pgarchive/pgarchive/internal/walname"
)

// Compressions are pg_basebackup's client-side compressions pgarchive
// passes on (--compress=client-<name>), and "none".
var Compressions = []string{"gzip", "lz4", "zstd", "none"}

// Info is what a base backup's tar says about itself.
type Info struct {
	Cluster  walname.Cluster
	Timeline uint32      // backup_label's START TIMELINE
	StartLSN walname.LSN // backup_label's START WAL LOCATION
	StopLSN  walname.LSN // the end of backup_manifest's last WAL range
}

// Inspector reads the tar stream written to it (compressed as named)
// beside the upload, and fails the upload's stream if it is not a whole
// base backup.
type Inspector struct {
	pw   *io.PipeWriter
	done chan struct{}
	info Info
	err  error
}

// maxSmallFile bounds backup_label, PG_VERSION and what is read of
// pg_control.
const maxSmallFile = 64 << 10

// NewInspector starts reading.
func NewInspector(compression string) *Inspector {
	pr, pw := io.Pipe()
	in := &Inspector{pw: pw, done: make(chan struct{})}
	go func() {
		defer close(in.done)
		in.info, in.err = Inspect(pr, compression)
		if in.err == nil {
			_, in.err = io.Copy(io.Discard, pr) // padding after the tar's end
		}
		pr.CloseWithError(in.err)
	}()
	return in
}

func (in *Inspector) Write(p []byte) (int, error) { return in.pw.Write(p) }

// Abort ends an inspection whose stream failed; harmless after Close.
func (in *Inspector) Abort() { in.pw.CloseWithError(errors.New("stream aborted")) }

// Close ends the stream and returns what was found.
func (in *Inspector) Close() (Info, error) {
	in.pw.Close()
	<-in.done
	return in.info, in.err
}

// Inspect reads a base backup tar (pg_basebackup -Ft -D -, with its
// backup_manifest inside) and finds its cluster and WAL range.
func Inspect(r io.Reader, compression string) (Info, error) {
	dec, err := dumpcheck.Decompress(compression, r)
	if err != nil {
		return Info{}, err
	}
	defer dec.Close()
	tr := tar.NewReader(bufio.NewReaderSize(dec, 1<<20))
	var label, control, version []byte
	var info Info
	haveManifest := false
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Info{}, fmt.Errorf("base backup tar: %w", err)
		}
		switch h.Name {
		case "backup_label":
			label, err = readSmall(tr)
		case "global/pg_control":
			control, err = readSmall(tr)
		case "PG_VERSION":
			version, err = readSmall(tr)
		case "backup_manifest":
			info.StopLSN, err = manifestStop(tr)
			haveManifest = err == nil
		}
		if err != nil {
			return Info{}, fmt.Errorf("base backup tar: %s: %w", h.Name, err)
		}
	}
	switch {
	case label == nil:
		return Info{}, errors.New("base backup tar has no backup_label: not a base backup, or cut short")
	case control == nil || version == nil:
		return Info{}, errors.New("base backup tar has no global/pg_control or PG_VERSION")
	case !haveManifest:
		return Info{}, errors.New("base backup tar has no backup_manifest (pg_basebackup --no-manifest, or cut short)")
	}
	if info.Cluster, err = walname.ParseControl(control, version); err != nil {
		return Info{}, err
	}
	if info.StartLSN, info.Timeline, err = ParseLabel(label); err != nil {
		return Info{}, err
	}
	if info.StopLSN < info.StartLSN {
		return Info{}, fmt.Errorf("backup_manifest's WAL ends at %s, before backup_label's start %s", info.StopLSN, info.StartLSN)
	}
	return info, nil
}

func readSmall(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxSmallFile+1))
	if err == nil && len(b) > maxSmallFile {
		err = fmt.Errorf("larger than %d bytes", maxSmallFile)
	}
	return b, err
}

// ParseLabel reads START WAL LOCATION and START TIMELINE of a
// backup_label.
func ParseLabel(label []byte) (walname.LSN, uint32, error) {
	var lsn walname.LSN
	var tli uint64
	var haveLSN, haveTLI bool
	for _, line := range strings.Split(string(label), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		var err error
		switch k {
		case "START WAL LOCATION":
			pos, _, _ := strings.Cut(v, " ")
			lsn, err = walname.ParseLSN(pos)
			haveLSN = err == nil
		case "START TIMELINE":
			tli, err = strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			haveTLI = err == nil && tli > 0
		}
		if err != nil {
			return 0, 0, fmt.Errorf("backup_label: %s: %w", k, err)
		}
	}
	if !haveLSN || !haveTLI {
		return 0, 0, errors.New("backup_label lacks START WAL LOCATION or START TIMELINE")
	}
	return lsn, uint32(tli), nil
}

// manifestStop reads backup_manifest as a stream of JSON tokens (its Files
// list can be long) and returns the end of its last WAL range.
func manifestStop(r io.Reader) (walname.LSN, error) {
	dec := json.NewDecoder(r)
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, errors.New("not a JSON object")
	}
	var stop walname.LSN
	found := false
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return 0, err
		}
		if k != "WAL-Ranges" {
			if err := skipValue(dec); err != nil {
				return 0, err
			}
			continue
		}
		var ranges []struct {
			Timeline uint32 `json:"Timeline"`
			End      string `json:"End-LSN"`
		}
		if err := dec.Decode(&ranges); err != nil {
			return 0, fmt.Errorf("WAL-Ranges: %w", err)
		}
		for _, wr := range ranges {
			end, err := walname.ParseLSN(wr.End)
			if err != nil {
				return 0, fmt.Errorf("WAL-Ranges: %w", err)
			}
			stop, found = max(stop, end), true
		}
	}
	if !found {
		return 0, errors.New("no WAL-Ranges")
	}
	return stop, nil
}

// skipValue consumes one JSON value token by token, never holding more
// than one token.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		t, err := dec.Token()
		if err != nil {
			return err
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}
