package as2

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"github.com/as2gate/as2gate/cms"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The MIC of a signed message is computed in the pass that verifies the signature, always
// with the signature's digest, whatever the sender offered for the receipt (RFC 4130
// §7.4.3: "the same as that used on the message that was signed").
func TestUnpackSignedMICAlgorithm(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	cases := []struct {
		name  string
		sign  MICAlg
		offer []MICAlg
		want  crypto.Hash
	}{
		{name: "no offer", sign: MICAlgSHA384, want: crypto.SHA384},
		{name: "offer the signature's digest", sign: MICAlgSHA256, offer: []MICAlg{MICAlgSHA256}, want: crypto.SHA256},
		{name: "offer another digest", sign: MICAlgSHA256, offer: []MICAlg{MICAlgSHA1, MICAlgSHA256}, want: crypto.SHA256},
		{name: "offer a stronger digest", sign: MICAlgSHA1, offer: []MICAlg{MICAlgSHA512}, want: crypto.SHA1},
		{name: "offer an unknown digest first", sign: MICAlgSHA1, offer: []MICAlg{MICAlg(crypto.MD5), MICAlgSHA256}, want: crypto.SHA1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := p.packOptions()
			o.Sign = tc.sign
			msg, err := Pack([]Payload{{ContentType: "application/edi-x12", Body: strings.NewReader("ISA*00*~IEA*1*000000001~")}}, o)
			if err != nil {
				t.Fatal(err)
			}
			defer msg.Close()
			uo := p.unpackOptions()
			uo.MICAlgs = tc.offer
			in, err := unpackMessage(t, msg, uo)
			if err != nil {
				t.Fatal(err)
			}
			want := MIC{Alg: tc.want, Digest: signedEntityDigest(t, msg, tc.want)}
			if !in.MIC.Equal(want) {
				t.Fatalf("MIC %v, want %v", in.MIC, want)
			}
		})
	}
}

// signedEntityDigest hashes the first part of the multipart/signed msg with alg.
func signedEntityDigest(t *testing.T, msg *Message, alg crypto.Hash) []byte {
	t.Helper()
	var h Header
	if err := h.Add(HeaderContentType, msg.Header.Get(HeaderContentType)); err != nil {
		t.Fatal(err)
	}
	boundary, err := h.Boundary()
	if err != nil {
		t.Fatal(err)
	}
	first, err := NewMultipartReader(msg.Body.Open(), boundary).NextPart()
	if err != nil {
		t.Fatal(err)
	}
	d := alg.New()
	if _, err := io.Copy(d, first); err != nil {
		t.Fatal(err)
	}
	return d.Sum(nil)
}

// An encrypted, unsigned message whose entity has bare LF header lines: the MIC is taken
// over the canonical entity, headers with CRLF (RFC 4130 §7.3.1), the body untouched.
func TestUnpackEncryptedMICCanonical(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	entity := "Content-Type: application/edi-x12\nContent-Disposition: attachment; filename=a.edi\n\nISA*00*~\nIEA*1~\n"
	canonical := "Content-Type: application/edi-x12\r\nContent-Disposition: attachment; filename=a.edi\r\n\r\nISA*00*~\nIEA*1~\n"
	var body bytes.Buffer
	if err := cms.Encrypt(&body, strings.NewReader(entity), int64(len(entity)), []*x509.Certificate{p.receiver.Certificate}, nil); err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Content-Type": {`application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"`}}
	uo := p.unpackOptions()
	uo.MICAlgs = []MICAlg{MICAlgSHA256}
	in, err := Unpack(h, SpoolBytes(body.Bytes()).Open(), uo)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	sum := sha256.Sum256([]byte(canonical))
	if want := (MIC{Alg: crypto.SHA256, Digest: sum[:]}); !in.MIC.Equal(want) {
		t.Fatalf("MIC %v, want %v over the canonical entity", in.MIC, want)
	}
	if got := readSpool(t, in.Attachments[0].Body); string(got) != "ISA*00*~\nIEA*1~\n" {
		t.Fatalf("payload %q", got)
	}
}
