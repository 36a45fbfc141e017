package cms

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/cms/cmstest"
)

// FuzzParseSignedData feeds mutations of valid signatures to ParseSignedData and, when they
// parse, to Verify. Nothing may panic, and every failure must be an error of the package.
func FuzzParseSignedData(f *testing.F) {
	alice := cmstest.New(f, "alice", nil)
	content := []byte("fuzz content\r\n")
	for _, opts := range []*SignOptions{
		nil,
		{Hash: crypto.SHA1, NoCertificate: true},
		{Hash: crypto.SHA384, PSS: true},
		{Hash: crypto.SHA512, PSS: true, SubjectKeyID: true},
	} {
		der, err := SignDetached(bytes.NewReader(content), alice.Certificate, alice.Key, opts)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
		f.Add(berify(der))
		enc, err := Sign(content, alice.Certificate, alice.Key, opts)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Add(handSigner{hash: crypto.SHA256, noAttrs: true}.sign(f, alice, content))
	f.Add(handSigner{hash: crypto.SHA256, pssSalt: 222}.sign(f, alice, content))

	trusted := []*x509.Certificate{alice.Certificate}
	f.Fuzz(func(t *testing.T, in []byte) {
		sd, err := ParseSignedData(in)
		if err != nil {
			checkPackageError(t, err)
			return
		}
		var r *bytes.Reader
		if sd.Detached {
			r = bytes.NewReader(content)
		}
		var s *Signer
		if r != nil {
			s, err = sd.Verify(r, trusted)
		} else {
			s, err = sd.Verify(nil, trusted)
		}
		if err != nil {
			checkPackageError(t, err)
			return
		}
		if s.Certificate != alice.Certificate {
			t.Fatalf("verified by an untrusted certificate %v", s.Certificate.Subject)
		}
	})
}

func checkPackageError(t *testing.T, err error) {
	var se *SyntaxError
	var ve *VerifyError
	if errors.As(err, &se) || errors.As(err, &ve) || errors.Is(err, ErrTooLarge) {
		return
	}
	if !strings.HasPrefix(err.Error(), "cms: ") {
		t.Fatalf("error %q is neither typed nor prefixed", err)
	}
}
