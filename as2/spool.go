package as2

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sync"
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
	mem    []byte // the contents while they are in memory
	lent   bool   // Bytes handed mem out: it must not be recycled
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
	return &Spool{memMax: len(b) + 1, mem: append([]byte(nil), b...), size: int64(len(b))}
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
	if s.f == nil && len(s.mem)+len(p) > s.memMax {
		f, err := os.CreateTemp(s.dir, "as2-spool-*")
		if err != nil {
			return 0, fmt.Errorf("as2: spooling to disk: %w", err)
		}
		// The file is an anonymous scratch area: unlink it now so that nothing is left
		// behind if the process dies before Close.
		os.Remove(f.Name())
		if _, err := f.Write(s.mem); err != nil {
			f.Close()
			return 0, fmt.Errorf("as2: spooling to disk: %w", err)
		}
		s.dropMem()
		s.f = f
	}
	if s.f != nil {
		n, err := s.f.Write(p)
		s.size += int64(n)
		return n, err
	}
	if len(s.mem)+len(p) > cap(s.mem) {
		grown := getBuffer(max(2*cap(s.mem), len(s.mem)+len(p)))
		grown = append(grown, s.mem...)
		s.dropMem()
		s.mem = grown
	}
	s.mem = append(s.mem, p...)
	s.size += int64(len(p))
	return len(p), nil
}

// ReadFrom copies r into the spool.
//
// It gathers r's reads into chunks of spoolChunk bytes before writing them: a reader that
// returns a line at a time, like a multipart part, would otherwise make one write system
// call per line once the spool is a file.
func (s *Spool) ReadFrom(r io.Reader) (int64, error) {
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	buf := *bp
	var total int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			m, werr := s.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return total, nil
		default:
			return total, err
		}
	}
}

// Size is the number of bytes written.
func (s *Spool) Size() int64 { return s.size }

// Bytes returns the contents when they are held in memory, and false when they are in a file.
// The slice does not show later writes, and nothing else ever writes to it: the spool does
// not recycle memory it has handed out.
func (s *Spool) Bytes() ([]byte, bool) {
	if s.f != nil || s.ra != nil {
		return nil, false
	}
	s.lent = true
	return s.mem, true
}

// ReadAt reads from the written contents.
func (s *Spool) ReadAt(p []byte, off int64) (int, error) {
	if s.closed {
		// Whether it was in memory or in a file, a closed spool has nothing to give.
		return 0, os.ErrClosed
	}
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
	if off < 0 {
		return 0, errors.New("as2: spool read at a negative offset")
	}
	if off >= int64(len(s.mem)) {
		return 0, io.EOF
	}
	n := copy(p, s.mem[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
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
	s.dropMem()
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}

// dropMem lets go of the memory buffer, recycling it unless Bytes handed it out: its caller
// may still hold it.
func (s *Spool) dropMem() {
	if !s.lent {
		putBuffer(s.mem)
	}
	s.mem, s.lent = nil, false
}

// spoolChunk is the size of the chunks ReadFrom writes.
const spoolChunk = 64 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, spoolChunk); return &b }}

// Memory buffers are recycled when a spool outgrows them, spills to its file, or is closed,
// unless Bytes lent them out: every layer of a large message fills one up to the memory
// limit, and allocating (and zeroing) those afresh each time cost a third of the time of
// packing and unpacking a 1 MB message. They are pooled by size class: class k holds
// buffers of at least 1<<k bytes.
const (
	minPooledClass = 12 // 4 KiB: smaller buffers are cheap to allocate
	maxPooledClass = 26 // 64 MiB
)

var bufferPools [maxPooledClass + 1]sync.Pool

// getBuffer returns an empty buffer with room for at least n bytes.
func getBuffer(n int) []byte {
	k := bits.Len(uint(n - 1)) // the smallest k with 1<<k >= n
	if k < minPooledClass || k > maxPooledClass {
		return make([]byte, 0, n)
	}
	if b, ok := bufferPools[k].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, 1<<k)
}

// putBuffer gives b back for reuse; nobody may use it afterwards.
func putBuffer(b []byte) {
	k := bits.Len(uint(cap(b))) - 1 // the largest k with 1<<k <= cap(b)
	if k < minPooledClass || k > maxPooledClass {
		return
	}
	bufferPools[k].Put(&b)
}
