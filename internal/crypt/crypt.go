// Package crypt wraps age's streaming encryption so that the exact size of
// the ciphertext is known before the first byte is uploaded. Backends such as
// S3 pick their multipart chunk size from the object size; a stream of
// unknown size is capped at chunk_size x max_upload_parts.
package crypt

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"filippo.io/age"
)

// age's STREAM construction: after the header and a 16-byte nonce (both
// written by age.Encrypt itself), 64 KiB plaintext chunks, each followed by a
// 16-byte Poly1305 tag. The last chunk may be full; an empty plaintext still
// has one (empty) chunk.
const (
	chunkSize = 64 << 10
	tagSize   = 16
)

// StreamSize is the size of the encrypted chunks for n plaintext bytes.
func StreamSize(n int64) int64 {
	chunks := (n + chunkSize - 1) / chunkSize
	if chunks == 0 {
		chunks = 1
	}
	return n + chunks*tagSize
}

// Encryptor is a started age encryption whose header is already fixed.
type Encryptor struct {
	header []byte // header and stream nonce, as age.Encrypt wrote them
	sw     *switchWriter
	w      io.WriteCloser
}

// New starts an encryption to recipients. Nothing is written anywhere until
// Start is called; the header is generated now so its length is known.
func New(recipients []age.Recipient) (*Encryptor, error) {
	sw := &switchWriter{}
	w, err := age.Encrypt(sw, recipients...)
	if err != nil {
		return nil, err
	}
	return &Encryptor{header: sw.buf.Bytes(), sw: sw, w: w}, nil
}

// Size returns the ciphertext size for n plaintext bytes, or -1 if n < 0.
func (e *Encryptor) Size(n int64) int64 {
	if n < 0 {
		return -1
	}
	return int64(len(e.header)) + StreamSize(n)
}

// Start directs the ciphertext to dst, writing the buffered header first, and
// returns the writer that takes plaintext. Close it to write the last chunk.
func (e *Encryptor) Start(dst io.Writer) (io.WriteCloser, error) {
	if e.sw.dst != nil {
		return nil, errors.New("crypt: encryptor already started")
	}
	if _, err := dst.Write(e.header); err != nil {
		return nil, err
	}
	e.sw.dst = dst
	return e.w, nil
}

// switchWriter buffers what age writes during Encrypt (the header), then
// forwards everything to dst once Start has set it.
type switchWriter struct {
	buf bytes.Buffer
	dst io.Writer
}

func (s *switchWriter) Write(p []byte) (int, error) {
	if s.dst == nil {
		return s.buf.Write(p)
	}
	return s.dst.Write(p)
}

// maxHeader bounds an age header read from the store: a few recipient
// stanzas (a post-quantum one is ~1.5 KiB) fit many times over.
const maxHeader = 64 << 10

// macLine is how age's header ends: the MAC line "--- <base64>\n".
var macLine = []byte("\n--- ")

// HeaderLen returns the length of the age header at the start of b, through
// the newline of its MAC line, or an error if b holds no whole header.
func HeaderLen(b []byte) (int, error) {
	if !bytes.HasPrefix(b, []byte("age-encryption.org/v1\n")) {
		return 0, errors.New("not an age file (no age-encryption.org/v1 header)")
	}
	i := bytes.Index(b, macLine)
	if i < 0 {
		return 0, errors.New("age header has no MAC line")
	}
	j := bytes.IndexByte(b[i+len(macLine):], '\n')
	if j < 0 {
		return 0, errors.New("age header's MAC line is cut short")
	}
	return i + len(macLine) + j + 1, nil
}

// HeaderSHA256 is the pin a signed manifest records: the SHA-256 (hex) of
// the header through its MAC line.
func (e *Encryptor) HeaderSHA256() string {
	n, err := HeaderLen(e.header)
	if err != nil {
		panic("crypt: age wrote a header HeaderLen does not understand: " + err.Error())
	}
	sum := sha256.Sum256(e.header[:n])
	return hex.EncodeToString(sum[:])
}

// ReadHeader reads the age header from the start of r (at most 64 KiB)
// and returns it with the reader to continue from, which yields the header
// again followed by the rest, so age.Decrypt can be given it unchanged.
func ReadHeader(r io.Reader) (header []byte, whole io.Reader, err error) {
	br := bufio.NewReaderSize(r, maxHeader)
	peek, perr := br.Peek(maxHeader)
	n, err := HeaderLen(peek)
	if err != nil {
		if perr != nil && perr != io.EOF && !errors.Is(perr, bufio.ErrBufferFull) {
			return nil, nil, perr
		}
		return nil, nil, err
	}
	return append([]byte(nil), peek[:n]...), br, nil
}

// CheckHeader reads r's age header and compares its SHA-256 with pin
// before a byte of it is decrypted. It returns the stream to decrypt.
func CheckHeader(r io.Reader, pin string) (io.Reader, error) {
	hdr, whole, err := ReadHeader(r)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(hdr)
	if got := hex.EncodeToString(sum[:]); got != pin {
		return nil, fmt.Errorf("%w: its age header has SHA-256 %s, the signed manifest pins %s", ErrHeaderPin, got, pin)
	}
	return whole, nil
}

// ErrHeaderPin marks a data object that is not the one its signed manifest
// describes: another archive's data, or a forgery.
var ErrHeaderPin = errors.New("data object does not match its manifest")
