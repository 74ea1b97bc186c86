package archive

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/pgarchive/pgarchive/internal/naming"
)

// Source is the dump to archive: a file of known size, or a stream.
type Source struct {
	r           io.Reader
	closer      io.Closer
	Size        int64 // -1 for a stream
	Compression naming.Compression
	Kind        string // "file" or "stdin", recorded in the manifest
	Label       string // for messages: the path or "stdin"
}

// OpenFile opens a dump written by postgresqlBackup (or anyone). The
// compression comes from the name (db.sql.gz); an unfamiliar name falls back
// to the file's magic bytes.
func OpenFile(path string) (*Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dump: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("dump %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("dump %s is not a regular file", path)
	}
	if st.Size() == 0 {
		f.Close()
		return nil, fmt.Errorf("dump %s is empty: pg_dump never writes an empty dump, so the backup step probably failed", path)
	}
	c, ok := naming.CompressionFromPath(path)
	if !ok {
		head := make([]byte, 8)
		n, _ := io.ReadFull(f, head)
		c = naming.SniffCompression(head[:n])
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("dump %s: %w", path, err)
		}
	}
	r := &exactReader{r: f, left: st.Size(), path: path}
	return &Source{r: r, closer: f, Size: st.Size(), Compression: c, Kind: "file", Label: path}, nil
}

// OpenStream wraps a pipe such as `pg_dump | zstd | pgarchive --file -`.
// Its compression is read from the magic bytes; an empty stream is refused
// before anything is uploaded.
func OpenStream(r io.Reader) (*Source, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	head, err := br.Peek(8)
	if len(head) == 0 {
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("dump from stdin: %w", err)
		}
		return nil, errors.New("dump from stdin is empty: did pg_dump fail upstream of the pipe?")
	}
	return &Source{r: br, Size: -1, Compression: naming.SniffCompression(head), Kind: "stdin", Label: "stdin"}, nil
}

func (s *Source) Read(p []byte) (int, error) { return s.r.Read(p) }

// Close releases the file, if any.
func (s *Source) Close() error {
	if s.closer != nil {
		return s.closer.Close()
	}
	return nil
}

// exactReader fails if the file is not exactly the size it had when opened:
// uploads were started with that size, and a dump that changes while being
// read must not be archived as if it were whole.
type exactReader struct {
	r    io.Reader
	left int64
	path string
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		var one [1]byte
		if n, _ := e.r.Read(one[:]); n > 0 {
			return 0, fmt.Errorf("dump %s grew while it was being read", e.path)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if errors.Is(err, io.EOF) && e.left > 0 {
		return n, fmt.Errorf("dump %s shrank while it was being read (%d bytes missing)", e.path, e.left)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("dump %s: %w", e.path, err)
	}
	return n, nil
}
