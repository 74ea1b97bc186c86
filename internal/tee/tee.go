// Package tee copies one stream to several writers concurrently. Each writer
// runs in its own goroutine and may fall behind the others by a bounded number
// of blocks, so hashing, encryption and uploads overlap on separate cores
// while memory stays fixed. A failing optional writer (an upload) is dropped
// and the others carry on; a failing required writer (a hash, the encryptor)
// stops the copy.
package tee

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// Sink is one destination.
type Sink struct {
	W        io.Writer
	Optional bool // its failure is recorded, not fatal, while another optional sink lives
}

// Options size the buffering: Depth blocks of BlockSize bytes in flight.
type Options struct {
	BlockSize int
	Depth     int
}

// DefaultOptions keep 1 MiB in flight per stage: enough slack for SHA-256
// to overlap with encryption and writes, and a small live heap (Go lets the
// heap grow to twice the live size, so every buffered MiB costs about two).
var DefaultOptions = Options{BlockSize: 256 << 10, Depth: 4}

// ErrAllOptionalFailed is returned when every optional sink has failed.
var ErrAllOptionalFailed = errors.New("every destination failed")

type block struct {
	data []byte
	n    int
	refs atomic.Int32
}

// Result reports what happened.
type Result struct {
	N    int64   // bytes read from src
	Errs []error // per sink: why it was dropped, or nil
}

// Copy reads src to EOF and writes every byte to every live sink, in order.
// It returns the first fatal error: reading src, a required sink failing, or
// all optional sinks failing.
func Copy(src io.Reader, sinks []Sink, opt Options) (Result, error) {
	res := Result{Errs: make([]error, len(sinks))}
	pool := make(chan *block, opt.Depth)
	for i := 0; i < opt.Depth; i++ {
		pool <- &block{data: make([]byte, opt.BlockSize)}
	}
	var (
		fatal     atomic.Value // error
		optionals atomic.Int32
		wg        sync.WaitGroup
		chans     = make([]chan *block, len(sinks))
	)
	for _, s := range sinks {
		if s.Optional {
			optionals.Add(1)
		}
	}
	hadOptional := optionals.Load() > 0
	release := func(b *block) {
		if b.refs.Add(-1) == 0 {
			pool <- b
		}
	}
	for i, s := range sinks {
		chans[i] = make(chan *block, opt.Depth)
		wg.Add(1)
		go func(i int, s Sink, ch <-chan *block) {
			defer wg.Done()
			dead := false
			for b := range ch {
				if !dead {
					if _, err := s.W.Write(b.data[:b.n]); err != nil {
						dead = true
						res.Errs[i] = err
						if !s.Optional {
							fatal.CompareAndSwap(nil, fmt.Errorf("sink %d: %w", i, err))
						} else if optionals.Add(-1) == 0 {
							fatal.CompareAndSwap(nil, ErrAllOptionalFailed)
						}
					}
				}
				release(b)
			}
		}(i, s, chans[i])
	}

	var readErr error
	for fatal.Load() == nil {
		b := <-pool
		n, err := io.ReadFull(src, b.data)
		if n > 0 {
			b.n = n
			res.N += int64(n)
			b.refs.Store(int32(len(sinks)))
			for _, ch := range chans {
				ch <- b
			}
		} else {
			pool <- b
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	for _, ch := range chans {
		close(ch)
	}
	wg.Wait()
	if readErr != nil {
		return res, readErr
	}
	if err, _ := fatal.Load().(error); err != nil {
		return res, err
	}
	if hadOptional && optionals.Load() == 0 {
		return res, ErrAllOptionalFailed
	}
	return res, nil
}
