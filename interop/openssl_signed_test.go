package interop

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
)

var signedHashes = []struct {
	hash crypto.Hash
	md   string // OpenSSL's name
}{
	{crypto.SHA1, "sha1"},
	{crypto.SHA256, "sha256"},
	{crypto.SHA384, "sha384"},
	{crypto.SHA512, "sha512"},
}

// signedContent is binary on purpose: bare LF, CRLF, NUL and high bytes must all survive
// when -binary is given.
func signedContent() []byte {
	b := []byte("Content-Type: application/EDIFACT\r\n\r\nUNA:+.? 'UNB+UNOC:3\n")
	for i := 0; i < 256; i++ {
		b = append(b, byte(i))
	}
	return b
}

// TestOpenSSLVerifiesOurSignatures signs here and verifies with openssl cms -verify.
func TestOpenSSLVerifiesOurSignatures(t *testing.T) {
	t.Parallel()
	openssl := need(t, "openssl")
	alice := cmstest.New(t, "alice", nil)
	dir := t.TempDir()
	certPath, _ := alice.WriteFiles(t, dir, "alice")
	content := signedContent()
	contentPath := filepath.Join(dir, "content")
	if err := os.WriteFile(contentPath, content, 0o600); err != nil {
		t.Fatal(err)
	}
	tamperedPath := filepath.Join(dir, "tampered")
	if err := os.WriteFile(tamperedPath, append(bytes.Clone(content), '!'), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, h := range signedHashes {
		for _, pss := range []bool{false, true} {
			for _, variant := range []string{"detached", "encapsulated", "nocerts", "keyid"} {
				name := fmt.Sprintf("%s/pss=%t/%s", h.md, pss, variant)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					opts := &cms.SignOptions{Hash: h.hash, PSS: pss, NoCertificate: variant == "nocerts", SubjectKeyID: variant == "keyid"}
					var der []byte
					var err error
					if variant == "encapsulated" {
						der, err = cms.Sign(content, alice.Certificate, alice.Key, opts)
					} else {
						der, err = cms.SignDetached(bytes.NewReader(content), alice.Certificate, alice.Key, opts)
					}
					if err != nil {
						t.Fatal(err)
					}
					sigPath := filepath.Join(t.TempDir(), "sig.der")
					if err := os.WriteFile(sigPath, der, 0o600); err != nil {
						t.Fatal(err)
					}
					args := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", sigPath,
						"-CAfile", certPath, "-purpose", "any"}
					if variant == "nocerts" {
						args = append(args, "-certfile", certPath)
					}
					if variant != "encapsulated" {
						out := run(t, nil, openssl, append(args, "-content", contentPath)...)
						if !bytes.Equal(out, content) {
							t.Fatalf("openssl verified other content: %q", out)
						}
						// openssl must really check: the same signature over other bytes fails.
						if _, err := runErr(nil, openssl, append(args, "-content", tamperedPath)...); err == nil {
							t.Fatal("openssl accepted the signature over tampered content")
						}
						return
					}
					if out := run(t, nil, openssl, args...); !bytes.Equal(out, content) {
						t.Fatalf("openssl extracted other content: %q", out)
					}
				})
			}
		}
	}
}

// TestOurVerifyOfOpenSSLSignatures signs with openssl cms -sign and verifies here.
func TestOurVerifyOfOpenSSLSignatures(t *testing.T) {
	t.Parallel()
	openssl := need(t, "openssl")
	alice := cmstest.New(t, "alice", nil)
	mallory := cmstest.New(t, "mallory", nil)
	dir := t.TempDir()
	certPath, keyPath := alice.WriteFiles(t, dir, "alice")
	content := signedContent()
	contentPath := filepath.Join(dir, "content")
	if err := os.WriteFile(contentPath, content, 0o600); err != nil {
		t.Fatal(err)
	}

	// -stream with DER output always encapsulates the content, as BER with indefinite
	// lengths and a constructed OCTET STRING. OpenSSL 3.0 cannot combine -stream with PSS
	// ("asn1_template_ex_i2d:illegal zero content": the PSS parameters are not set yet when
	// the streaming header is written), so those combinations are not run.
	type variant struct {
		flags    []string
		detached bool
		certs    int
		stream   bool
	}
	variants := map[string]variant{
		"detached":         {detached: true, certs: 1},
		"nodetach":         {flags: []string{"-nodetach"}, certs: 1},
		"stream":           {flags: []string{"-stream"}, certs: 1, stream: true},
		"nodetach stream":  {flags: []string{"-nodetach", "-stream"}, certs: 1, stream: true},
		"nocerts":          {flags: []string{"-nocerts"}, detached: true},
		"keyid":            {flags: []string{"-keyid"}, detached: true, certs: 1},
		"keyid nocerts":    {flags: []string{"-keyid", "-nocerts"}, detached: true},
		"noattr":           {flags: []string{"-noattr"}, detached: true, certs: 1},
		"noattr nodetach":  {flags: []string{"-noattr", "-nodetach"}, certs: 1},
		"stream nocerts":   {flags: []string{"-stream", "-nocerts", "-keyid"}, stream: true},
		"PSS salt=digest":  {flags: []string{"-keyopt", "rsa_pss_saltlen:digest"}, detached: true, certs: 1},
		"PSS salt=max":     {flags: []string{"-keyopt", "rsa_pss_saltlen:max"}, detached: true, certs: 1},
		"PSS salt=20":      {flags: []string{"-keyopt", "rsa_pss_saltlen:20"}, detached: true, certs: 1},
		"PSS mgf1 matched": {flags: []string{"-keyopt", "rsa_mgf1_md:sha256"}, detached: true, certs: 1},
	}
	for _, h := range signedHashes {
		for _, pss := range []bool{false, true} {
			for vname, v := range variants {
				isPSSVariant := strings.HasPrefix(vname, "PSS")
				if isPSSVariant && !pss || v.stream && pss {
					continue
				}
				if vname == "PSS mgf1 matched" && h.hash != crypto.SHA256 {
					continue
				}
				name := fmt.Sprintf("%s/pss=%t/%s", h.md, pss, vname)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					sigPath := filepath.Join(t.TempDir(), "sig.der")
					args := []string{"cms", "-sign", "-binary", "-md", h.md, "-in", contentPath,
						"-signer", certPath, "-inkey", keyPath, "-outform", "DER", "-out", sigPath}
					if pss {
						args = append(args, "-keyopt", "rsa_padding_mode:pss")
					}
					run(t, nil, openssl, append(args, v.flags...)...)
					der, err := os.ReadFile(sigPath)
					if err != nil {
						t.Fatal(err)
					}
					if v.stream && (len(der) < 2 || der[1] != 0x80) {
						t.Fatalf("openssl -stream did not write indefinite lengths: % x", der[:min(len(der), 8)])
					}
					sd, err := cms.ParseSignedData(der)
					if err != nil {
						t.Fatal(err)
					}
					if sd.Detached != v.detached || len(sd.Certificates) != v.certs {
						t.Fatalf("Detached = %t with %d certificates, want %t with %d", sd.Detached, len(sd.Certificates), v.detached, v.certs)
					}
					verify := func(trusted *cmstest.Identity, c []byte) (*cms.Signer, error) {
						if v.detached {
							return sd.Verify(bytes.NewReader(c), []*x509.Certificate{trusted.Certificate})
						}
						return sd.Verify(nil, []*x509.Certificate{trusted.Certificate})
					}
					s, err := verify(alice, content)
					if err != nil {
						t.Fatal(err)
					}
					if s.Hash != h.hash || s.PSS != pss || !s.Certificate.Equal(alice.Certificate) {
						t.Errorf("Signer = %+v", s)
					}
					if !v.detached && !bytes.Equal(sd.Content, content) {
						t.Errorf("encapsulated content differs: %q", sd.Content)
					}
					if noAttr := strings.Contains(vname, "noattr"); s.SigningTime.IsZero() != noAttr {
						t.Errorf("SigningTime = %v with -noattr %t", s.SigningTime, noAttr)
					}
					_, err = verify(mallory, content)
					var ve *cms.VerifyError
					if !errors.As(err, &ve) || ve.Reason != cms.ReasonUntrusted {
						t.Errorf("verified against the wrong certificate: %v", err)
					}
					if v.detached {
						_, err = verify(alice, append(bytes.Clone(content), '!'))
						want := cms.ReasonDigestMismatch
						if strings.Contains(vname, "noattr") {
							want = cms.ReasonSignatureInvalid // the signature covers the content digest itself
						}
						if !errors.As(err, &ve) || ve.Reason != want {
							t.Errorf("tampered content: %v, want %q", err, want)
						}
					}
				})
			}
		}
	}
}
