package as2

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// DefaultSpoolMemory is how much of one intermediate layer a Spool keeps in memory before it
// moves to a temporary file.
const DefaultSpoolMemory = 1 << 20

// Spool holds one layer of a message being packed or unpacked: in memory while it is small,
// in a temporary file once it grows past its memory limit. It lets each layer know its exact
// size (so the next one can be written as DER) without holding a large payload in memory.
//
// A Spool is written once, then read any number of times with Open or ReadAt; Close removes
// its file.
type Spool struct {
	dir    string
	memMax int
	buf    bytes.Buffer
	f      *os.File
	ra     io.ReaderAt // the contents of a read-only spool made by SpoolReaderAt
	size   int64
	closed bool
}

// NewSpool returns an empty spool that keeps up to memMax bytes in memory (<= 0 means
// DefaultSpoolMemory) and then spills to a file in dir ("" means os.TempDir()).
func NewSpool(dir string, memMax int) *Spool {
	if memMax <= 0 {
		memMax = DefaultSpoolMemory
	}
	return &Spool{dir: dir, memMax: memMax}
}

// SpoolBytes returns a spool holding b, kept in memory.
func SpoolBytes(b []byte) *Spool {
	s := &Spool{memMax: len(b) + 1}
	s.buf.Write(b)
	s.size = int64(len(b))
	return s
}

// SpoolReaderAt returns a read-only spool over size bytes of r, such as a stored wire
// message, so that it can be sent or unpacked without a copy. Closing it does not close r.
func SpoolReaderAt(r io.ReaderAt, size int64) *Spool {
	return &Spool{ra: r, size: size}
}

// Write appends p.
func (s *Spool) Write(p []byte) (int, error) {
	if s.closed {
		return 0, errors.New("as2: write to a closed spool")
	}
	if s.ra != nil {
		return 0, errors.New("as2: write to a read-only spool")
	}
	if s.f == nil && s.buf.Len()+len(p) > s.memMax {
		f, err := os.CreateTemp(s.dir, "as2-spool-*")
		if err != nil {
			return 0, fmt.Errorf("as2: spooling to disk: %w", err)
		}
		// The file is an anonymous scratch area: unlink it now so that nothing is left
		// behind if the process dies before Close.
		os.Remove(f.Name())
		if _, err := f.Write(s.buf.Bytes()); err != nil {
			f.Close()
			return 0, fmt.Errorf("as2: spooling to disk: %w", err)
		}
		s.buf = bytes.Buffer{}
		s.f = f
	}
	var n int
	var err error
	if s.f != nil {
		n, err = s.f.Write(p)
	} else {
		n, err = s.buf.Write(p)
	}
	s.size += int64(n)
	return n, err
}

// ReadFrom copies r into the spool.
func (s *Spool) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(struct{ io.Writer }{s}, r)
}

// Size is the number of bytes written.
func (s *Spool) Size() int64 { return s.size }

// Bytes returns the contents when they are held in memory, and false when they are in a file.
func (s *Spool) Bytes() ([]byte, bool) {
	if s.f != nil || s.ra != nil {
		return nil, false
	}
	return s.buf.Bytes(), true
}

// ReadAt reads from the written contents.
func (s *Spool) ReadAt(p []byte, off int64) (int, error) {
	if s.ra != nil {
		if off >= s.size {
			return 0, io.EOF
		}
		if rest := s.size - off; int64(len(p)) > rest {
			n, err := s.ra.ReadAt(p[:rest], off)
			if err == nil {
				err = io.EOF
			}
			return n, err
		}
		return s.ra.ReadAt(p, off)
	}
	if s.f != nil {
		return s.f.ReadAt(p, off)
	}
	return bytes.NewReader(s.buf.Bytes()).ReadAt(p, off)
}

// Open returns a reader over the whole contents; several may be open at once.
func (s *Spool) Open() *io.SectionReader { return io.NewSectionReader(s, 0, s.size) }

// Section returns a reader over n bytes from off.
func (s *Spool) Section(off, n int64) *io.SectionReader { return io.NewSectionReader(s, off, n) }

// Close releases the spool's file, if any.
func (s *Spool) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.buf = bytes.Buffer{}
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}
