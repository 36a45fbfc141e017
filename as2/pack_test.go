package as2

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
)

// pair is a sender and a receiver identity.
type pair struct {
	sender, receiver *cmstest.Identity
}

func newPair(t testing.TB) pair {
	return pair{sender: cmstest.New(t, "sender", nil), receiver: cmstest.New(t, "receiver", nil)}
}

func (p pair) packOptions() *PackOptions {
	return &PackOptions{
		From: "SENDER", To: "RECEIVER", Subject: "test",
		Certificate: p.sender.Certificate, Key: p.sender.Key,
		Recipients: []*x509.Certificate{p.receiver.Certificate},
		MDN:        MDNRequest{Mode: MDNSync, Signed: true},
	}
}

func (p pair) unpackOptions() *UnpackOptions {
	return &UnpackOptions{
		Recipients: []cms.Recipient{{Certificate: p.receiver.Certificate, Key: p.receiver.Key}},
		Trusted:    []*x509.Certificate{p.sender.Certificate},
	}
}

func unpackMessage(t testing.TB, msg *Message, opts *UnpackOptions) (*Incoming, error) {
	t.Helper()
	in, err := Unpack(msg.Header, msg.Body.Open(), opts)
	if in != nil {
		t.Cleanup(func() { in.Close() })
	}
	return in, err
}

func readSpool(t testing.TB, s *Spool) []byte {
	t.Helper()
	b, err := io.ReadAll(s.Open())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPackUnpackEveryCombination packs a payload with every signing, compression and
// encryption choice and unpacks it: the payload, its file name and the layers come back, and
// the MIC the receiver computes is the MIC the sender expects (RFC 4130 §7.3.1, RFC 5402 §4).
func TestPackUnpackEveryCombination(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	payload := []byte("ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240101*1200*U*00401*000000001*0*P*>~\nGS*PO*S*R*20240101*1200*1*X*004010~\n")
	signs := []struct {
		alg MICAlg
		pss bool
	}{{0, false}, {MICAlgSHA1, false}, {MICAlgSHA256, false}, {MICAlgSHA384, true}, {MICAlgSHA512, false}}
	ciphers := []cms.Cipher{0, cms.DES3CBC, cms.AES128CBC, cms.AES192CBC, cms.AES256CBC, cms.AES128GCM, cms.AES256GCM}
	for _, sg := range signs {
		for _, comp := range []Compression{NoCompression, CompressBeforeSign, CompressAfterSign} {
			for _, c := range ciphers {
				name := fmt.Sprintf("sign=%v/pss=%v/compress=%v/encrypt=%v", sg.alg, sg.pss, comp, c)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					o := p.packOptions()
					o.Sign, o.PSS, o.Compression, o.Encrypt = sg.alg, sg.pss, comp, c
					if sg.alg == 0 {
						o.MDN.Signed = false
					}
					msg, err := Pack([]Payload{{Filename: "po 850.edi", ContentType: "application/edi-x12", Body: bytes.NewReader(payload)}}, o)
					if err != nil {
						t.Fatal(err)
					}
					defer msg.Close()
					uo := p.unpackOptions()
					uo.MICAlgs = msg.MDN.MICAlgs
					in, err := unpackMessage(t, msg, uo)
					if err != nil {
						t.Fatal(err)
					}
					if len(in.Attachments) != 1 {
						t.Fatalf("%d attachments", len(in.Attachments))
					}
					a := in.Attachments[0]
					if got := readSpool(t, a.Body); !bytes.Equal(got, payload) {
						t.Fatalf("payload = %q", got)
					}
					if a.Filename != "po 850.edi" || !strings.HasPrefix(a.ContentType, "application/edi-x12") {
						t.Fatalf("filename %q, content type %q", a.Filename, a.ContentType)
					}
					if in.Encrypted() != (c != 0) || in.Compressed() != (comp != NoCompression) || (in.Signer() != nil) != (sg.alg != 0) {
						t.Fatalf("layers %+v", in.Layers)
					}
					if s := in.Signer(); s != nil && (s.Hash != sg.alg.Hash() || s.PSS != sg.pss) {
						t.Fatalf("signer %+v", s)
					}
					want, ok := msg.micFor(in.MIC.Alg)
					if !ok || !want.Equal(in.MIC) {
						t.Fatalf("receiver MIC %v, sender expects %v (MICs %v)", in.MIC, msg.MIC, msg.MICs)
					}
				})
			}
		}
	}
}

func TestPackHeaders(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	o := p.packOptions()
	o.From, o.To = "MY COMPANY", "PARTNER"
	o.Sign, o.Encrypt = MICAlgSHA256, cms.AES256CBC
	o.MDN = MDNRequest{Mode: MDNAsync, Signed: true, URL: "https://as2.example/mdn", MICAlgs: []MICAlg{MICAlgSHA256, MICAlgSHA1}}
	o.Header = http.Header{"X-Custom": {"v"}}
	msg, err := Pack([]Payload{{Body: strings.NewReader("x")}}, o)
	if err != nil {
		t.Fatal(err)
	}
	defer msg.Close()
	for name, want := range map[string]string{
		"AS2-Version":                      "1.2",
		"AS2-From":                         `"MY COMPANY"`,
		"AS2-To":                           "PARTNER",
		"EDIINT-Features":                  "multiple-attachments",
		"Disposition-Notification-To":      "MY COMPANY",
		"Disposition-Notification-Options": "signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha-256, sha-1",
		"Receipt-Delivery-Option":          "https://as2.example/mdn",
		"Content-Type":                     `application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"`,
		"Mime-Version":                     "1.0",
		"Subject":                          "test",
		"X-Custom":                         "v",
	} {
		if got := msg.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if err := ValidateMessageID(msg.Header.Get("Message-ID")); err != nil || msg.Header.Get("Message-ID") != msg.MessageID {
		t.Errorf("Message-ID %q: %v", msg.Header.Get("Message-ID"), err)
	}
}

func TestPackSeveralAttachments(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	o := p.packOptions()
	o.Sign, o.Encrypt, o.Compression = MICAlgSHA256, cms.AES128CBC, CompressBeforeSign
	docs := []Payload{
		{Filename: "a.xml", ContentType: "application/xml", Body: strings.NewReader("<a/>")},
		{Filename: "b.pdf", ContentType: "application/pdf", Body: bytes.NewReader([]byte{0, 1, 2, '\r', '\n', 0xff})},
		{Filename: "c.edi", ContentType: "application/edifact", Body: strings.NewReader("UNB+UNOA:1+S+R'")},
	}
	msg, err := Pack(docs, o)
	if err != nil {
		t.Fatal(err)
	}
	defer msg.Close()
	in, err := unpackMessage(t, msg, p.unpackOptions())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"<a/>", "\x00\x01\x02\r\n\xff", "UNB+UNOA:1+S+R'"}
	if len(in.Attachments) != len(want) {
		t.Fatalf("%d attachments", len(in.Attachments))
	}
	for i, a := range in.Attachments {
		if got := string(readSpool(t, a.Body)); got != want[i] || a.Filename != docs[i].Filename {
			t.Errorf("attachment %d: %q %q", i, a.Filename, got)
		}
	}
}

func TestUnpackFailures(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	stranger := cmstest.New(t, "stranger", nil)
	pack := func(t *testing.T, mod func(*PackOptions)) *Message {
		o := p.packOptions()
		o.Sign, o.Encrypt = MICAlgSHA256, cms.AES256CBC
		mod(o)
		msg, err := Pack([]Payload{{Body: strings.NewReader("payload")}}, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { msg.Close() })
		return msg
	}
	cases := []struct {
		name   string
		mod    func(*PackOptions)
		unpack func(*UnpackOptions)
		wire   func([]byte) []byte
		desc   string
	}{
		{name: "not encrypted for us", mod: func(o *PackOptions) { o.Recipients = []*x509.Certificate{stranger.Certificate} }, desc: DescDecryptionFailed},
		// Inside an encrypted message every failure reads decryption-failed: no padding oracle.
		{name: "signed by someone else", mod: func(o *PackOptions) { o.Certificate, o.Key = stranger.Certificate, stranger.Key }, desc: DescDecryptionFailed},
		{name: "no trusted certificate", unpack: func(o *UnpackOptions) { o.Trusted = nil }, desc: DescDecryptionFailed},
		{name: "signed by someone else, not encrypted", mod: func(o *PackOptions) { o.Encrypt = 0; o.Certificate, o.Key = stranger.Certificate, stranger.Key }, desc: DescAuthenticationFailed},
		{name: "tampered content", mod: func(o *PackOptions) { o.Encrypt = 0 }, wire: func(b []byte) []byte {
			return bytes.Replace(b, []byte("payload"), []byte("PAYLOAD"), 1)
		}, desc: DescIntegrityCheckFailed},
		{name: "truncated envelope", wire: func(b []byte) []byte { return b[:len(b)/2] }, desc: DescDecryptionFailed},
		{name: "decompressed too large", mod: func(o *PackOptions) { o.Compression = CompressAfterSign }, unpack: func(o *UnpackOptions) { o.MaxSize = 10 }, desc: DescDecryptionFailed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mod := tc.mod
			if mod == nil {
				mod = func(*PackOptions) {}
			}
			msg := pack(t, mod)
			uo := p.unpackOptions()
			if tc.unpack != nil {
				tc.unpack(uo)
			}
			wire := readSpool(t, msg.Body)
			if tc.wire != nil {
				wire = tc.wire(wire)
			}
			_, err := Unpack(msg.Header, SpoolBytes(wire).Open(), uo)
			var ue *UnpackError
			if !errors.As(err, &ue) || ue.Description != tc.desc {
				t.Fatalf("err = %v, want an UnpackError %q", err, tc.desc)
			}
		})
	}
}

// TestUnpackBase64Body reads a body sent base64 with the HTTP header
// Content-Transfer-Encoding, as libas2 sends it.
func TestUnpackBase64Body(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	o := p.packOptions()
	o.Sign, o.Encrypt = MICAlgSHA512, cms.AES192CBC
	msg, err := Pack([]Payload{{Body: strings.NewReader("hello")}}, o)
	if err != nil {
		t.Fatal(err)
	}
	defer msg.Close()
	var b bytes.Buffer
	enc := bufio.NewWriter(&b)
	writeBase64Lines(enc, readSpool(t, msg.Body))
	enc.Flush()
	h := msg.Header.Clone()
	h.Set("Content-Transfer-Encoding", "base64")
	in, err := Unpack(h, SpoolBytes(b.Bytes()).Open(), p.unpackOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if got := readSpool(t, in.Attachments[0].Body); string(got) != "hello" {
		t.Fatalf("payload %q", got)
	}
}

// TestPackLargePayloadMemory packs and unpacks a payload much larger than the spool's memory
// part and checks that the heap does not grow with it.
func TestPackLargePayloadMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("large payload")
	}
	p := newPair(t)
	const size = 64 << 20
	o := p.packOptions()
	o.Sign, o.Encrypt, o.Compression = MICAlgSHA256, cms.AES256CBC, CompressBeforeSign
	o.SpoolDir = t.TempDir()
	alloc := totalAlloc(func() {
		msg, err := Pack([]Payload{{Filename: "big.bin", Body: &patternReader{left: size}}}, o)
		if err != nil {
			t.Fatal(err)
		}
		defer msg.Close()
		uo := p.unpackOptions()
		uo.SpoolDir = o.SpoolDir
		in, err := Unpack(msg.Header, msg.Body.Open(), uo)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		if n := in.Attachments[0].Body.Size(); n != size {
			t.Fatalf("payload size %d", n)
		}
		if want, _ := msg.micFor(crypto.SHA256); !want.Equal(in.MIC) {
			t.Fatalf("MIC %v, want %v", in.MIC, want)
		}
	})
	// Allocations in total, not the heap at one instant: a copy of the payload anywhere
	// would show here.
	if alloc > 32<<20 {
		t.Fatalf("packing and unpacking %d MB allocated %d MB", size>>20, alloc>>20)
	}
	t.Logf("packing and unpacking %d MB allocated %.1f MB", size>>20, float64(alloc)/(1<<20))
}

// totalAlloc returns the bytes allocated while f runs.
func totalAlloc(f func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
