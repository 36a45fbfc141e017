package cms

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"slices"
	"testing"

	"github.com/as2gate/as2gate/cms/cmstest"
)

// SignDetachedDigest over a digest the caller computed gives a signature that verifies over
// the content, and Verify hands the same digest back in Signer.Digest.
func TestSignDetachedDigest(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	trusted := []*x509.Certificate{alice.Certificate}
	content := []byte("Content-Type: application/edi-x12\r\n\r\nISA*00*~IEA*1*000000001~")
	for _, alg := range []crypto.Hash{0, crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		t.Run(alg.String(), func(t *testing.T) {
			t.Parallel()
			want := alg
			if want == 0 {
				want = crypto.SHA256
			}
			h := want.New()
			h.Write(content)
			digest := h.Sum(nil)
			der, err := SignDetachedDigest(digest, alice.Certificate, alice.Key, &SignOptions{Hash: alg})
			if err != nil {
				t.Fatal(err)
			}
			sd, err := ParseSignedData(der)
			if err != nil {
				t.Fatal(err)
			}
			if got := sd.DigestAlgorithms(); !slices.Equal(got, []crypto.Hash{want}) {
				t.Fatalf("DigestAlgorithms = %v, want [%v]", got, want)
			}
			s, err := sd.Verify(bytes.NewReader(content), trusted)
			if err != nil {
				t.Fatal(err)
			}
			if s.Hash != want || !bytes.Equal(s.Digest, digest) {
				t.Fatalf("Signer hash %v digest %x, want %v %x", s.Hash, s.Digest, want, digest)
			}
			// The same signature over other content fails on the message digest.
			_, err = sd.Verify(bytes.NewReader(append(content, '!')), trusted)
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Reason != ReasonDigestMismatch {
				t.Fatalf("Verify over other content = %v, want %s", err, ReasonDigestMismatch)
			}
		})
	}
}

func TestSignDetachedDigestWrongLength(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	for name, tc := range map[string]struct {
		alg crypto.Hash
		n   int
	}{
		"SHA-1 digest for SHA-256":   {crypto.SHA256, 20},
		"SHA-512 digest for SHA-384": {crypto.SHA384, 64},
		"empty":                      {crypto.SHA256, 0},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := SignDetachedDigest(make([]byte, tc.n), alice.Certificate, alice.Key, &SignOptions{Hash: tc.alg}); err == nil {
				t.Fatalf("a %d-byte digest signed as %v", tc.n, tc.alg)
			}
		})
	}
}

func TestDigestAlgorithms(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	content := []byte("content")
	cases := map[string]struct {
		der  []byte
		want []crypto.Hash
	}{
		"SHA-384, NULL parameters": {handSigner{hash: crypto.SHA384, digestNULL: true}.sign(t, alice, content), []crypto.Hash{crypto.SHA384}},
		"no signed attributes":     {handSigner{hash: crypto.SHA1, noAttrs: true}.sign(t, alice, content), []crypto.Hash{crypto.SHA1}},
		// Verify reports an unsupported digest without hashing anything for it.
		"MD5": {handSigner{hash: crypto.SHA256, digestOID: asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}}.sign(t, alice, content), nil},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sd, err := ParseSignedData(tc.der)
			if err != nil {
				t.Fatal(err)
			}
			if got := sd.DigestAlgorithms(); !slices.Equal(got, tc.want) {
				t.Fatalf("DigestAlgorithms = %v, want %v", got, tc.want)
			}
		})
	}
}
