package cms

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/cms/cmstest"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

var (
	allCiphers       = []Cipher{DES3CBC, AES128CBC, AES192CBC, AES256CBC, AES128GCM, AES256GCM}
	allKeyTransports = []KeyTransport{
		{},
		{OAEP: true},
		{OAEP: true, Hash: crypto.SHA256},
		{OAEP: true, Hash: crypto.SHA512},
		{OAEP: true, Hash: crypto.SHA256, MGFHash: crypto.SHA1},
	}
)

// envContent returns n deterministic pseudo-random bytes.
func envContent(n int, seed uint64) []byte {
	b := make([]byte, n)
	mrand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

func envRecipient(id *cmstest.Identity) Recipient {
	return Recipient{Certificate: id.Certificate, Key: id.Key}
}

// envEncrypt encrypts content for the identities and fails the test on error.
func envEncrypt(t testing.TB, content []byte, known bool, opts *EncryptOptions, to ...*cmstest.Identity) []byte {
	t.Helper()
	var certs []*x509.Certificate
	for _, id := range to {
		certs = append(certs, id.Certificate)
	}
	size := int64(-1)
	if known {
		size = int64(len(content))
	}
	var out bytes.Buffer
	if err := Encrypt(&out, bytes.NewReader(content), size, certs, opts); err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	return out.Bytes()
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	recipients := []Recipient{envRecipient(alice)}
	sizes := []int{0, 1, 15, 16, 17, 100 << 10}
	for _, c := range allCiphers {
		for _, kt := range allKeyTransports {
			for _, known := range []bool{true, false} {
				name := fmt.Sprintf("%s/%s/known=%v", c, kt, known)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					for _, size := range sizes {
						content := envContent(size, uint64(size))
						msg := envEncrypt(t, content, known, &EncryptOptions{Cipher: c, KeyTransport: kt}, alice)
						if known {
							der, err := normalizeAll(msg)
							if err != nil || !bytes.Equal(der, msg) {
								t.Fatalf("size %d: output with a known size is not DER (%v)", size, err)
							}
						} else if msg[1] != 0x80 {
							t.Fatalf("size %d: output with an unknown size does not use indefinite lengths", size)
						}
						var got bytes.Buffer
						info, err := Decrypt(&got, bytes.NewReader(msg), recipients, nil)
						if err != nil {
							t.Fatalf("size %d: Decrypt: %v", size, err)
						}
						if !bytes.Equal(got.Bytes(), content) {
							t.Fatalf("size %d: plaintext differs", size)
						}
						wantType := TypeEnvelopedData
						if c.AEAD() {
							wantType = TypeAuthEnvelopedData
						}
						if info.Type != wantType || info.Cipher != c || !info.KeyTransport.Equal(kt) ||
							info.KeyTransport != kt.canonical() || info.Recipient != &recipients[0] {
							t.Fatalf("size %d: info = %+v", size, info)
						}
					}
				})
			}
		}
	}
}

func TestEncryptDefaults(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	msg := envEncrypt(t, []byte("hello"), true, nil, alice)
	info, err := Decrypt(io.Discard, bytes.NewReader(msg), []Recipient{envRecipient(alice)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cipher != AES256CBC || info.KeyTransport != (KeyTransport{}) {
		t.Fatalf("defaults: %s %s, want aes256-cbc rsa-pkcs1v15", info.Cipher, info.KeyTransport)
	}
	if ct, err := Identify(msg); err != nil || ct != TypeEnvelopedData {
		t.Fatalf("Identify = %v, %v", ct, err)
	}
}

func TestDecryptMultipleRecipients(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	bob := cmstest.New(t, "bob", nil)
	carol := cmstest.New(t, "carol", nil)
	content := envContent(1000, 1)
	for _, c := range []Cipher{AES128CBC, AES256GCM} {
		msg := envEncrypt(t, content, true, &EncryptOptions{Cipher: c}, alice, bob)
		for name, tc := range map[string]struct {
			have []Recipient
			want int
		}{
			"second recipient":               {[]Recipient{envRecipient(bob)}, 0},
			"rollover, match second of ours": {[]Recipient{envRecipient(carol), envRecipient(alice)}, 1},
			"certificate without key":        {[]Recipient{{Certificate: alice.Certificate}, envRecipient(bob)}, 1},
		} {
			var got bytes.Buffer
			info, err := Decrypt(&got, bytes.NewReader(msg), tc.have, nil)
			if err != nil {
				t.Fatalf("%s %s: %v", c, name, err)
			}
			if !bytes.Equal(got.Bytes(), content) || info.Recipient != &tc.have[tc.want] {
				t.Fatalf("%s %s: wrong plaintext or recipient %v", c, name, info.Recipient.Certificate.Subject)
			}
		}
	}
}

// decrypterOnly hides the *rsa.PrivateKey type, as a hardware key would.
type decrypterOnly struct{ k *rsa.PrivateKey }

func (d decrypterOnly) Public() crypto.PublicKey { return d.k.Public() }
func (d decrypterOnly) Decrypt(r io.Reader, msg []byte, opts crypto.DecrypterOpts) ([]byte, error) {
	return d.k.Decrypt(r, msg, opts)
}

func TestDecryptWithOpaqueDecrypter(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	content := envContent(5000, 2)
	for _, kt := range allKeyTransports {
		msg := envEncrypt(t, content, false, &EncryptOptions{Cipher: AES192CBC, KeyTransport: kt}, alice)
		var got bytes.Buffer
		rcp := []Recipient{{Certificate: alice.Certificate, Key: decrypterOnly{alice.Key}}}
		if _, err := Decrypt(&got, bytes.NewReader(msg), rcp, nil); err != nil {
			t.Fatalf("%s: %v", kt, err)
		}
		if !bytes.Equal(got.Bytes(), content) {
			t.Fatalf("%s: plaintext differs", kt)
		}
	}
}

// TestDecryptWrongKey: the certificate matches but the private key is another one. Whatever
// fails (OAEP decoding, CBC padding of the random key that implicit rejection substitutes,
// the GCM tag), the error is the same value.
func TestDecryptWrongKey(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	other := cmstest.Key(t, 2048, 7)
	if other.Equal(alice.Key) {
		other = cmstest.Key(t, 2048, 6)
	}
	content := envContent(3000, 3)
	for _, c := range allCiphers {
		for _, kt := range allKeyTransports {
			for _, key := range []crypto.Decrypter{other, decrypterOnly{other}} {
				msg := envEncrypt(t, content, true, &EncryptOptions{Cipher: c, KeyTransport: kt}, alice)
				var got bytes.Buffer
				_, err := Decrypt(&got, bytes.NewReader(msg), []Recipient{{Certificate: alice.Certificate, Key: key}}, nil)
				if err == nil && !kt.OAEP && !c.AEAD() {
					// A random CBC key yields a last block with valid padding about once in
					// 256 tries; the output is then garbage, never the content.
					if bytes.Equal(got.Bytes(), content) {
						t.Fatalf("%s %s: decrypted with the wrong key", c, kt)
					}
					continue
				}
				if err != ErrDecryption {
					t.Fatalf("%s %s %T: err = %v, want ErrDecryption itself", c, kt, key, err)
				}
			}
		}
	}
}

func TestDecryptNoRecipient(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice-nr", nil)
	bob := cmstest.New(t, "bob-nr", nil)
	msg := envEncrypt(t, []byte("for alice"), true, nil, alice)
	for name, have := range map[string][]Recipient{
		"other certificate": {envRecipient(bob)},
		"none":              nil,
	} {
		_, err := Decrypt(io.Discard, bytes.NewReader(msg), have, nil)
		if !errors.Is(err, ErrNoRecipient) {
			t.Fatalf("%s: err = %v, want ErrNoRecipient", name, err)
		}
		var nr *NoRecipientError
		if !errors.As(err, &nr) || len(nr.Recipients) != 1 {
			t.Fatalf("%s: err = %#v, want one *NoRecipientError recipient", name, err)
		}
		id := nr.Recipients[0]
		if id.SerialNumber.Cmp(alice.Certificate.SerialNumber) != 0 || !strings.Contains(id.Issuer, "CN=alice-nr") {
			t.Fatalf("%s: recipient = %+v", name, id)
		}
		serial := fmt.Sprintf("0x%X", alice.Certificate.SerialNumber)
		if !strings.Contains(err.Error(), serial) || !strings.Contains(err.Error(), "alice-nr") {
			t.Fatalf("%s: message %q does not name the certificate", name, err)
		}
	}
}

// rewriteRecipientInfos re-encodes a DER EnvelopedData message with the recipient infos that
// edit returns (given the current ones, DER, one per element).
func rewriteRecipientInfos(t *testing.T, msg []byte, edit func(ris [][]byte) [][]byte) []byte {
	t.Helper()
	oid, content, err := parseContentInfo(msg)
	if err != nil {
		t.Fatal(err)
	}
	var ed, set cryptobyte.String
	var version []byte
	if !content.ReadASN1(&ed, cbasn1.SEQUENCE) || !ed.ReadASN1Element((*cryptobyte.String)(&version), cbasn1.INTEGER) ||
		!ed.ReadASN1(&set, cbasn1.SET) {
		t.Fatal("cannot take the message apart")
	}
	var ris [][]byte
	for !set.Empty() {
		var ri cryptobyte.String
		if !set.ReadAnyASN1Element(&ri, nil) {
			t.Fatal("bad recipient info")
		}
		ris = append(ris, ri)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(version)
		b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
			for _, ri := range edit(ris) {
				b.AddBytes(ri)
			}
		})
		b.AddBytes(ed) // the rest
	})
	return contentInfo(oid, b.BytesOrPanic())
}

// toSubjectKeyID turns a version 0 KeyTransRecipientInfo into a version 2 one naming the
// certificate by subject key identifier.
func toSubjectKeyID(t *testing.T, ri []byte, ski []byte) []byte {
	t.Helper()
	s := cryptobyte.String(ri)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.SkipASN1(cbasn1.INTEGER) || !seq.SkipASN1(cbasn1.SEQUENCE) {
		t.Fatal("bad KeyTransRecipientInfo")
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(2)
		b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(ski) })
		b.AddBytes(seq)
	})
	return b.BytesOrPanic()
}

func TestDecryptSubjectKeyIdentifier(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	bob := cmstest.New(t, "bob", nil)
	content := []byte("named by key identifier")
	msg := envEncrypt(t, content, true, &EncryptOptions{Cipher: AES128GCM}, alice)
	skiMsg := rewriteRecipientInfos(t, msg, func(ris [][]byte) [][]byte {
		return [][]byte{toSubjectKeyID(t, ris[0], alice.Certificate.SubjectKeyId)}
	})
	var got bytes.Buffer
	if _, err := Decrypt(&got, bytes.NewReader(skiMsg), []Recipient{envRecipient(bob), envRecipient(alice)}, nil); err != nil {
		t.Fatal(err)
	}
	if got.String() != string(content) {
		t.Fatal("plaintext differs")
	}

	// A certificate without the extension is matched by the RFC 5280 method (1) identifier.
	noSKI := *alice.Certificate
	noSKI.SubjectKeyId = nil
	computed := rewriteRecipientInfos(t, msg, func(ris [][]byte) [][]byte {
		return [][]byte{toSubjectKeyID(t, ris[0], computedKeyID(alice.Certificate))}
	})
	if _, err := Decrypt(io.Discard, bytes.NewReader(computed), []Recipient{{Certificate: &noSKI, Key: alice.Key}}, nil); err != nil {
		t.Fatalf("computed key identifier: %v", err)
	}

	var nr *NoRecipientError
	_, err := Decrypt(io.Discard, bytes.NewReader(skiMsg), []Recipient{envRecipient(bob)}, nil)
	if !errors.As(err, &nr) || !bytes.Equal(nr.Recipients[0].SubjectKeyID, alice.Certificate.SubjectKeyId) ||
		!strings.Contains(err.Error(), fmt.Sprintf("%X", alice.Certificate.SubjectKeyId)) {
		t.Fatalf("err = %v, want a NoRecipientError naming the key identifier", err)
	}
}

func TestDecryptUnsupportedRecipientKinds(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	msg := envEncrypt(t, []byte("x"), true, nil, alice)
	// A password recipient ([3]) before ours: skipped, ours is used.
	pwri := []byte{0xa3, 0x03, 0x02, 0x01, 0x00}
	withPWRI := rewriteRecipientInfos(t, msg, func(ris [][]byte) [][]byte { return append([][]byte{pwri}, ris...) })
	if _, err := Decrypt(io.Discard, bytes.NewReader(withPWRI), []Recipient{envRecipient(alice)}, nil); err != nil {
		t.Fatal(err)
	}
	onlyPWRI := rewriteRecipientInfos(t, msg, func([][]byte) [][]byte { return [][]byte{pwri} })
	_, err := Decrypt(io.Discard, bytes.NewReader(onlyPWRI), []Recipient{envRecipient(alice)}, nil)
	if !errors.Is(err, ErrNoRecipient) || !strings.Contains(err.Error(), "password recipient") {
		t.Fatalf("err = %v", err)
	}
}

func TestDecryptTruncated(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice-1024", &cmstest.Options{Bits: 1024})
	rcp := []Recipient{envRecipient(alice)}
	content := envContent(100, 4)
	for _, c := range []Cipher{AES128CBC, AES128GCM} {
		for _, known := range []bool{true, false} {
			msg := envEncrypt(t, content, known, &EncryptOptions{Cipher: c}, alice)
			for n := 0; n < len(msg); n++ {
				if _, err := Decrypt(io.Discard, bytes.NewReader(msg[:n]), rcp, nil); err == nil {
					t.Fatalf("%s known=%v: %d of %d bytes accepted", c, known, n, len(msg))
				}
			}
			// Trailing line ends and zero bytes are tolerated; anything else is not.
			if _, err := Decrypt(io.Discard, bytes.NewReader(append(bytes.Clone(msg), "\r\n\x00"...)), rcp, nil); err != nil {
				t.Fatalf("%s known=%v: trailing CRLF: %v", c, known, err)
			}
			if _, err := Decrypt(io.Discard, bytes.NewReader(append(bytes.Clone(msg), 'x')), rcp, nil); err == nil {
				t.Fatalf("%s known=%v: trailing garbage accepted", c, known)
			}
		}
	}
}

func TestDecryptMaxSize(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	rcp := []Recipient{envRecipient(alice)}
	for _, known := range []bool{true, false} {
		msg := envEncrypt(t, envContent(50000, 5), known, nil, alice)
		if _, err := Decrypt(io.Discard, bytes.NewReader(msg), rcp, &DecryptOptions{MaxSize: int64(len(msg))}); err != nil {
			t.Fatalf("known=%v: exactly MaxSize: %v", known, err)
		}
		_, err := Decrypt(io.Discard, bytes.NewReader(msg), rcp, &DecryptOptions{MaxSize: int64(len(msg)) - 1})
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("known=%v: one byte over MaxSize: err = %v, want ErrTooLarge", known, err)
		}
	}
}

// TestDecryptHostilePadding flips bits of the next-to-last ciphertext block of a real message
// so that the last plaintext block ends in chosen padding bytes. 0xff is the value that makes
// naive unpadding slice out of range.
func TestDecryptHostilePadding(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	rcp := []Recipient{envRecipient(alice)}
	for _, c := range []Cipher{DES3CBC, AES256CBC} {
		bs := 16
		if c == DES3CBC {
			bs = 8
		}
		content := envContent(100, 6)
		pad := byte(bs - len(content)%bs)
		msg := envEncrypt(t, content, true, &EncryptOptions{Cipher: c}, alice)
		for _, last := range []byte{0xff, 0x00, byte(bs + 1), 0x80} {
			bad := bytes.Clone(msg)
			bad[len(bad)-bs-1] ^= pad ^ last
			var got bytes.Buffer
			_, err := Decrypt(&got, bytes.NewReader(bad), rcp, nil)
			if err != ErrDecryption {
				t.Fatalf("%s last byte 0x%02x: err = %v, want ErrDecryption", c, last, err)
			}
		}
		// Padding of the right length with one wrong byte inside.
		bad := bytes.Clone(msg)
		bad[len(bad)-bs-2] ^= 1
		if _, err := Decrypt(io.Discard, bytes.NewReader(bad), rcp, nil); err != ErrDecryption {
			t.Fatalf("%s inconsistent padding: err = %v, want ErrDecryption", c, err)
		}
	}
}

func TestCheckPadding(t *testing.T) {
	t.Parallel()
	block := func(tail ...byte) []byte {
		b := bytes.Repeat([]byte{0xaa}, 16-len(tail))
		return append(b, tail...)
	}
	for name, tc := range map[string]struct {
		last []byte
		pad  int
		ok   int
	}{
		"one":           {block(1), 1, 1},
		"three":         {block(3, 3, 3), 3, 1},
		"full block":    {bytes.Repeat([]byte{16}, 16), 16, 1},
		"zero":          {block(0), 0, 0},
		"0xff":          {block(0xff), 0, 0},
		"too long":      {bytes.Repeat([]byte{17}, 16), 0, 0},
		"inconsistent":  {block(2, 3, 3), 0, 0},
		"short of pad":  {block(0xaa, 3, 3), 0, 0},
		"3des full":     {bytes.Repeat([]byte{8}, 8), 8, 1},
		"3des too long": {bytes.Repeat([]byte{9}, 8), 0, 0},
	} {
		pad, ok := checkPadding(tc.last)
		if ok != tc.ok || (ok == 1 && pad != tc.pad) {
			t.Errorf("%s: checkPadding = %d, %d; want %d, %d", name, pad, ok, tc.pad, tc.ok)
		}
	}
}

func TestDecryptCBCPartialBlock(t *testing.T) {
	t.Parallel()
	block, _ := aes.NewCipher(make([]byte, 16))
	for _, n := range []int{0, 15, 17, envChunk + 17} {
		err := decryptCBC(io.Discard, bytes.NewReader(make([]byte, n)), cipher.NewCBCDecrypter(block, make([]byte, 16)))
		if !errors.Is(err, ErrDecryption) {
			t.Errorf("%d bytes: err = %v, want ErrDecryption", n, err)
		}
	}
}

func TestDecryptTamperedGCM(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	rcp := []Recipient{envRecipient(alice)}
	content := envContent(1000, 7)
	msg := envEncrypt(t, content, true, &EncryptOptions{Cipher: AES256GCM}, alice)
	// The DER message ends: ... ciphertext, 04 10, tag.
	for name, pos := range map[string]int{
		"tag":             len(msg) - 1,
		"tag first byte":  len(msg) - 16,
		"last ciphertext": len(msg) - 19,
		"ciphertext":      len(msg) - 19 - 500,
	} {
		bad := bytes.Clone(msg)
		bad[pos] ^= 0x01
		if _, err := Decrypt(io.Discard, bytes.NewReader(bad), rcp, nil); err != ErrDecryption {
			t.Errorf("%s flipped: err = %v, want ErrDecryption", name, err)
		}
	}
}

// buildAuthEnveloped assembles an AuthEnvelopedData with crypto/cipher's one-shot GCM, with
// optional authAttrs and ICV length, to check the streaming decryption against it.
func buildAuthEnveloped(t testing.TB, to *cmstest.Identity, content, authAttrs []byte, nonceLen, icvLen int) []byte {
	t.Helper()
	cek := make([]byte, 16)
	nonce := make([]byte, nonceLen)
	rand.Read(cek)
	rand.Read(nonce)
	block, _ := aes.NewCipher(cek)
	aead, err := cipher.NewGCMWithTagSize(block, icvLen)
	if nonceLen != 12 {
		aead, err = cipher.NewGCMWithNonceSize(block, nonceLen)
	}
	if err != nil {
		t.Fatal(err)
	}
	var aad []byte
	if authAttrs != nil {
		aad = authAttrsAAD(authAttrs)
	}
	sealed := aead.Seal(nil, nonce, content, aad)
	ct, mac := sealed[:len(content)], sealed[len(content):]
	ris, err := recipientInfos(rand.Reader, []*x509.Certificate{to.Certificate}, KeyTransport{}, cek)
	if err != nil {
		t.Fatal(err)
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(0)
		b.AddBytes(ris)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidData)
			b.AddBytes(envAlgorithm(oidAES128GCM, gcmParams(nonce, icvLen)))
			b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(ct) })
		})
		if authAttrs != nil {
			b.AddBytes(authAttrs)
		}
		b.AddASN1OctetString(mac)
	})
	return contentInfo(oidAuthEnvelopedData, b.BytesOrPanic())
}

func TestDecryptAuthEnvelopedVariants(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	rcp := []Recipient{envRecipient(alice)}
	// authAttrs: [1] IMPLICIT SET OF Attribute, here one content-type attribute (id-data).
	var ab cryptobyte.Builder
	ab.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidAttrContentType)
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidData) })
		})
	})
	authAttrs := ab.BytesOrPanic()
	for name, tc := range map[string]struct {
		attrs         []byte
		nonceLen, icv int
		size          int
	}{
		"authAttrs":          {authAttrs, 12, 16, 5000},
		"authAttrs, empty":   {authAttrs, 12, 16, 0},
		"ICV 12 (default)":   {nil, 12, 12, 100},
		"ICV 13":             {nil, 12, 13, 100},
		"16-byte nonce":      {nil, 16, 16, 100},
		"authAttrs, 8 nonce": {authAttrs, 8, 16, 33},
	} {
		content := envContent(tc.size, 8)
		msg := buildAuthEnveloped(t, alice, content, tc.attrs, tc.nonceLen, tc.icv)
		var got bytes.Buffer
		if _, err := Decrypt(&got, bytes.NewReader(msg), rcp, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got.Bytes(), content) {
			t.Fatalf("%s: plaintext differs", name)
		}
		if tc.attrs != nil {
			// Change the attribute (id-data -> id-signedData, same length): the tag must fail.
			i := bytes.LastIndex(msg, oidTLV(oidData))
			bad := bytes.Clone(msg)
			bad[i+len(oidTLV(oidData))-1] = 2
			if _, err := Decrypt(io.Discard, bytes.NewReader(bad), rcp, nil); err != ErrDecryption {
				t.Fatalf("%s: changed authAttrs: err = %v, want ErrDecryption", name, err)
			}
		}
	}
}

func TestDecryptRejectsGCMInEnvelopedData(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	msg := envEncrypt(t, []byte("x"), false, &EncryptOptions{Cipher: AES128GCM}, alice)
	// With indefinite lengths the outer type can be swapped without fixing any length.
	bad := bytes.Replace(msg, oidTLV(oidAuthEnvelopedData), oidTLV(oidEnvelopedData), 1)
	_, err := Decrypt(io.Discard, bytes.NewReader(bad), []Recipient{envRecipient(alice)}, nil)
	if err == nil || !strings.Contains(err.Error(), "aes128-gcm content encryption inside enveloped-data") {
		t.Fatalf("err = %v", err)
	}
	cbc := envEncrypt(t, []byte("x"), false, &EncryptOptions{Cipher: AES128CBC}, alice)
	bad = bytes.Replace(cbc, oidTLV(oidEnvelopedData), oidTLV(oidAuthEnvelopedData), 1)
	if _, err := Decrypt(io.Discard, bytes.NewReader(bad), []Recipient{envRecipient(alice)}, nil); err == nil {
		t.Fatal("CBC inside AuthEnvelopedData accepted")
	}
}

func TestDecryptRejectsOtherContent(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	rcp := []Recipient{envRecipient(alice)}
	data := contentInfo(oidData, []byte{0x04, 0x01, 'x'})
	if _, err := Decrypt(io.Discard, bytes.NewReader(data), rcp, nil); err == nil || !strings.Contains(err.Error(), "neither") {
		t.Fatalf("id-data: err = %v", err)
	}
	// aes128-OFB (2.16.840.1.101.3.4.1.3): an OID of the same length as aes128-CBC's.
	msg := envEncrypt(t, []byte("x"), false, &EncryptOptions{Cipher: AES128CBC}, alice)
	ofb := oidTLV(oidAES128CBC)
	ofb[len(ofb)-1] = 3
	bad := bytes.Replace(msg, oidTLV(oidAES128CBC), ofb, 1)
	_, err := Decrypt(io.Discard, bytes.NewReader(bad), rcp, nil)
	var ua *UnsupportedAlgorithmError
	if !errors.As(err, &ua) || ua.What != "content encryption" || !strings.Contains(err.Error(), "2.16.840.1.101.3.4.1.3") {
		t.Fatalf("aes128-OFB: err = %v", err)
	}
}

func TestEncryptRejects(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "ec"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ecKey.PublicKey, ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecCert, _ := x509.ParseCertificate(der)
	content := []byte("0123456789")
	for name, tc := range map[string]struct {
		size  int64
		certs []*x509.Certificate
		opts  *EncryptOptions
		want  string
	}{
		"no recipients":   {10, nil, nil, "no recipient"},
		"nil certificate": {10, []*x509.Certificate{nil}, nil, "nil recipient"},
		"ECDSA recipient": {10, []*x509.Certificate{ecCert}, nil, "only RSA"},
		"unknown cipher":  {10, []*x509.Certificate{alice.Certificate}, &EncryptOptions{Cipher: 99}, "unknown cipher"},
		"short content":   {11, []*x509.Certificate{alice.Certificate}, nil, "ended after 10 bytes"},
		"long content":    {9, []*x509.Certificate{alice.Certificate}, nil, "longer than the 9 bytes"},
		"short, GCM":      {11, []*x509.Certificate{alice.Certificate}, &EncryptOptions{Cipher: AES256GCM}, "ended after"},
		"OAEP SHA-224": {10, []*x509.Certificate{alice.Certificate},
			&EncryptOptions{KeyTransport: KeyTransport{OAEP: true, Hash: crypto.SHA224}}, "unsupported key transport"},
	} {
		err := Encrypt(io.Discard, bytes.NewReader(content), tc.size, tc.certs, tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, tc.want)
		}
	}
}

func TestCipherNames(t *testing.T) {
	t.Parallel()
	want := []string{"3des", "aes128-cbc", "aes192-cbc", "aes256-cbc", "aes128-gcm", "aes256-gcm"}
	for i, c := range allCiphers {
		if c.String() != want[i] {
			t.Errorf("%d.String() = %q, want %q", int(c), c.String(), want[i])
		}
		p, err := ParseCipher(strings.ToUpper(want[i]))
		if err != nil || p != c {
			t.Errorf("ParseCipher(%q) = %v, %v", want[i], p, err)
		}
	}
	if _, err := ParseCipher("rc2"); err == nil {
		t.Error("ParseCipher(rc2) succeeded")
	}
	if Cipher(0).String() != "Cipher(0)" {
		t.Errorf("zero Cipher prints %q", Cipher(0).String())
	}
}

func TestKeyTransportNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		kt   KeyTransport
		name string
	}{
		{KeyTransport{}, "rsa-pkcs1v15"},
		{KeyTransport{Hash: crypto.SHA256}, "rsa-pkcs1v15"},
		{KeyTransport{OAEP: true}, "rsa-oaep-sha1"},
		{KeyTransport{OAEP: true, Hash: crypto.SHA1, MGFHash: crypto.SHA1}, "rsa-oaep-sha1"},
		{KeyTransport{OAEP: true, Hash: crypto.SHA256}, "rsa-oaep-sha256"},
		{KeyTransport{OAEP: true, Hash: crypto.SHA384}, "rsa-oaep-sha384"},
		{KeyTransport{OAEP: true, Hash: crypto.SHA512, MGFHash: crypto.SHA512}, "rsa-oaep-sha512"},
		{KeyTransport{OAEP: true, Hash: crypto.SHA256, MGFHash: crypto.SHA1}, "rsa-oaep-sha256-mgf1-sha1"},
		{KeyTransport{OAEP: true, MGFHash: crypto.SHA256}, "rsa-oaep-sha1-mgf1-sha256"},
	} {
		if got := tc.kt.String(); got != tc.name {
			t.Errorf("%+v.String() = %q, want %q", tc.kt, got, tc.name)
		}
		p, err := ParseKeyTransport(tc.name)
		if err != nil || !p.Equal(tc.kt) || p != tc.kt.canonical() {
			t.Errorf("ParseKeyTransport(%q) = %+v, %v", tc.name, p, err)
		}
	}
	if p, err := ParseKeyTransport("RSA-OAEP"); err != nil || !p.Equal(KeyTransport{OAEP: true}) {
		t.Errorf("ParseKeyTransport(RSA-OAEP) = %+v, %v", p, err)
	}
	for _, bad := range []string{"", "rsa", "rsa-oaep-md5", "rsa-oaepsha256", "rsa-oaep-sha256-mgf1-", "rsa-oaep-sha256-mgf1-md5"} {
		if _, err := ParseKeyTransport(bad); err == nil {
			t.Errorf("ParseKeyTransport(%q) succeeded", bad)
		}
	}
}

// TestOAEPParameters pins the RSAES-OAEP-params encoding and reads the forms others write.
func TestOAEPParameters(t *testing.T) {
	t.Parallel()
	alg := func(kt KeyTransport) []byte {
		der, err := kt.algorithmIdentifier()
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	// SHA-1 everywhere is all defaults: an empty SEQUENCE, as OpenSSL writes it.
	if _, params, _ := parseEnvAlgorithm(alg(KeyTransport{OAEP: true})); !bytes.Equal(params, []byte{0x30, 0}) {
		t.Errorf("OAEP-SHA1 parameters = % x, want an empty SEQUENCE", params)
	}
	// SHA-256 writes the hash and the mask generation function, both with NULL parameters.
	sha256Params := "30 2f a0 0f 30 0d 06 09 60 86 48 01 65 03 04 02 01 05 00" +
		" a1 1c 30 1a 06 09 2a 86 48 86 f7 0d 01 01 08 30 0d 06 09 60 86 48 01 65 03 04 02 01 05 00"
	if _, params, _ := parseEnvAlgorithm(alg(KeyTransport{OAEP: true, Hash: crypto.SHA256})); fmt.Sprintf("% x", params) != sha256Params {
		t.Errorf("OAEP-SHA256 parameters = % x\nwant %s", params, sha256Params)
	}
	// Java's OAEPWithSHA-256AndMGF1Padding: hash SHA-256, MGF1 default (SHA-1).
	javaParams := "30 0f a0 0d 30 0b 06 09 60 86 48 01 65 03 04 02 01"
	for name, tc := range map[string]struct {
		params string
		want   KeyTransport
		label  string
	}{
		"absent":      {"", KeyTransport{OAEP: true, Hash: crypto.SHA1}, ""},
		"NULL":        {"05 00", KeyTransport{OAEP: true, Hash: crypto.SHA1}, ""},
		"empty":       {"30 00", KeyTransport{OAEP: true, Hash: crypto.SHA1}, ""},
		"java sha256": {javaParams, KeyTransport{OAEP: true, Hash: crypto.SHA256, MGFHash: crypto.SHA1}, ""},
		"ours sha256": {sha256Params, KeyTransport{OAEP: true, Hash: crypto.SHA256}, ""},
		"label": {"30 15 a2 13 30 11 06 09 2a 86 48 86 f7 0d 01 01 09 04 04 74 65 73 74",
			KeyTransport{OAEP: true, Hash: crypto.SHA1}, "test"},
	} {
		var params []byte
		if tc.params != "" {
			fmt.Sscanf(strings.ReplaceAll(tc.params, " ", ""), "%x", &params)
		}
		kt, label, err := parseOAEPParams(params)
		if err != nil || kt != tc.want || string(label) != tc.label {
			t.Errorf("%s: parseOAEPParams = %+v, %q, %v", name, kt, label, err)
		}
	}
	for name, params := range map[string]string{
		"not a sequence": "04 00",
		"md5":            "30 0e a0 0c 30 0a 06 08 2a 86 48 86 f7 0d 02 05",
		"trailing":       "30 02 05 00",
		"hash params":    "30 10 a0 0e 30 0c 06 09 60 86 48 01 65 03 04 02 01 04 00",
	} {
		var b []byte
		fmt.Sscanf(strings.ReplaceAll(params, " ", ""), "%x", &b)
		if _, _, err := parseOAEPParams(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// envPatternReader yields n bytes of a repeating pattern without allocating.
type envPatternReader struct{ n int64 }

func (p *envPatternReader) Read(b []byte) (int, error) {
	if p.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n {
		b = b[:p.n]
	}
	for i := range b {
		b[i] = byte(p.n - int64(i))
	}
	p.n -= int64(len(b))
	return len(b), nil
}

// envCountingWriter counts and discards.
type envCountingWriter struct{ n int64 }

func (c *envCountingWriter) Write(b []byte) (int, error) { c.n += int64(len(b)); return len(b), nil }

// TestHeaderLen checks the length Encrypt announces for each header against the header
// appendHeader writes, around every length-of-length boundary.
func TestHeaderLen(t *testing.T) {
	t.Parallel()
	for _, n := range []int64{0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffffff, 0x1000000, 1 << 40} {
		if got, want := headerLen(n), int64(len(appendHeader(nil, tagSequence, n))); got != want {
			t.Errorf("headerLen(%d) = %d, want %d", n, got, want)
		}
	}
}
