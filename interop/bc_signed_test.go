package interop

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
)

// bcSignatures are the signature variants exchanged with BouncyCastle: its JCA names for
// PKCS#1 v1.5 ("SHA256withRSA") and RSASSA-PSS ("SHA256withRSAandMGF1").
var bcSignatures = []struct {
	name    string
	hash    crypto.Hash
	bcHash  string
	pss     bool
	nocerts bool
}{
	{"SHA1", crypto.SHA1, "SHA1", false, false},
	{"SHA256", crypto.SHA256, "SHA256", false, false},
	{"SHA256 PSS", crypto.SHA256, "SHA256", true, false},
	{"SHA384 PSS", crypto.SHA384, "SHA384", true, false},
	{"SHA512", crypto.SHA512, "SHA512", false, false},
	{"SHA512 PSS", crypto.SHA512, "SHA512", true, false},
	{"SHA256 without certificate", crypto.SHA256, "SHA256", false, true},
}

const oidRSASSAPSS = "1.2.840.113549.1.1.10"

// TestBCSignedFromBC has BouncyCastle make detached signatures and verifies them with
// cms.ParseSignedData and Verify, trusting the signer's certificate as a partner's
// configured one.
func TestBCSignedFromBC(t *testing.T) {
	t.Parallel()
	signer := cmstest.New(t, "bc-signer", nil)
	dir := t.TempDir()
	certPath, keyPath := signer.WriteFiles(t, dir, "signer")
	content := bcPayload(20000)
	contentPath := filepath.Join(dir, "content")
	bcWrite(t, contentPath, content)
	trusted := []*x509.Certificate{signer.Certificate}

	for _, tc := range bcSignatures {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sigPath := filepath.Join(t.TempDir(), "sig.der")
			args := []string{"sign", "--hash", tc.bcHash, "--cert", certPath, "--key", keyPath}
			if tc.pss {
				args = append(args, "--pss")
			}
			if tc.nocerts {
				args = append(args, "--nocerts")
			}
			bc(t, append(args, contentPath, sigPath)...)

			sd, err := cms.ParseSignedData(bcOutput(t, sigPath))
			if err != nil {
				t.Fatalf("ParseSignedData: %v", err)
			}
			got, err := sd.Verify(bytes.NewReader(content), trusted)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Hash != tc.hash || got.PSS != tc.pss || !got.Certificate.Equal(signer.Certificate) {
				t.Fatalf("Verify reports %v PSS=%t by %s", got.Hash, got.PSS, got.Certificate.Subject)
			}
			tampered := append(bytes.Clone(content), '.')
			if _, err := sd.Verify(bytes.NewReader(tampered), trusted); err == nil {
				t.Fatal("Verify accepted the signature over other content")
			}
		})
	}
}

// TestBCSignedToBC signs with cms.SignDetached and has BouncyCastle verify with the
// signer's certificate; BouncyCastle must also refuse other content and another
// certificate, which shows that its verdict means something.
func TestBCSignedToBC(t *testing.T) {
	t.Parallel()
	signer := cmstest.New(t, "bc-verified", nil)
	other := cmstest.New(t, "bc-not-the-signer", nil)
	dir := t.TempDir()
	certPath, _ := signer.WriteFiles(t, dir, "signer")
	otherPath, _ := other.WriteFiles(t, dir, "other")
	content := bcPayload(20000)
	contentPath := filepath.Join(dir, "content")
	bcWrite(t, contentPath, content)
	tamperedPath := filepath.Join(dir, "tampered")
	bcWrite(t, tamperedPath, append(bytes.Clone(content), '.'))

	for _, tc := range bcSignatures {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			der, err := cms.SignDetached(bytes.NewReader(content), signer.Certificate, signer.Key,
				&cms.SignOptions{Hash: tc.hash, PSS: tc.pss, NoCertificate: tc.nocerts})
			if err != nil {
				t.Fatal(err)
			}
			sigPath := filepath.Join(t.TempDir(), "sig.der")
			bcWrite(t, sigPath, der)
			out := string(bc(t, "verify", "--cert", certPath, "--content", contentPath, sigPath))
			if isPSS := strings.Contains(out, "signature="+oidRSASSAPSS+"\n"); isPSS != tc.pss {
				t.Fatalf("BouncyCastle read the signature algorithm as:\n%s", out)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		der, err := cms.SignDetached(bytes.NewReader(content), signer.Certificate, signer.Key, nil)
		if err != nil {
			t.Fatal(err)
		}
		sigPath := filepath.Join(t.TempDir(), "sig.der")
		bcWrite(t, sigPath, der)
		for name, args := range map[string][]string{
			"other content":     {"verify", "--cert", certPath, "--content", tamperedPath, sigPath},
			"other certificate": {"verify", "--cert", otherPath, "--content", contentPath, sigPath},
		} {
			_, err := bcErr(t, args...)
			if code := exitCode(err); code != 1 {
				t.Errorf("%s: BouncyCastle verify exited with %d (%v), want 1", name, code, err)
			}
		}
	})
}

// exitCode is the exit status in an error from runErr: 0 for no error, -1 when the program
// did not run to an exit.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		return -1
	}
	var xe *exec.ExitError
	if !errors.As(ee.err, &xe) {
		return -1
	}
	return xe.ExitCode()
}
