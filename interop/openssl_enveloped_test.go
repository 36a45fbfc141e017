package interop

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
)

// opensslCiphers maps each content cipher to its `openssl cms -encrypt` flag.
var opensslCiphers = []struct {
	cipher cms.Cipher
	flag   string
}{
	{cms.DES3CBC, "-des3"},
	{cms.AES128CBC, "-aes128"},
	{cms.AES192CBC, "-aes192"},
	{cms.AES256CBC, "-aes256"},
	{cms.AES128GCM, "-aes-128-gcm"},
	{cms.AES256GCM, "-aes-256-gcm"},
}

// opensslKeyTransports maps each key transport to its `openssl cms` -keyopt arguments.
var opensslKeyTransports = []struct {
	kt      cms.KeyTransport
	keyopts []string
}{
	{cms.KeyTransport{}, nil},
	{cms.KeyTransport{OAEP: true, Hash: crypto.SHA1}, []string{"rsa_padding_mode:oaep"}},
	{cms.KeyTransport{OAEP: true, Hash: crypto.SHA256},
		[]string{"rsa_padding_mode:oaep", "rsa_oaep_md:sha256", "rsa_mgf1_md:sha256"}},
	{cms.KeyTransport{OAEP: true, Hash: crypto.SHA512},
		[]string{"rsa_padding_mode:oaep", "rsa_oaep_md:sha512", "rsa_mgf1_md:sha512"}},
	// What Java's OAEPWithSHA-256AndMGF1Padding produces.
	{cms.KeyTransport{OAEP: true, Hash: crypto.SHA256, MGFHash: crypto.SHA1},
		[]string{"rsa_padding_mode:oaep", "rsa_oaep_md:sha256", "rsa_mgf1_md:sha1"}},
}

func keyoptArgs(keyopts []string) []string {
	var args []string
	for _, o := range keyopts {
		args = append(args, "-keyopt", o)
	}
	return args
}

// envelopeContent is binary content with every byte value, CR and LF among them, and a
// length that is no multiple of any block size.
func envelopeContent(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 10007)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOpenSSLEnvelopesDecryptHere: `openssl cms -encrypt`, DER and -stream BER, for every
// cipher and key transport, decrypted by cms.Decrypt.
func TestOpenSSLEnvelopesDecryptHere(t *testing.T) {
	t.Parallel()
	openssl := need(t, "openssl")
	dir := t.TempDir()
	id := cmstest.New(t, "openssl-envelope-recipient", nil)
	certPath, _ := id.WriteFiles(t, dir, "recipient")
	content := envelopeContent(t)
	in := filepath.Join(dir, "content.bin")
	if err := os.WriteFile(in, content, 0o600); err != nil {
		t.Fatal(err)
	}
	recipients := []cms.Recipient{{Certificate: id.Certificate, Key: id.Key}}
	for _, c := range opensslCiphers {
		for _, kt := range opensslKeyTransports {
			for _, stream := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/stream=%v", c.cipher, kt.kt, stream), func(t *testing.T) {
					t.Parallel()
					args := []string{"cms", "-encrypt", "-binary", "-outform", "DER", c.flag, "-in", in, "-recip", certPath}
					args = append(args, keyoptArgs(kt.keyopts)...)
					if stream {
						args = append(args, "-stream")
					}
					msg := run(t, nil, openssl, args...)
					if stream && !bytes.HasPrefix(msg, []byte{0x30, 0x80}) {
						t.Fatalf("openssl -stream output does not start with an indefinite SEQUENCE: % x", msg[:4])
					}
					var got bytes.Buffer
					info, err := cms.Decrypt(&got, bytes.NewReader(msg), recipients, nil)
					if err != nil {
						t.Fatalf("Decrypt: %v", err)
					}
					if !bytes.Equal(got.Bytes(), content) {
						t.Fatal("plaintext differs from the content openssl encrypted")
					}
					if info.Cipher != c.cipher || !info.KeyTransport.Equal(kt.kt) {
						t.Fatalf("DecryptInfo says %s %s", info.Cipher, info.KeyTransport)
					}
				})
			}
		}
	}
}

// TestOpenSSLKeyIDEnvelopeDecryptsHere: `openssl cms -encrypt -keyid` names the
// recipient by subject key identifier.
func TestOpenSSLKeyIDEnvelopeDecryptsHere(t *testing.T) {
	t.Parallel()
	openssl := need(t, "openssl")
	dir := t.TempDir()
	id := cmstest.New(t, "openssl-keyid-recipient", nil)
	other := cmstest.New(t, "openssl-keyid-other", nil)
	certPath, _ := id.WriteFiles(t, dir, "recipient")
	content := envelopeContent(t)
	msg := run(t, content, openssl, "cms", "-encrypt", "-binary", "-outform", "DER", "-aes-256-gcm", "-keyid", "-recip", certPath)
	var got bytes.Buffer
	_, err := cms.Decrypt(&got, bytes.NewReader(msg), []cms.Recipient{
		{Certificate: other.Certificate, Key: other.Key},
		{Certificate: id.Certificate, Key: id.Key},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), content) {
		t.Fatal("plaintext differs")
	}
	_, err = cms.Decrypt(&got, bytes.NewReader(msg), []cms.Recipient{{Certificate: other.Certificate, Key: other.Key}}, nil)
	if want := fmt.Sprintf("%X", id.Certificate.SubjectKeyId); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("not for us: err = %v, want it to name key identifier %s", err, want)
	}
}

// TestEnvelopesDecryptInOpenSSL: cms.Encrypt output, DER (known size) and BER (unknown size),
// for every cipher and key transport, decrypted by `openssl cms -decrypt`.
func TestEnvelopesDecryptInOpenSSL(t *testing.T) {
	t.Parallel()
	openssl := need(t, "openssl")
	dir := t.TempDir()
	id := cmstest.New(t, "openssl-envelope-decrypter", nil)
	certPath, keyPath := id.WriteFiles(t, dir, "recipient")
	content := envelopeContent(t)
	for i, c := range opensslCiphers {
		for j, kt := range opensslKeyTransports {
			for _, known := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/%s/known=%v", c.cipher, kt.kt, known), func(t *testing.T) {
					t.Parallel()
					size := int64(-1)
					if known {
						size = int64(len(content))
					}
					var msg bytes.Buffer
					err := cms.Encrypt(&msg, bytes.NewReader(content), size, []*x509.Certificate{id.Certificate},
						&cms.EncryptOptions{Cipher: c.cipher, KeyTransport: kt.kt})
					if err != nil {
						t.Fatal(err)
					}
					in := filepath.Join(dir, fmt.Sprintf("msg-%d-%d-%v.der", i, j, known))
					if err := os.WriteFile(in, msg.Bytes(), 0o600); err != nil {
						t.Fatal(err)
					}
					got := run(t, nil, openssl, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", in,
						"-recip", certPath, "-inkey", keyPath)
					if !bytes.Equal(got, content) {
						t.Fatalf("openssl decrypted %d bytes that differ from the %d encrypted", len(got), len(content))
					}
				})
			}
		}
	}
}
