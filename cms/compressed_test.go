package cms

import (
	"bytes"
	"compress/zlib"
	"crypto/sha256"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// textContent returns n bytes of EDI-like text, compressible as real AS2 payloads are. It
// cycles through a 1 MiB block made once, so that generating it costs next to nothing
// against what it measures.
func textContent(n int64) io.Reader {
	return io.LimitReader(&cycle{block: ediBlock()}, n)
}

var ediBlock = sync.OnceValue(func() []byte {
	var b []byte
	for line := 1; len(b) < 1<<20; line++ {
		b = fmt.Appendf(b, "LIN+%d++%08d:EN'QTY+21:%d'PRI+AAA:%d.%02d'\r\n",
			line, line*7919%100000000, line%97+1, line%1000, line%100)
	}
	return b[:1<<20]
})

type cycle struct {
	block []byte
	off   int
}

func (c *cycle) Read(p []byte) (int, error) {
	n := copy(p, c.block[c.off:])
	c.off = (c.off + n) % len(c.block)
	return n, nil
}

// randomContent returns n incompressible bytes, the same for the same seed.
func randomContent(n int64, seed uint64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), n)
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func mustCompress(t testing.TB, content []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := Compress(&out, bytes.NewReader(content)); err != nil {
		t.Fatalf("Compress: %v", err)
	}
	return out.Bytes()
}

// digestOf returns the SHA-256 and the length of what r yields.
func digestOf(t testing.TB, r io.Reader) ([32]byte, int64) {
	t.Helper()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil)), n
}

func TestCompressRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		content func() io.Reader
	}{
		{"empty", func() io.Reader { return bytes.NewReader(nil) }},
		{"one byte", func() io.Reader { return bytes.NewReader([]byte{'x'}) }},
		{"100 KB text", func() io.Reader { return textContent(100 << 10) }},
		{"100 KB random", func() io.Reader { return randomContent(100<<10, 1) }},
		{"10 MB text", func() io.Reader { return textContent(10 << 20) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want, wantLen := digestOf(t, tc.content())

			// Compress and Decompress run concurrently over a pipe: neither holds the
			// whole message.
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(Compress(pw, tc.content())) }()
			h := sha256.New()
			n, err := Decompress(h, pr, 0)
			if err != nil {
				t.Fatalf("Decompress: %v", err)
			}
			if n != wantLen || [32]byte(h.Sum(nil)) != want {
				t.Fatalf("round trip gave %d bytes with a different digest, want %d bytes", n, wantLen)
			}
		})
	}
}

// TestCompressEncoding checks the layout of the output byte by byte: the fixed BER prefix,
// definite-length primitive fragments of at most 32 KiB, and the end-of-contents octets.
func TestCompressEncoding(t *testing.T) {
	t.Parallel()
	content, _ := io.ReadAll(randomContent(100<<10, 2))
	out := mustCompress(t, content)

	wantPrefix := []byte{
		0x30, 0x80, // ContentInfo
		0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x09, // id-ct-compressedData
		0xa0, 0x80, // [0]
		0x30, 0x80, // CompressedData
		0x02, 0x01, 0x00, // version 0
		0x30, 0x0d, 0x06, 0x0b, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x03, 0x08, // zlib
		0x30, 0x80, // EncapsulatedContentInfo
		0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, // id-data
		0xa0, 0x80, // eContent [0]
		0x24, 0x80, // OCTET STRING, constructed
	}
	if !bytes.HasPrefix(out, wantPrefix) {
		t.Fatalf("prefix = % x\nwant      % x", out[:min(len(out), len(wantPrefix))], wantPrefix)
	}
	rest := out[len(wantPrefix):]
	var stream []byte
	fragments := 0
	for len(rest) > 0 && rest[0] == tagOctetString {
		h, err := parseHeader(rest, 0)
		if err != nil {
			t.Fatal(err)
		}
		if h.length == 0 || h.length > maxFragment {
			t.Fatalf("fragment %d has %d bytes, want 1..%d", fragments, h.length, maxFragment)
		}
		stream = append(stream, rest[h.headerBytes:h.headerBytes+int(h.length)]...)
		rest = rest[h.headerBytes+int(h.length):]
		fragments++
	}
	if !bytes.Equal(rest, make([]byte, 12)) {
		t.Fatalf("after the fragments: % x, want six end-of-contents", rest)
	}
	if fragments < 4 {
		t.Fatalf("%d fragments for 100 KB of incompressible content, want at least 4", fragments)
	}
	zr, err := zlib.NewReader(bytes.NewReader(stream))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("the fragments are not a zlib stream of the content: %v", err)
	}
	if typ, err := Identify(out[:64]); err != nil || typ != TypeCompressedData {
		t.Fatalf("Identify = %v, %v", typ, err)
	}
}

func TestDecompressLimit(t *testing.T) {
	t.Parallel()
	content := bytes.Repeat([]byte("0123456789"), 100)
	in := mustCompress(t, content)
	for _, tc := range []struct {
		name  string
		limit int64
		fail  bool
	}{
		{"no limit", 0, false},
		{"negative is no limit", -1, false},
		{"exactly the size", 1000, false},
		{"one byte short", 999, true},
		{"tiny", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			n, err := Decompress(&out, bytes.NewReader(in), tc.limit)
			if tc.fail {
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("err = %v, want ErrTooLarge", err)
				}
				if n > tc.limit || int64(out.Len()) > tc.limit {
					t.Fatalf("wrote %d bytes past a limit of %d", n, tc.limit)
				}
				return
			}
			if err != nil || n != 1000 || !bytes.Equal(out.Bytes(), content) {
				t.Fatalf("n = %d, err = %v", n, err)
			}
		})
	}
}

// TestDecompressBomb feeds Decompress 1 GB of zeros compressed as it is read, through a
// pipe. With a 10 MB limit it must stop after 10 MB of output, long before the 1 GB are
// compressed, and allocate far less than the limit. It does not run in parallel so that
// the allocation count is its own.
func TestDecompressBomb(t *testing.T) {
	const size, limit = 1 << 30, 10 << 20
	src := &countingReader{r: io.LimitReader(zeros{}, size)}
	pr, pw := io.Pipe()
	done := make(chan error, 1)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	go func() { done <- Compress(pw, src) }()
	n, err := Decompress(io.Discard, pr, limit)
	pr.CloseWithError(err) // stops the compressor at its next write
	compressErr := <-done
	runtime.ReadMemStats(&after)

	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decompress err = %v, want ErrTooLarge", err)
	}
	if n != limit {
		t.Fatalf("Decompress wrote %d bytes, want exactly the limit %d", n, limit)
	}
	if compressErr == nil {
		t.Fatal("the compressor finished: Decompress read the whole bomb")
	}
	// The compressor runs ahead of the inflater by what the readers buffer: a few 32 KiB
	// fragments, each holding some 32 MB of zeros.
	if src.n > size/4 {
		t.Fatalf("%d bytes of zeros were compressed before Decompress stopped", src.n)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Fatalf("compressing and decompressing allocated %d bytes", alloc)
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// compressedDER builds a CompressedData ContentInfo by hand, in DER, from its parts; the
// zero value of the options gives a valid one.
type compressedDER struct {
	outerType asn1.ObjectIdentifier // nil: id-ct-compressedData
	version   int64
	algorithm func(*cryptobyte.Builder) // nil: zlib with absent parameters
	innerType asn1.ObjectIdentifier     // nil: id-data
	noContent bool
	fragments bool   // eContent as a constructed, definite-length OCTET STRING
	stream    []byte // the zlib stream; nil: the zlib stream of "hello, world"
}

func (c compressedDER) build(t testing.TB) []byte {
	t.Helper()
	stream := c.stream
	if stream == nil {
		var b bytes.Buffer
		zw := zlib.NewWriter(&b)
		zw.Write([]byte("hello, world"))
		zw.Close()
		stream = b.Bytes()
	}
	outer, inner := c.outerType, c.innerType
	if outer == nil {
		outer = oidCompressedData
	}
	if inner == nil {
		inner = oidData
	}
	alg := c.algorithm
	if alg == nil {
		alg = func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidZlibCompress) }
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(outer)
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(c.version)
				b.AddASN1(cbasn1.SEQUENCE, alg)
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(inner)
					if c.noContent {
						return
					}
					b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
						if !c.fragments {
							b.AddASN1OctetString(stream)
							return
						}
						b.AddASN1(cbasn1.OCTET_STRING.Constructed(), func(b *cryptobyte.Builder) {
							for s := stream; len(s) > 0; {
								k := min(len(s), 3)
								b.AddASN1OctetString(s[:k])
								s = s[k:]
							}
						})
					})
				})
			})
		})
	})
	out, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func zlibOf(s string) []byte {
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

func TestDecompressAccepts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   compressedDER
	}{
		{"DER", compressedDER{}},
		{"constructed eContent", compressedDER{fragments: true}},
		{"NULL parameters", compressedDER{algorithm: func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidZlibCompress)
			b.AddASN1NULL()
		}}},
		{"stored block", compressedDER{stream: func() []byte {
			var b bytes.Buffer
			zw, _ := zlib.NewWriterLevel(&b, zlib.NoCompression)
			zw.Write([]byte("hello, world"))
			zw.Close()
			return b.Bytes()
		}()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			n, err := Decompress(&out, bytes.NewReader(tc.in.build(t)), 100)
			if err != nil || n != 12 || out.String() != "hello, world" {
				t.Fatalf("got %q (%d), %v", out.String(), n, err)
			}
		})
	}
}

func TestDecompressRejects(t *testing.T) {
	t.Parallel()
	good := zlibOf("hello, world")
	badChecksum := bytes.Clone(good)
	badChecksum[len(badChecksum)-1] ^= 1
	for _, tc := range []struct {
		name string
		in   compressedDER
		want func(error) bool
	}{
		{"signed-data", compressedDER{outerType: oidSignedData}, nil},
		{"version 1", compressedDER{version: 1}, nil},
		{"unknown algorithm", compressedDER{algorithm: func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 3, 4})
		}}, isUnsupportedCompression},
		{"zlib with parameters", compressedDER{algorithm: func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidZlibCompress)
			b.AddASN1Int64(9)
		}}, isSyntax},
		{"not id-data", compressedDER{innerType: oidSignedData}, nil},
		{"detached", compressedDER{noContent: true}, nil},
		{"not zlib", compressedDER{stream: []byte("hello, world")}, nil},
		{"bad checksum", compressedDER{stream: badChecksum}, nil},
		{"no checksum", compressedDER{stream: good[:len(good)-4]}, nil},
		{"trailing data", compressedDER{stream: append(bytes.Clone(good), 0)}, nil},
		{"two streams", compressedDER{stream: append(bytes.Clone(good), good...)}, nil},
		{"trailing data in fragments", compressedDER{stream: append(bytes.Clone(good), "xyz"...), fragments: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Decompress(io.Discard, bytes.NewReader(tc.in.build(t)), 0)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.want != nil && !tc.want(err) {
				t.Fatalf("err = %v (%T)", err, err)
			}
		})
	}
}

func isUnsupportedCompression(err error) bool {
	var ue *UnsupportedAlgorithmError
	return errors.As(err, &ue) && ue.What == "compression"
}

func isSyntax(err error) bool {
	var se *SyntaxError
	return errors.As(err, &se)
}

// TestDecompressTruncated cuts valid BER and DER inputs at every length: each prefix must
// fail, and never with a panic or success.
func TestDecompressTruncated(t *testing.T) {
	t.Parallel()
	content, _ := io.ReadAll(randomContent(40<<10, 3)) // two fragments
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"BER", mustCompress(t, content)},
		{"DER", compressedDER{stream: zlibOf(string(content))}.build(t)},
		{"BER small", mustCompress(t, []byte("hello"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Decompress(io.Discard, bytes.NewReader(tc.in), 0); err != nil {
				t.Fatalf("whole input: %v", err)
			}
			for cut := range len(tc.in) {
				// Every byte near the ends and the fragment boundaries, a sample elsewhere.
				if cut > 200 && len(tc.in)-cut > 200 && cut%97 != 0 {
					continue
				}
				if _, err := Decompress(io.Discard, bytes.NewReader(tc.in[:cut]), 0); err == nil {
					t.Fatalf("accepted the first %d of %d bytes", cut, len(tc.in))
				}
			}
		})
	}
}

type failingWriter struct{ after int }

var errWrite = errors.New("disk full")

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.after {
		n := f.after
		f.after = 0
		return n, errWrite
	}
	f.after -= len(p)
	return len(p), nil
}

type brokenContent struct{}

var errRead = errors.New("connection reset")

func (brokenContent) Read([]byte) (int, error) { return 0, errRead }

func TestCompressErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		w       io.Writer
		content io.Reader
		want    error
	}{
		{"prefix write", &failingWriter{after: 3}, textContent(10), errWrite},
		{"fragment write", &failingWriter{after: 100}, randomContent(100<<10, 4), errWrite},
		{"suffix write", &failingWriter{after: len(compressedPrefix) + 20}, bytes.NewReader(nil), errWrite},
		{"content read", io.Discard, io.MultiReader(textContent(50<<10), brokenContent{}), errRead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := Compress(tc.w, tc.content); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDecompressWriteError(t *testing.T) {
	t.Parallel()
	in := mustCompress(t, bytes.Repeat([]byte("abc"), 50000))
	_, err := Decompress(&failingWriter{after: 1000}, bytes.NewReader(in), 0)
	if !errors.Is(err, errWrite) {
		t.Fatalf("err = %v, want the writer's error", err)
	}
}
