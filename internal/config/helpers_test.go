package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/youmark/pkcs8"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/as2gate/as2gate/cms/cmstest"
)

// files writes test fixtures under a folder.
type files struct {
	tb  testing.TB
	dir string
}

func newFiles(tb testing.TB) files { return files{tb: tb, dir: tb.TempDir()} }

func (f files) path(name string) string { return filepath.Join(f.dir, name) }

func (f files) write(name string, data []byte) string {
	f.tb.Helper()
	p := f.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		f.tb.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		f.tb.Fatal(err)
	}
	return p
}

func (f files) writeString(name, s string) string { return f.write(name, []byte(s)) }

func (f files) certs(name string, certs ...*x509.Certificate) string {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return f.write(name, b)
}

func (f files) pkcs8(name string, key crypto.Signer) string {
	f.tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		f.tb.Fatal(err)
	}
	return f.write(name, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

func (f files) pkcs1(name string, key *rsa.PrivateKey) string {
	return f.write(name, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}

func (f files) encryptedPKCS8(name string, key crypto.Signer, password string) string {
	f.tb.Helper()
	der, err := pkcs8.MarshalPrivateKey(key, []byte(password), nil)
	if err != nil {
		f.tb.Fatal(err)
	}
	return f.write(name, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der}))
}

func (f files) pkcs12(name string, key crypto.Signer, cert *x509.Certificate, chain []*x509.Certificate, password string) string {
	f.tb.Helper()
	der, err := pkcs12.Modern.Encode(key, cert, chain, password)
	if err != nil {
		f.tb.Fatal(err)
	}
	return f.write(name, der)
}

// writeConfig writes the YAML text as as2gate.yaml and loads it.
func (f files) load(yamlText string) (*Config, error) {
	f.tb.Helper()
	return Load(f.writeString("as2gate.yaml", yamlText))
}

// identity is a test certificate and key.
type identity struct {
	cert *x509.Certificate
	key  *rsa.PrivateKey
}

// newIdentity makes a self-signed RSA-2048 identity with the n-th cached test key, valid
// from nb to na (zero: an hour ago, for ten years).
func newIdentity(tb testing.TB, name string, n int, nb, na time.Time) identity {
	tb.Helper()
	key := cmstest.Key(tb, 2048, n)
	return identity{cert: makeCert(tb, name, key, nb, na, 0), key: key}
}

// makeCert makes a self-signed certificate for key; usage 0 means digitalSignature and
// keyEncipherment.
func makeCert(tb testing.TB, name string, key crypto.Signer, nb, na time.Time, usage x509.KeyUsage) *x509.Certificate {
	tb.Helper()
	if nb.IsZero() {
		nb = time.Now().Add(-time.Hour)
	}
	if na.IsZero() {
		na = nb.AddDate(10, 0, 0)
	}
	if usage == 0 {
		usage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              usage,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func newECDSA(tb testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return makeCert(tb, name, key, time.Time{}, time.Time{}, x509.KeyUsageDigitalSignature), key
}

// problemsOf returns the problems of a *ValidationError, failing the test on another error.
func problemsOf(tb testing.TB, err error) []Problem {
	tb.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		tb.Fatalf("error is not a *ValidationError: %v", err)
	}
	return ve.Problems
}

func formatProblems(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}
