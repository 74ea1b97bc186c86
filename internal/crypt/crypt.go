// Package crypt wraps age's streaming encryption so that the exact size of
// the ciphertext is known before the first byte is uploaded. Backends such as
// S3 pick their multipart chunk size from the object size; a stream of
// unknown size is capped at chunk_size x max_upload_parts.
package crypt

import (
	"bytes"
	"errors"
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
