package cms

import (
	"bytes"
	"crypto"
	"io"
	"testing"

	"github.com/as2gate/as2gate/cms/cmstest"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// FuzzDecrypt feeds mutated envelopes to Decrypt, seeded with valid messages of every kind:
// each cipher, DER and BER, PKCS#1 v1.5 and OAEP, and AuthEnvelopedData with authAttrs. Any
// input must end in a result or an error, never a panic or a hang.
func FuzzDecrypt(f *testing.F) {
	id := cmstest.New(f, "fuzz-recipient", &cmstest.Options{Bits: 1024})
	content := envContent(100, 9)
	for _, c := range allCiphers {
		for _, kt := range []KeyTransport{{}, {OAEP: true, Hash: crypto.SHA256}} {
			for _, known := range []bool{true, false} {
				f.Add(envEncrypt(f, content, known, &EncryptOptions{Cipher: c, KeyTransport: kt}, id))
			}
		}
	}
	var ab cryptobyte.Builder
	ab.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidAttrContentType)
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidData) })
		})
	})
	f.Add(buildAuthEnveloped(f, id, content, ab.BytesOrPanic(), 12, 12))
	recipients := []Recipient{envRecipient(id)}
	f.Fuzz(func(t *testing.T, msg []byte) {
		info, err := Decrypt(io.Discard, bytes.NewReader(msg), recipients, &DecryptOptions{MaxSize: 1 << 20})
		if (err == nil) == (info == nil) {
			t.Fatalf("Decrypt returned info %v with error %v", info, err)
		}
	})
}
