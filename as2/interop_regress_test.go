package as2

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"net/http/httptest"
	"testing"

	"github.com/as2gate/as2gate/cms"
)

// Regression tests for faults found by exchanging messages with libas2 (interop package).

// signedReceiptBackend answers every message with a signed, positive MDN.
type signedReceiptBackend struct {
	p   pair
	got chan *Incoming
}

func (b *signedReceiptBackend) Agreement(context.Context, *Request) (*Agreement, error) {
	return &Agreement{Unpack: *b.p.unpackOptions()}, nil
}

func (b *signedReceiptBackend) Receive(_ context.Context, req *Request, _ *Spool, in *Incoming, unpackErr error) (*Reply, error) {
	d := Processed()
	if unpackErr != nil {
		d = ProcessedWithError(DescUnexpectedProcessingError)
	}
	b.got <- in
	h, body, err := EncodeMDN(NewMDN(req, in, d, "test"), req, &MDNSigner{Certificate: b.p.receiver.Certificate, Key: b.p.receiver.Key}, "RECEIVER")
	if err != nil {
		return nil, err
	}
	return &Reply{Header: h, Body: body}, nil
}

// TestSignedMessageMICUsesSignatureDigest: the Received-Content-MIC of a signed message is
// computed with the signature's digest, not with the signed-receipt-micalg the sender offered
// for the receipt (RFC 4130 §7.4.3). The Handler used the offer, so a message signed with
// SHA-1 that asked for a SHA-256 receipt came back with a SHA-256 MIC, which libas2 (and our
// own Message.Check) refused as a mismatch.
func TestSignedMessageMICUsesSignatureDigest(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	b := &signedReceiptBackend{p: p, got: make(chan *Incoming, 1)}
	srv := httptest.NewServer(&Handler{Backend: b})
	defer srv.Close()

	for _, tc := range []struct {
		name  string
		sign  MICAlg
		offer []MICAlg
	}{
		{"sha-1 signature, sha-256 receipt", MICAlgSHA1, []MICAlg{MICAlgSHA256}},
		{"sha-512 signature, sha-1 then sha-256 receipt", MICAlgSHA512, []MICAlg{MICAlgSHA1, MICAlgSHA256}},
		{"sha-256 signature and receipt", MICAlgSHA256, []MICAlg{MICAlgSHA256}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := p.packOptions()
			o.Sign, o.Encrypt = tc.sign, cms.AES128CBC
			o.MDN.MICAlgs = tc.offer
			msg, err := Pack([]Payload{{ContentType: "application/edi-x12", Body: bytes.NewReader([]byte("ISA*00~\r\n"))}}, o)
			if err != nil {
				t.Fatal(err)
			}
			defer msg.Close()
			resp, err := (&Client{}).Send(context.Background(), srv.URL, msg, &SendOptions{Trusted: []*x509.Certificate{p.receiver.Certificate}})
			in := <-b.got // taken first, so that the next case's Receive never blocks
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if in.MIC.Alg != tc.sign.Hash() || !in.MIC.Equal(msg.MIC) {
				t.Errorf("receiver MIC %v, want %v", in.MIC, msg.MIC)
			}
			if got := resp.Receipt.MDN.ReceivedMIC; got == nil || got.Alg != tc.sign.Hash() {
				t.Errorf("receipt MIC %v, want one in %v", got, tc.sign)
			}
			// The receipt itself is signed with the algorithm offered first.
			if s := resp.Receipt.Signer; s == nil || s.Hash != tc.offer[0].Hash() {
				t.Errorf("receipt signer %+v, want a %v signature", s, tc.offer[0])
			}
		})
	}
}

// TestUnsignedMessageMICUsesOffer: an unsigned message has no signature digest, so its MIC
// uses the first algorithm offered, else SHA-256.
func TestUnsignedMessageMICUsesOffer(t *testing.T) {
	t.Parallel()
	p := newPair(t)
	for _, tc := range []struct {
		name  string
		offer []MICAlg
		want  crypto.Hash
	}{
		{"offer sha-384", []MICAlg{MICAlgSHA384}, crypto.SHA384},
		{"no offer", nil, crypto.SHA1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := p.packOptions()
			o.Encrypt = cms.AES256CBC
			o.MDN = MDNRequest{Mode: MDNSync, MICAlgs: tc.offer}
			msg, err := Pack([]Payload{{Body: bytes.NewReader([]byte("payload"))}}, o)
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
			if in.MIC.Alg != tc.want || !in.MIC.Equal(msg.MIC) {
				t.Errorf("MIC %v, want %v equal to the sender's %v", in.MIC, tc.want, msg.MIC)
			}
		})
	}
}
