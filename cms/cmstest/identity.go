// Package cmstest makes throwaway RSA identities (key, self-signed certificate, PEM files)
// for tests of the cms and as2 packages and of anything built on them, in the spirit of
// net/http/httptest.
package cmstest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Identity is a key pair with a self-signed certificate.
type Identity struct {
	Name        string
	Key         *rsa.PrivateKey
	Certificate *x509.Certificate
}

// Options adjust a new identity. The zero value gives an RSA-2048 certificate valid from an
// hour ago for ten years, usable for signing and key encipherment.
type Options struct {
	Bits        int       // RSA modulus size; 0 means 2048
	NotBefore   time.Time // zero: an hour ago
	NotAfter    time.Time // zero: NotBefore + 10 years
	DNSNames    []string  // subject alternative names, for TLS server certificates
	IPAddresses []net.IP  // IP subject alternative names, for TLS servers dialled by address
	IsCA        bool
	Parent      *Identity // issuer; nil means self-signed
	ExtKeyUsage []x509.ExtKeyUsage
}

// keys caches generated RSA keys by size: generating them dominates test time, and a test
// identity needs a distinct certificate, not a distinct key pair per test.
var keys = struct {
	sync.Mutex
	pool map[int][]*rsa.PrivateKey
}{pool: map[int][]*rsa.PrivateKey{}}

// Key returns the n-th cached RSA key of the given size, generating it on first use. Tests
// that need two different key pairs ask for indexes 0 and 1.
func Key(tb testing.TB, bits, n int) *rsa.PrivateKey {
	tb.Helper()
	keys.Lock()
	defer keys.Unlock()
	for len(keys.pool[bits]) <= n {
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			tb.Fatalf("cmstest: generating an RSA-%d key: %v", bits, err)
		}
		keys.pool[bits] = append(keys.pool[bits], k)
	}
	return keys.pool[bits][n]
}

var serial struct {
	sync.Mutex
	n int64
}

// New makes an identity named name (its certificate's common name). Identities with
// different names get different keys as long as fewer than 8 are alive in one test binary
// with the same size; beyond that keys are reused across names.
func New(tb testing.TB, name string, opts *Options) *Identity {
	tb.Helper()
	if opts == nil {
		opts = &Options{}
	}
	bits := opts.Bits
	if bits == 0 {
		bits = 2048
	}
	serial.Lock()
	serial.n++
	sn := serial.n
	serial.Unlock()
	key := Key(tb, bits, int(sn%8))
	nb := opts.NotBefore
	if nb.IsZero() {
		nb = time.Now().Add(-time.Hour)
	}
	na := opts.NotAfter
	if na.IsZero() {
		na = nb.AddDate(10, 0, 0)
	}
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	ski := sha1.Sum(pub)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1000 + sn),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"as2gate test"}},
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
		ExtKeyUsage:           opts.ExtKeyUsage,
		DNSNames:              opts.DNSNames,
		IPAddresses:           opts.IPAddresses,
		SubjectKeyId:          ski[:],
		BasicConstraintsValid: true,
		IsCA:                  opts.IsCA,
	}
	if opts.IsCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	parent, signer := tmpl, key
	if opts.Parent != nil {
		parent, signer = opts.Parent.Certificate, opts.Parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		tb.Fatalf("cmstest: creating certificate %q: %v", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("cmstest: parsing certificate %q: %v", name, err)
	}
	return &Identity{Name: name, Key: key, Certificate: cert}
}

// CertPEM returns the certificate in PEM form.
func (id *Identity) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.Certificate.Raw})
}

// KeyPEM returns the private key as unencrypted PKCS#8 PEM.
func (id *Identity) KeyPEM() []byte {
	der, err := x509.MarshalPKCS8PrivateKey(id.Key)
	if err != nil {
		panic(err) // an *rsa.PrivateKey always marshals
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// WriteFiles writes dir/<base>.crt and dir/<base>.key and returns their paths.
func (id *Identity) WriteFiles(tb testing.TB, dir, base string) (certPath, keyPath string) {
	tb.Helper()
	certPath = filepath.Join(dir, base+".crt")
	keyPath = filepath.Join(dir, base+".key")
	if err := os.WriteFile(certPath, id.CertPEM(), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyPath, id.KeyPEM(), 0o600); err != nil {
		tb.Fatal(err)
	}
	return certPath, keyPath
}
