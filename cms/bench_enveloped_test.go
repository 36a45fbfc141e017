package cms

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"hash/crc32"
	"io"
	"runtime"
	"testing"

	"github.com/as2gate/as2gate/cms/cmstest"
)

// Throughput of Encrypt and Decrypt, streaming from a generated reader to io.Discard so that
// memory stays flat whatever the size: compare allocations across sizes.
//
//	go test ./cms -run '^$' -bench 'Encrypt|Decrypt' -benchtime 5x

var benchCases = []struct {
	cipher Cipher
	name   string
	n      int64
}{
	{AES256CBC, "1KB", 1 << 10},
	{AES256CBC, "1MB", 1 << 20},
	{AES256CBC, "100MB", 100 << 20},
	{AES256GCM, "1MB", 1 << 20},
}

func BenchmarkEncrypt(b *testing.B) {
	id := cmstest.New(b, "bench", nil)
	certs := []*x509.Certificate{id.Certificate}
	for _, bc := range benchCases {
		b.Run(fmt.Sprintf("%s/%s", bc.cipher, bc.name), func(b *testing.B) {
			b.SetBytes(bc.n)
			b.ReportAllocs()
			for b.Loop() {
				if err := Encrypt(io.Discard, &envPatternReader{bc.n}, bc.n, certs, &EncryptOptions{Cipher: bc.cipher}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecrypt(b *testing.B) {
	id := cmstest.New(b, "bench", nil)
	rcp := []Recipient{envRecipient(id)}
	for _, bc := range benchCases {
		b.Run(fmt.Sprintf("%s/%s", bc.cipher, bc.name), func(b *testing.B) {
			var open func() io.Reader
			if bc.n <= 1<<20 {
				var msg bytes.Buffer
				err := Encrypt(&msg, &envPatternReader{bc.n}, bc.n, []*x509.Certificate{id.Certificate}, &EncryptOptions{Cipher: bc.cipher})
				if err != nil {
					b.Fatal(err)
				}
				open = func() io.Reader { return bytes.NewReader(msg.Bytes()) }
			} else {
				open = syntheticCBCMessage(b, id, bc.n)
			}
			b.SetBytes(bc.n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decrypt(io.Discard, open(), rcp, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// syntheticCBCMessage returns a source of copies of a valid AES-256-CBC EnvelopedData with n
// bytes of content that are never held in memory. Only the last two ciphertext blocks decide
// whether CBC padding checks out, so the message is the real header, zero bytes in place of
// all other ciphertext (garbage plaintext, no error) and the real last two blocks.
func syntheticCBCMessage(tb testing.TB, id *cmstest.Identity, n int64) func() io.Reader {
	tb.Helper()
	var c headTailWriter
	if err := Encrypt(&c, &envPatternReader{n}, n, []*x509.Certificate{id.Certificate}, nil); err != nil {
		tb.Fatal(err)
	}
	ctLen := cbcCiphertextLen(n, 16)
	prefix := c.head[:c.n-ctLen]
	tail := c.tail[:]
	return func() io.Reader {
		return io.MultiReader(bytes.NewReader(prefix), io.LimitReader(envZeros{}, ctLen-32), bytes.NewReader(tail))
	}
}

// headTailWriter keeps the first 4 KB and the last 32 bytes written.
type headTailWriter struct {
	head []byte
	tail [32]byte
	n    int64
}

func (w *headTailWriter) Write(p []byte) (int, error) {
	if room := 4096 - len(w.head); room > 0 {
		w.head = append(w.head, p[:min(room, len(p))]...)
	}
	if len(p) >= 32 {
		copy(w.tail[:], p[len(p)-32:])
	} else {
		copy(w.tail[:], w.tail[len(p):])
		copy(w.tail[32-len(p):], p)
	}
	w.n += int64(len(p))
	return len(p), nil
}

type envZeros struct{}

func (envZeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestEncryptDecryptConstantMemory streams 64 MB through Encrypt and Decrypt connected by a
// pipe and checks that the allocations stay far below the content size. It does not run in
// parallel, so that no other test's allocations are counted.
func TestEncryptDecryptConstantMemory(t *testing.T) {
	id := cmstest.New(t, "memory", nil)
	rcp := []Recipient{envRecipient(id)}
	const size = 64 << 20
	want := crc32.NewIEEE()
	io.Copy(want, &envPatternReader{size})
	for _, tc := range []struct {
		cipher Cipher
		known  bool
	}{{AES256CBC, true}, {AES256CBC, false}, {AES128GCM, true}, {AES128GCM, false}} {
		announced := int64(-1)
		if tc.known {
			announced = size
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := Encrypt(pw, &envPatternReader{size}, announced, []*x509.Certificate{id.Certificate}, &EncryptOptions{Cipher: tc.cipher})
			pw.CloseWithError(err)
			done <- err
		}()
		got := crc32.NewIEEE()
		counter := &envCountingWriter{}
		_, err := Decrypt(io.MultiWriter(got, counter), pr, rcp, nil)
		if encErr := <-done; encErr != nil {
			t.Fatalf("%s known=%v: Encrypt: %v", tc.cipher, tc.known, encErr)
		}
		if err != nil {
			t.Fatalf("%s known=%v: Decrypt: %v", tc.cipher, tc.known, err)
		}
		runtime.ReadMemStats(&after)
		if counter.n != size || got.Sum32() != want.Sum32() {
			t.Fatalf("%s known=%v: decrypted %d bytes with another checksum", tc.cipher, tc.known, counter.n)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
			t.Errorf("%s known=%v: %d MB allocated to stream 64 MB", tc.cipher, tc.known, alloc>>20)
		} else {
			t.Logf("%s known=%v: %d KB allocated to stream 64 MB", tc.cipher, tc.known, alloc>>10)
		}
	}
}
