package as2

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/as2gate/as2gate/cms"
)

// Benchmarks of the AS2 protocol core: a whole message packed and unpacked, a signed MDN
// built and checked, and, in the same run, the raw RSA operations a small message cannot
// avoid, so that the cost of the CMS and MIME layers can be read off against them.
//
//	make bench
//	go test ./as2 -run '^$' -bench 'PackUnpack/.*/1KB|RawRSA' -count 10 | benchstat -
//
// BenchmarkPackUnpack reports, besides the usual figures:
//   - x-raw-RSA (1 KB): its time per message over the time of the four raw RSA operations,
//     measured in the same loop, one after the other, so that a busy machine slows both;
//   - peak-heap-MB and peak-live-MB (1 MB and more): the largest heap seen while the
//     messages were packed and unpacked, sampled every millisecond, counting dead objects
//     not yet swept, and the largest live heap a garbage collection found.

// benchSizes are the payload sizes of BenchmarkPackUnpack.
var benchSizes = []struct {
	name string
	n    int64
}{
	{"1KB", 1 << 10},
	{"1MB", 1 << 20},
	{"100MB", 100 << 20},
}

// BenchmarkPackUnpack packs a payload as a partner's gateway would send it (signed with
// SHA-256, encrypted with AES-256-CBC, PKCS#1 v1.5 key transport, RSA-2048; optionally
// compressed before signing), then unpacks it as the receiver does (decrypt, decompress,
// verify, MIC) and checks the MIC and the payload size.
func BenchmarkPackUnpack(b *testing.B) {
	p := newPair(b)
	for _, comp := range []Compression{NoCompression, CompressBeforeSign} {
		for _, size := range benchSizes {
			name := "plain"
			if comp != NoCompression {
				name = "compressed"
			}
			b.Run(name+"/"+size.name, func(b *testing.B) {
				dir := b.TempDir()
				o := p.packOptions()
				o.Sign, o.Encrypt, o.KeyTransport, o.Compression = MICAlgSHA256, cms.AES256CBC, cms.KeyTransport{}, comp
				o.SpoolDir = dir
				uo := p.unpackOptions()
				uo.SpoolDir = dir
				uo.MICAlgs = []MICAlg{MICAlgSHA256}
				op := func() { packUnpack(b, o, uo, size.n) }

				b.SetBytes(size.n)
				b.ReportAllocs()
				switch {
				case size.n <= 1<<10:
					benchAgainstRawRSA(b, p, op)
				default:
					peak := startHeapSampler()
					for b.Loop() {
						op()
					}
					peak.report(b)
				}
			})
		}
	}
}

// packUnpack packs n bytes of payload with o and unpacks the message with uo.
func packUnpack(tb testing.TB, o *PackOptions, uo *UnpackOptions, n int64) {
	msg, err := Pack([]Payload{{Filename: "po.edi", ContentType: "application/edi-x12", Body: newEDIReader(n)}}, o)
	if err != nil {
		tb.Fatal(err)
	}
	defer msg.Close()
	in, err := Unpack(msg.Header, msg.Body.Open(), uo)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	if len(in.Attachments) != 1 || in.Attachments[0].Body.Size() != n {
		tb.Fatalf("unpacked %d attachments", len(in.Attachments))
	}
	if want, ok := msg.micFor(in.MIC.Alg); !ok || !want.Equal(in.MIC) {
		tb.Fatalf("receiver MIC %v, sender expects %v", in.MIC, msg.MIC)
	}
}

// BenchmarkRawRSA is the RSA work of one signed and encrypted message and its unpacking:
// an RSA-2048 PKCS#1 v1.5 signature over a SHA-256 digest, the PKCS#1 v1.5 encryption of a
// 32-byte content key, its decryption, and the signature's verification.
func BenchmarkRawRSA(b *testing.B) {
	rsaOps := newRawRSA(newPair(b))
	b.ReportAllocs()
	for b.Loop() {
		rsaOps.run(b)
	}
}

// rawRSA holds the inputs of the four RSA operations.
type rawRSA struct {
	signKey, decryptKey *rsa.PrivateKey
	digest              []byte
	cek, decrypted      []byte
}

func newRawRSA(p pair) *rawRSA {
	digest := sha256.Sum256([]byte("signed attributes"))
	return &rawRSA{
		signKey:    p.sender.Key,
		decryptKey: p.receiver.Key,
		digest:     digest[:],
		cek:        bytes.Repeat([]byte{0x42}, 32),
		decrypted:  make([]byte, 32),
	}
}

func (r *rawRSA) run(tb testing.TB) {
	sig, err := rsa.SignPKCS1v15(nil, r.signKey, crypto.SHA256, r.digest)
	if err != nil {
		tb.Fatal(err)
	}
	enc, err := rsa.EncryptPKCS1v15(rand.Reader, &r.decryptKey.PublicKey, r.cek)
	if err != nil {
		tb.Fatal(err)
	}
	if err := rsa.DecryptPKCS1v15SessionKey(nil, r.decryptKey, enc, r.decrypted); err != nil || !bytes.Equal(r.decrypted, r.cek) {
		tb.Fatalf("decrypting the content key: %v", err)
	}
	if err := rsa.VerifyPKCS1v15(&r.signKey.PublicKey, crypto.SHA256, r.digest, sig); err != nil {
		tb.Fatal(err)
	}
}

// benchAgainstRawRSA runs op b.N times and, after each run, the raw RSA operations once with
// the timer stopped, and reports the ratio of their times as x-raw-RSA.
func benchAgainstRawRSA(b *testing.B, p pair, op func()) {
	rsaOps := newRawRSA(p)
	var rsaTime time.Duration
	for b.Loop() {
		op()
		b.StopTimer()
		start := time.Now()
		rsaOps.run(b)
		rsaTime += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed())/float64(rsaTime), "x-raw-RSA")
}

// BenchmarkSignedMDN is the receipt of a signed message: the receiver builds and signs the
// MDN (NewMDN, EncodeMDN), the sender reads and verifies it (ReadReceipt) and checks that it
// answers its message (Message.Check).
func BenchmarkSignedMDN(b *testing.B) {
	p := newPair(b)
	o := p.packOptions()
	o.Sign, o.Encrypt = MICAlgSHA256, cms.AES256CBC
	msg, err := Pack([]Payload{{Body: newEDIReader(1 << 10)}}, o)
	if err != nil {
		b.Fatal(err)
	}
	defer msg.Close()
	hr := &http.Request{Method: http.MethodPost, Header: msg.Header}
	req, err := ParseRequest(hr)
	if err != nil {
		b.Fatal(err)
	}
	uo := p.unpackOptions()
	uo.MICAlgs = req.MDN.MICAlgs
	in, err := Unpack(msg.Header, msg.Body.Open(), uo)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	mdnSigner := &MDNSigner{Certificate: p.receiver.Certificate, Key: p.receiver.Key}
	trusted := []*x509.Certificate{p.receiver.Certificate}

	b.ReportAllocs()
	for b.Loop() {
		m := NewMDN(req, in, Processed(), "as2gate")
		h, body, err := EncodeMDN(m, req, mdnSigner, "RECEIVER")
		if err != nil {
			b.Fatal(err)
		}
		rc, err := ReadReceipt(h, body, trusted)
		if err != nil {
			b.Fatal(err)
		}
		if err := msg.Check(rc); err != nil {
			b.Fatal(err)
		}
	}
}

// heapSampler records the largest heap seen until report.
type heapSampler struct {
	stop     chan struct{}
	done     sync.WaitGroup
	peakHeap uint64 // heap objects, live or not yet swept
	peakLive uint64 // live heap at the end of a GC mark phase
}

// startHeapSampler starts sampling the heap every millisecond, after a collection so that
// what came before does not count.
func startHeapSampler() *heapSampler {
	runtime.GC()
	s := &heapSampler{stop: make(chan struct{})}
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
	read := func() {
		metrics.Read(samples)
		s.peakHeap = max(s.peakHeap, samples[0].Value.Uint64())
		s.peakLive = max(s.peakLive, samples[1].Value.Uint64())
	}
	read()
	s.done.Add(1)
	go func() {
		defer s.done.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				read()
				return
			case <-t.C:
				read()
			}
		}
	}()
	return s
}

func (s *heapSampler) report(b *testing.B) {
	close(s.stop)
	s.done.Wait()
	b.ReportMetric(float64(s.peakHeap)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(s.peakLive)/(1<<20), "peak-live-MB")
}

// ediReader yields n bytes of X12-like text: segments with changing numbers, so that it
// compresses like real EDI rather than like a repeated byte.
type ediReader struct {
	left  int64
	block []byte
	off   int
}

var ediBlock = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 64<<10; i++ {
		fmt.Fprintf(&b, "PO1*%d*%d*EA*%s**BP*%d*VP*ACME-%05d~\r\n", i, 1+i*7%113, strconv.FormatFloat(float64(i*37%10007)/100, 'f', 2, 64), 100000+i*7919%90000, i*31%99991)
	}
	return b.Bytes()[:64<<10]
})

func newEDIReader(n int64) *ediReader { return &ediReader{left: n, block: ediBlock()} }

func (r *ediReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.block[r.off:])
		n += c
		r.off = (r.off + c) % len(r.block)
	}
	r.left -= int64(n)
	return n, nil
}
