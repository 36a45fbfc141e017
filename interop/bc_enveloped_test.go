package interop

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
)

// bcCipherNames are BCPeer's names for the content ciphers (CMSAlgorithm constants).
var bcCipherNames = map[cms.Cipher]string{
	cms.DES3CBC:   "DES3",
	cms.AES128CBC: "AES128_CBC",
	cms.AES192CBC: "AES192_CBC",
	cms.AES256CBC: "AES256_CBC",
	cms.AES128GCM: "AES128_GCM",
	cms.AES256GCM: "AES256_GCM",
}

var bcCipherOIDs = map[cms.Cipher]string{
	cms.DES3CBC:   "1.2.840.113549.3.7",
	cms.AES128CBC: "2.16.840.1.101.3.4.1.2",
	cms.AES192CBC: "2.16.840.1.101.3.4.1.22",
	cms.AES256CBC: "2.16.840.1.101.3.4.1.42",
	cms.AES128GCM: "2.16.840.1.101.3.4.1.6",
	cms.AES256GCM: "2.16.840.1.101.3.4.1.46",
}

// bcEnvelopes are the cipher and key transport pairs exchanged with BouncyCastle: every
// cipher, and every OAEP shape, including Java's OAEPWithSHA-256AndMGF1Padding
// (SHA-256 with MGF1-SHA1), without multiplying out all pairs.
var bcEnvelopes = []struct {
	cipher cms.Cipher
	kt     cms.KeyTransport
}{
	{cms.AES256CBC, cms.KeyTransport{}},
	{cms.AES256CBC, cms.KeyTransport{OAEP: true, Hash: crypto.SHA256, MGFHash: crypto.SHA1}},
	{cms.AES128CBC, cms.KeyTransport{OAEP: true, Hash: crypto.SHA256}},
	{cms.AES192CBC, cms.KeyTransport{OAEP: true, Hash: crypto.SHA1}},
	{cms.DES3CBC, cms.KeyTransport{}},
	{cms.AES128GCM, cms.KeyTransport{}},
	{cms.AES256GCM, cms.KeyTransport{OAEP: true, Hash: crypto.SHA512}},
}

// bcOAEPArgs spells a key transport as BCPeer's --oaep option.
func bcOAEPArgs(kt cms.KeyTransport) []string {
	if !kt.OAEP {
		return nil
	}
	name := func(h crypto.Hash) string { return strings.ReplaceAll(h.String(), "-", "") }
	spec := name(kt.Hash)
	if kt.MGFHash != 0 && kt.MGFHash != kt.Hash {
		spec += ":MGF1-" + name(kt.MGFHash)
	}
	return []string{"--oaep", spec}
}

// TestBCEnvelopedFromBC has BouncyCastle encrypt (EnvelopedData for CBC, AuthEnvelopedData
// for GCM) and decrypts with cms.Decrypt.
func TestBCEnvelopedFromBC(t *testing.T) {
	t.Parallel()
	recipient := cmstest.New(t, "bc-envelope-recipient", nil)
	dir := t.TempDir()
	certPath, _ := recipient.WriteFiles(t, dir, "recipient")
	content := bcPayload(10007)
	contentPath := filepath.Join(dir, "content")
	bcWrite(t, contentPath, content)
	recipients := []cms.Recipient{{Certificate: recipient.Certificate, Key: recipient.Key}}

	for _, tc := range bcEnvelopes {
		t.Run(fmt.Sprintf("%s/%s", tc.cipher, tc.kt), func(t *testing.T) {
			t.Parallel()
			encPath := filepath.Join(t.TempDir(), "enveloped.der")
			args := append([]string{"encrypt", "--cipher", bcCipherNames[tc.cipher]}, bcOAEPArgs(tc.kt)...)
			bc(t, append(args, "--cert", certPath, contentPath, encPath)...)

			var got bytes.Buffer
			info, err := cms.Decrypt(&got, bytes.NewReader(bcOutput(t, encPath)), recipients, nil)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if !bytes.Equal(got.Bytes(), content) {
				t.Fatal("plaintext differs from the content BouncyCastle encrypted")
			}
			wantType := cms.TypeEnvelopedData
			if tc.cipher.AEAD() {
				wantType = cms.TypeAuthEnvelopedData
			}
			if info.Type != wantType || info.Cipher != tc.cipher || !info.KeyTransport.Equal(tc.kt) {
				t.Fatalf("DecryptInfo says %s, %s, %s", info.Type, info.Cipher, info.KeyTransport)
			}
		})
	}
}

// TestBCEnvelopedToBC encrypts with cms.Encrypt, in DER (known size) and in BER (unknown
// size), and has BouncyCastle decrypt; BouncyCastle reports the algorithms it met.
func TestBCEnvelopedToBC(t *testing.T) {
	t.Parallel()
	recipient := cmstest.New(t, "bc-envelope-decrypter", nil)
	dir := t.TempDir()
	certPath, keyPath := recipient.WriteFiles(t, dir, "recipient")
	content := bcPayload(10007)

	for _, tc := range bcEnvelopes {
		for _, size := range []int64{int64(len(content)), -1} {
			encoding := map[bool]string{true: "DER", false: "BER"}[size >= 0]
			t.Run(fmt.Sprintf("%s/%s/%s", tc.cipher, tc.kt, encoding), func(t *testing.T) {
				t.Parallel()
				var enc bytes.Buffer
				err := cms.Encrypt(&enc, bytes.NewReader(content), size, []*x509.Certificate{recipient.Certificate},
					&cms.EncryptOptions{Cipher: tc.cipher, KeyTransport: tc.kt})
				if err != nil {
					t.Fatal(err)
				}
				tmp := t.TempDir()
				encPath, outPath := filepath.Join(tmp, "enveloped"), filepath.Join(tmp, "content")
				bcWrite(t, encPath, enc.Bytes())
				report := string(bc(t, "decrypt", "--cert", certPath, "--key", keyPath, encPath, outPath))
				if !bytes.Equal(bcOutput(t, outPath), content) {
					t.Fatal("BouncyCastle's plaintext differs from the content")
				}
				wantKT := "1.2.840.113549.1.1.1" // rsaEncryption: PKCS#1 v1.5
				if tc.kt.OAEP {
					wantKT = "1.2.840.113549.1.1.7" // id-RSAES-OAEP
				}
				want := "content=" + bcCipherOIDs[tc.cipher] + "\nkeytransport=" + wantKT + "\n"
				if report != want {
					t.Fatalf("BouncyCastle reports\n%swant\n%s", report, want)
				}
			})
		}
	}
}
