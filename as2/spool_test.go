package as2

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"testing/iotest"
)

// spoolContent is n bytes that differ from one position to the next, so that a misplaced
// or reused chunk shows.
func spoolContent(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31+i>>8) ^ seed
	}
	return b
}

func TestSpoolRoundTrip(t *testing.T) {
	t.Parallel()
	const memMax = 16 << 10
	cases := []struct {
		name    string
		n       int
		inFile  bool
		writeBy int // 0: ReadFrom a reader that returns a byte at a time
	}{
		{name: "empty", n: 0, writeBy: 1},
		{name: "small in one write", n: 100, writeBy: 100},
		{name: "exactly the memory limit", n: memMax, writeBy: 1000},
		{name: "one byte past the limit", n: memMax + 1, inFile: true, writeBy: 1000},
		{name: "large in small writes", n: 200 << 10, inFile: true, writeBy: 7},
		{name: "large in large writes", n: 200 << 10, inFile: true, writeBy: 64 << 10},
		{name: "small from a trickling reader", n: 5000},
		{name: "large from a trickling reader", n: 100 << 10, inFile: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := spoolContent(tc.n, 1)
			s := NewSpool(t.TempDir(), memMax)
			defer s.Close()
			if tc.writeBy == 0 {
				n, err := s.ReadFrom(iotest.OneByteReader(bytes.NewReader(want)))
				if err != nil || n != int64(tc.n) {
					t.Fatalf("ReadFrom = %d, %v", n, err)
				}
			} else {
				for rest := want; len(rest) > 0; {
					k := min(tc.writeBy, len(rest))
					if n, err := s.Write(rest[:k]); err != nil || n != k {
						t.Fatalf("Write = %d, %v", n, err)
					}
					rest = rest[k:]
				}
			}
			if s.Size() != int64(tc.n) {
				t.Fatalf("Size = %d, want %d", s.Size(), tc.n)
			}
			b, inMemory := s.Bytes()
			if inMemory == tc.inFile {
				t.Fatalf("Bytes reports in memory = %v, want %v", inMemory, !tc.inFile)
			}
			if inMemory && !bytes.Equal(b, want) {
				t.Fatal("Bytes differ from what was written")
			}
			got, err := io.ReadAll(s.Open())
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("Open reads %d bytes (%v), want the %d written", len(got), err, tc.n)
			}
			if tc.n > 10 {
				sec, err := io.ReadAll(s.Section(3, int64(tc.n-5)))
				if err != nil || !bytes.Equal(sec, want[3:tc.n-2]) {
					t.Fatalf("Section reads %d bytes (%v)", len(sec), err)
				}
			}
			if err := iotest.TestReader(s.Open(), want); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSpoolReadAtEdges(t *testing.T) {
	t.Parallel()
	for _, inFile := range []bool{false, true} {
		memMax := 100
		if inFile {
			memMax = 8
		}
		s := NewSpool(t.TempDir(), memMax)
		s.Write([]byte("0123456789"))
		p := make([]byte, 4)
		if n, err := s.ReadAt(p, 8); n != 2 || err != io.EOF || string(p[:n]) != "89" {
			t.Errorf("in file %v: ReadAt across the end = %d %q, %v", inFile, n, p[:n], err)
		}
		if n, err := s.ReadAt(p, 10); n != 0 || err != io.EOF {
			t.Errorf("in file %v: ReadAt at the end = %d, %v", inFile, n, err)
		}
		if n, err := s.ReadAt(p, 2); n != 4 || err != nil || string(p) != "2345" {
			t.Errorf("in file %v: ReadAt inside = %d %q, %v", inFile, n, p, err)
		}
		if _, err := s.ReadAt(p, -1); err == nil {
			t.Errorf("in file %v: ReadAt at a negative offset succeeded", inFile)
		}
		s.Close()
	}
}

// Buffers given back when one spool grows or spills are taken by the next: the contents of
// every spool must stay its own.
func TestSpoolRecycledBuffersStayPrivate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const memMax = 256 << 10
	var spools []*Spool
	var wants [][]byte
	for i := range 12 {
		// Alternate spools that stay in memory and spools that spill, written in interleaved
		// steps so that buffers pass from one to the other while both are in use.
		n := memMax / 2
		if i%2 == 1 {
			n = 3 * memMax
		}
		spools = append(spools, NewSpool(dir, memMax))
		wants = append(wants, spoolContent(n, byte(i)))
	}
	for off := 0; ; off += 5000 {
		more := false
		for i, s := range spools {
			if w := wants[i]; off < len(w) {
				s.Write(w[off:min(off+5000, len(w))])
				more = true
			}
		}
		if !more {
			break
		}
	}
	for i, s := range spools {
		got, err := io.ReadAll(s.Open())
		if err != nil || !bytes.Equal(got, wants[i]) {
			t.Errorf("spool %d: read %d bytes (%v), contents differ from what was written", i, len(got), err)
		}
		s.Close()
	}
}

func TestSpoolCloseAndErrors(t *testing.T) {
	t.Parallel()
	s := NewSpool(t.TempDir(), 4)
	s.Write([]byte("spilled"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := s.Write([]byte("x")); err == nil {
		t.Fatal("Write after Close succeeded")
	}

	broken := errors.New("connection reset")
	s = NewSpool("", 0)
	n, err := s.ReadFrom(io.MultiReader(bytes.NewReader([]byte("abc")), iotest.ErrReader(broken)))
	if !errors.Is(err, broken) || n != 3 {
		t.Fatalf("ReadFrom = %d, %v; want 3 and the reader's error", n, err)
	}

	s = NewSpool(t.TempDir()+"/missing", 4)
	if _, err := s.Write([]byte("too long")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Write spilling into a missing folder = %v", err)
	}
}

// A spool recycles its memory when it grows, spills or closes, but never memory that Bytes
// lent out: what Bytes returned stays intact whatever the spool and others write afterwards.
func TestSpoolBytesStayIntact(t *testing.T) {
	t.Parallel()
	const n = 64 << 10
	for _, then := range []string{"close", "grow", "spill"} {
		t.Run(then, func(t *testing.T) {
			t.Parallel()
			want := spoolContent(n, 7)
			lender := NewSpool(t.TempDir(), 4*n)
			defer lender.Close()
			lender.Write(want)
			lent, ok := lender.Bytes()
			if !ok {
				t.Fatal("the spool is not in memory")
			}
			switch then {
			case "close":
				lender.Close()
			case "grow":
				lender.Write(spoolContent(2*n, 8))
			case "spill":
				lender.Write(spoolContent(4*n, 8))
			}
			for i := range 20 {
				s := NewSpool("", 8*n)
				for range 8 {
					s.Write(spoolContent(n, byte(i)))
				}
				s.Close()
			}
			if !bytes.Equal(lent, want) {
				t.Fatalf("the bytes Bytes returned changed after %s", then)
			}
		})
	}
}

// TestSpoolClosedRead: reading a closed spool is an error however it held its contents, so
// that nothing stores an empty file from a spool closed too early.
func TestSpoolClosedRead(t *testing.T) {
	t.Parallel()
	small := NewSpool(t.TempDir(), 16)
	small.Write([]byte("abc"))
	big := NewSpool(t.TempDir(), 4)
	big.Write([]byte("abcdefgh"))
	for name, s := range map[string]*Spool{"in memory": small, "in a file": big} {
		s.Close()
		if _, err := io.ReadAll(s.Open()); !errors.Is(err, os.ErrClosed) {
			t.Errorf("%s: read after Close: %v, want os.ErrClosed", name, err)
		}
	}
}
