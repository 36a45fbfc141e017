package payload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/as2gate/as2gate/internal/payload/payloadtest"
)

// storeKinds are the Store implementations every conformance test runs against.
var storeKinds = []struct {
	name string
	open func(t *testing.T) Store
}{
	{"dir", func(t *testing.T) Store {
		d, err := OpenDir(filepath.Join(t.TempDir(), "payloads"))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}},
	{"s3", func(t *testing.T) Store {
		srv := payloadtest.Serve(t, "as2gate")
		s, err := OpenS3(context.Background(), srv.URL("anonymous", "true", "prefix", "payloads"), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
}

// TestStoreConformance checks the Store contract on every implementation.
func TestStoreConformance(t *testing.T) {
	t.Parallel()
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			testStore(t, kind.open(t))
		})
	}
}

func testStore(t *testing.T, s Store) {
	ctx := context.Background()
	// Content larger than one read buffer, so that sequential reads span several calls.
	content := bytes.Repeat([]byte("ISA*00*          *00*          *ZZ*SENDER~\r\n"), 4000)
	sum := sha256.Sum256(content)
	want := hex.EncodeToString(sum[:])

	key, n, err := s.Put(ctx, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	if key != want || n != int64(len(content)) {
		t.Fatalf("Put = %s, %d; want %s, %d", key, n, want, len(content))
	}
	if key2, n2, err := s.Put(ctx, bytes.NewReader(content)); err != nil || key2 != key || n2 != n {
		t.Fatalf("Put of the same content = %s, %d, %v", key2, n2, err)
	}

	t.Run("read", func(t *testing.T) {
		b, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if b.Size() != int64(len(content)) {
			t.Fatalf("Size = %d, want %d", b.Size(), len(content))
		}
		got, err := io.ReadAll(b)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("Read: %d bytes, equal %v, %v", len(got), bytes.Equal(got, content), err)
		}
	})

	t.Run("read at", func(t *testing.T) {
		b, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		size := int64(len(content))
		for _, c := range []struct {
			name    string
			off     int64
			n       int
			wantN   int
			wantEOF bool
		}{
			{"start", 0, 100, 100, false},
			{"middle", 77777, 5000, 5000, false},
			{"backwards", 10, 10, 10, false},
			{"up to the end", size - 50, 50, 50, false},
			{"past the end", size - 50, 80, 50, true},
			{"at the end", size, 10, 0, true},
		} {
			p := make([]byte, c.n)
			got, err := b.ReadAt(p, c.off)
			if got != c.wantN || (err == io.EOF) != c.wantEOF || (err != nil && err != io.EOF) {
				t.Fatalf("%s: ReadAt(%d, %d) = %d, %v", c.name, c.n, c.off, got, err)
			}
			if !bytes.Equal(p[:got], content[c.off:c.off+int64(got)]) {
				t.Fatalf("%s: ReadAt returned other bytes", c.name)
			}
		}
		// Two section readers over one blob, read in turns, as the AS2 code does with parts.
		r1 := io.NewSectionReader(b, 0, size/2)
		r2 := io.NewSectionReader(b, size/2, size-size/2)
		var got1, got2 bytes.Buffer
		buf := make([]byte, 3000)
		for done1, done2 := false, false; !done1 || !done2; {
			if !done1 {
				done1 = copyChunk(t, &got1, r1, buf)
			}
			if !done2 {
				done2 = copyChunk(t, &got2, r2, buf)
			}
		}
		if !bytes.Equal(append(got1.Bytes(), got2.Bytes()...), content) {
			t.Fatal("interleaved section readers returned other bytes")
		}
	})

	t.Run("parallel read at", func(t *testing.T) {
		b, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for i := range 4 {
			wg.Go(func() {
				off := int64(i) * int64(len(content)) / 4
				got, err := io.ReadAll(io.NewSectionReader(b, off, int64(len(content))/4))
				if err != nil {
					errs <- err
				} else if !bytes.Equal(got, content[off:off+int64(len(got))]) || len(got) != len(content)/4 {
					errs <- errors.New("other bytes")
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	})

	t.Run("empty", func(t *testing.T) {
		key, n, err := s.Put(ctx, strings.NewReader(""))
		if err != nil || n != 0 || key != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
			t.Fatalf("Put of nothing = %s, %d, %v", key, n, err)
		}
		b, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if got, err := io.ReadAll(b); err != nil || len(got) != 0 || b.Size() != 0 {
			t.Fatalf("empty blob: %q, size %d, %v", got, b.Size(), err)
		}
	})

	t.Run("not found and bad keys", func(t *testing.T) {
		if _, err := s.Open(ctx, strings.Repeat("0", 64)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing key: %v", err)
		}
		for _, bad := range []string{"", "../../etc/passwd", strings.Repeat("g", 64), strings.Repeat("0", 63)} {
			if _, err := s.Open(ctx, bad); err == nil || errors.Is(err, ErrNotFound) {
				t.Fatalf("key %q: %v", bad, err)
			}
		}
	})

	t.Run("cancelled put", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := s.Put(cctx, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
			t.Fatalf("Put with a cancelled context: %v", err)
		}
	})

	t.Run("ping", func(t *testing.T) {
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func copyChunk(t *testing.T, dst *bytes.Buffer, r io.Reader, buf []byte) (done bool) {
	n, err := r.Read(buf)
	dst.Write(buf[:n])
	if err == io.EOF {
		return true
	}
	if err != nil {
		t.Fatal(err)
	}
	return false
}
