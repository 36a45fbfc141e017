package cms

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"testing"

	"github.com/as2gate/as2gate/cms/cmstest"
)

// The CMS benchmarks sit next to the raw RSA operations they wrap so that the overhead of
// the CMS structure can be read off directly: for 1 KB the signing benchmark should stay
// within 1.3x of BenchmarkRawRSASign2048.

var benchSizes = []struct {
	name string
	n    int
}{
	{"1KB", 1 << 10},
	{"1MB", 1 << 20},
}

func BenchmarkSignDetached(b *testing.B) {
	alice := cmstest.New(b, "alice", nil)
	for _, size := range benchSizes {
		content := bytes.Repeat([]byte("x"), size.n)
		b.Run(size.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size.n))
			for b.Loop() {
				if _, err := SignDetached(bytes.NewReader(content), alice.Certificate, alice.Key, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	alice := cmstest.New(b, "alice", nil)
	trusted := []*x509.Certificate{alice.Certificate}
	for _, size := range benchSizes {
		content := bytes.Repeat([]byte("x"), size.n)
		der, err := SignDetached(bytes.NewReader(content), alice.Certificate, alice.Key, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(size.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(size.n))
			for b.Loop() {
				sd, err := ParseSignedData(der)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := sd.Verify(bytes.NewReader(content), trusted); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRawRSASign2048(b *testing.B) {
	key := cmstest.Key(b, 2048, 0)
	digest := sha256.Sum256([]byte("x"))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawRSAVerify2048(b *testing.B) {
	key := cmstest.Key(b, 2048, 0)
	digest := sha256.Sum256([]byte("x"))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}
