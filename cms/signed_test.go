package cms

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/as2gate/as2gate/cms/cmstest"
)

var signHashes = []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512}

func TestSignedRoundTrip(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	content := []byte("Content-Type: application/edi-x12\r\n\r\nISA*00*...~\r\n")
	when := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, h := range signHashes {
		for _, pss := range []bool{false, true} {
			for _, detached := range []bool{false, true} {
				for _, noCert := range []bool{false, true} {
					name := fmt.Sprintf("%s/pss=%t/detached=%t/nocert=%t", h, pss, detached, noCert)
					t.Run(name, func(t *testing.T) {
						t.Parallel()
						opts := &SignOptions{Hash: h, PSS: pss, NoCertificate: noCert, SigningTime: when}
						var der []byte
						var err error
						if detached {
							der, err = SignDetached(bytes.NewReader(content), alice.Certificate, alice.Key, opts)
						} else {
							der, err = Sign(content, alice.Certificate, alice.Key, opts)
						}
						if err != nil {
							t.Fatal(err)
						}
						if typ, err := Identify(der); err != nil || typ != TypeSignedData {
							t.Fatalf("Identify = %v, %v", typ, err)
						}
						sd, err := ParseSignedData(der)
						if err != nil {
							t.Fatal(err)
						}
						if sd.Detached != detached {
							t.Errorf("Detached = %t", sd.Detached)
						}
						if wantCerts := map[bool]int{false: 1, true: 0}[noCert]; len(sd.Certificates) != wantCerts {
							t.Errorf("%d certificates embedded, want %d", len(sd.Certificates), wantCerts)
						}
						var r *bytes.Reader
						if detached {
							if sd.Content != nil {
								t.Errorf("detached signature has content %q", sd.Content)
							}
							r = bytes.NewReader(content)
						} else if !bytes.Equal(sd.Content, content) {
							t.Errorf("Content = %q", sd.Content)
						}
						var s *Signer
						if r != nil {
							s, err = sd.Verify(r, []*x509.Certificate{alice.Certificate})
						} else {
							s, err = sd.Verify(nil, []*x509.Certificate{alice.Certificate})
						}
						if err != nil {
							t.Fatal(err)
						}
						if s.Certificate != alice.Certificate || s.Hash != h || s.PSS != pss || !s.SigningTime.Equal(when) {
							t.Errorf("Signer = %+v", s)
						}
					})
				}
			}
		}
	}
}

func TestSignedVerifyFailures(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	mallory := cmstest.New(t, "mallory", nil)
	content := []byte("the quick brown fox")
	detached := func(opts *SignOptions) []byte {
		der, err := SignDetached(bytes.NewReader(content), alice.Certificate, alice.Key, opts)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	encapsulated, err := Sign(content, alice.Certificate, alice.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	flipLast := func(der []byte) []byte {
		der = bytes.Clone(der)
		der[len(der)-1] ^= 1 // the last byte of the message is the last byte of the signature
		return der
	}
	tamperedEncapsulated := bytes.Clone(encapsulated)
	i := bytes.Index(tamperedEncapsulated, content)
	tamperedEncapsulated[i] ^= 0x20

	for name, tc := range map[string]struct {
		der     []byte
		content []byte // nil: verify the encapsulated content
		trusted *cmstest.Identity
		reason  string
		check   func(t *testing.T, err error)
	}{
		"tampered detached content":  {der: detached(nil), content: []byte("the quick brown fix"), trusted: alice, reason: ReasonDigestMismatch},
		"truncated detached content": {der: detached(nil), content: content[:5], trusted: alice, reason: ReasonDigestMismatch},
		"tampered encapsulated":      {der: tamperedEncapsulated, trusted: alice, reason: ReasonDigestMismatch},
		"tampered signature":         {der: flipLast(detached(nil)), content: content, trusted: alice, reason: ReasonSignatureInvalid},
		"tampered PSS signature":     {der: flipLast(detached(&SignOptions{PSS: true})), content: content, trusted: alice, reason: ReasonSignatureInvalid},
		"tampered signing time": {
			der: func() []byte {
				der := detached(&SignOptions{SigningTime: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)})
				return bytes.Replace(der, []byte("300101000000Z"), []byte("300101000001Z"), 1)
			}(),
			content: content, trusted: alice, reason: ReasonSignatureInvalid,
		},
		"wrong trusted, certificate embedded": {
			der: detached(nil), content: content, trusted: mallory, reason: ReasonUntrusted,
			check: func(t *testing.T, err error) {
				var ue *UntrustedSignerError
				if !errors.As(err, &ue) || ue.Certificate == nil || !ue.Certificate.Equal(alice.Certificate) {
					t.Fatalf("error %v does not carry the embedded certificate", err)
				}
				for _, want := range []string{"CN=alice", serialHex(alice.Certificate.SerialNumber), alice.Certificate.NotAfter.UTC().Format(time.RFC3339)} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not mention %q", err, want)
					}
				}
			},
		},
		"wrong trusted, no certificate": {
			der: detached(&SignOptions{NoCertificate: true}), content: content, trusted: mallory, reason: ReasonUntrusted,
			check: func(t *testing.T, err error) {
				var ue *UntrustedSignerError
				if !errors.As(err, &ue) || ue.Certificate != nil || ue.SerialNumber.Cmp(alice.Certificate.SerialNumber) != 0 ||
					!strings.Contains(ue.Issuer, "CN=alice") {
					t.Fatalf("error %v does not identify the signer", err)
				}
			},
		},
		"wrong trusted, subject key identifier": {
			der: detached(&SignOptions{NoCertificate: true, SubjectKeyID: true}), content: content, trusted: mallory, reason: ReasonUntrusted,
			check: func(t *testing.T, err error) {
				var ue *UntrustedSignerError
				if !errors.As(err, &ue) || !bytes.Equal(ue.SubjectKeyID, alice.Certificate.SubjectKeyId) {
					t.Fatalf("error %v does not carry the subject key identifier", err)
				}
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sd, err := ParseSignedData(tc.der)
			if err != nil {
				t.Fatal(err)
			}
			trusted := []*x509.Certificate{tc.trusted.Certificate}
			if tc.content != nil {
				_, err = sd.Verify(bytes.NewReader(tc.content), trusted)
			} else {
				_, err = sd.Verify(nil, trusted)
			}
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify error = %v, want a *VerifyError", err)
			}
			if ve.Reason != tc.reason {
				t.Fatalf("Reason = %q (%v), want %q", ve.Reason, err, tc.reason)
			}
			if tc.check != nil {
				tc.check(t, err)
			}
		})
	}
}

func TestSignedVerifyArguments(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	trusted := []*x509.Certificate{alice.Certificate}
	detached, err := SignDetached(strings.NewReader("x"), alice.Certificate, alice.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	encapsulated, err := Sign([]byte("x"), alice.Certificate, alice.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	sdDetached, err := ParseSignedData(detached)
	if err != nil {
		t.Fatal(err)
	}
	sdEncapsulated, err := ParseSignedData(encapsulated)
	if err != nil {
		t.Fatal(err)
	}
	readErr := errors.New("connection reset")
	for name, verify := range map[string]func() error{
		"no trusted certificates":  func() error { _, err := sdDetached.Verify(strings.NewReader("x"), nil); return err },
		"detached without content": func() error { _, err := sdDetached.Verify(nil, trusted); return err },
		"content for encapsulated": func() error { _, err := sdEncapsulated.Verify(strings.NewReader("x"), trusted); return err },
		"content read fails": func() error {
			_, err := sdDetached.Verify(&failingReader{readErr}, trusted)
			if !errors.Is(err, readErr) {
				t.Errorf("error %v does not wrap the read error", err)
			}
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := verify()
			if err == nil {
				t.Fatal("Verify succeeded")
			}
			if !strings.HasPrefix(err.Error(), "cms: ") {
				t.Errorf("error %q does not name the package", err)
			}
		})
	}
}

type failingReader struct{ err error }

func (r *failingReader) Read([]byte) (int, error) { return 0, r.err }

// TestSignedSameKeyOtherCertificate covers the fallback to trusted keys when the signer
// identifier names a certificate we do not have: here a certificate re-issued over the
// same key with another serial number.
func TestSignedSameKeyOtherCertificate(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	other := cmstest.New(t, "other", nil)
	tmpl := *alice.Certificate
	tmpl.SerialNumber = big.NewInt(987654321)
	raw, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &alice.Key.PublicKey, alice.Key)
	if err != nil {
		t.Fatal(err)
	}
	reissued, err := x509.ParseCertificate(raw)
	if err != nil {
		t.Fatal(err)
	}
	for _, noCert := range []bool{false, true} {
		der, err := SignDetached(strings.NewReader("data"), alice.Certificate, alice.Key, &SignOptions{NoCertificate: noCert})
		if err != nil {
			t.Fatal(err)
		}
		sd, err := ParseSignedData(der)
		if err != nil {
			t.Fatal(err)
		}
		s, err := sd.Verify(strings.NewReader("data"), []*x509.Certificate{other.Certificate, reissued})
		if err != nil {
			t.Fatalf("nocert=%t: %v", noCert, err)
		}
		if s.Certificate != reissued {
			t.Errorf("nocert=%t: verified by %v", noCert, s.Certificate.Subject)
		}
		// The fallback still checks the content.
		_, err = sd.Verify(strings.NewReader("date"), []*x509.Certificate{reissued})
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.Reason != ReasonDigestMismatch {
			t.Errorf("nocert=%t: tampered content gave %v", noCert, err)
		}
	}
}

func TestSignedSubjectKeyID(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	der, err := SignDetached(strings.NewReader("data"), alice.Certificate, alice.Key, &SignOptions{SubjectKeyID: true, PSS: true})
	if err != nil {
		t.Fatal(err)
	}
	sd, err := ParseSignedData(der)
	if err != nil {
		t.Fatal(err)
	}
	if si := sd.signers[0]; !bytes.Equal(si.ski, alice.Certificate.SubjectKeyId) || si.serial != nil {
		t.Fatalf("signer identifier: ski %x serial %v", si.ski, si.serial)
	}
	// RFC 5652 §5.1: version 3 for a SignerInfo of version 3.
	s := cryptobyte.String(der)
	var ci, sdSeq cryptobyte.String
	var version int64
	if !s.ReadASN1(&ci, cbasn1.SEQUENCE) || !ci.SkipASN1(cbasn1.OBJECT_IDENTIFIER) ||
		!ci.ReadASN1(&sdSeq, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!sdSeq.ReadASN1(&sdSeq, cbasn1.SEQUENCE) || !sdSeq.ReadASN1Integer(&version) || version != 3 {
		t.Errorf("SignedData version %d, want 3", version)
	}
	if _, err := sd.Verify(strings.NewReader("data"), []*x509.Certificate{alice.Certificate}); err != nil {
		t.Fatal(err)
	}

	noSKI := *alice.Certificate
	noSKI.SubjectKeyId = nil
	if _, err := SignDetached(strings.NewReader("data"), &noSKI, alice.Key, &SignOptions{SubjectKeyID: true}); err == nil {
		t.Error("signed by subject key identifier with a certificate that has none")
	}
}

func TestSignedBER(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	content := bytes.Repeat([]byte("0123456789abcdef"), 40)
	trusted := []*x509.Certificate{alice.Certificate}
	encapsulated, err := Sign(content, alice.Certificate, alice.Key, &SignOptions{Hash: crypto.SHA384, PSS: true})
	if err != nil {
		t.Fatal(err)
	}
	detached, err := SignDetached(bytes.NewReader(content), alice.Certificate, alice.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, der := range map[string][]byte{"encapsulated": encapsulated, "detached": detached} {
		ber := berify(der)
		if bytes.Equal(ber, der) || ber[1] != 0x80 {
			t.Fatalf("%s: the BER form is not indefinite", name)
		}
		sd, err := ParseSignedData(ber)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(sd.Certificates) != 1 {
			t.Errorf("%s: %d certificates", name, len(sd.Certificates))
		}
		var r *bytes.Reader
		if sd.Detached {
			r = bytes.NewReader(content)
		} else if !bytes.Equal(sd.Content, content) {
			t.Errorf("%s: content not reassembled from its fragments", name)
		}
		if r != nil {
			_, err = sd.Verify(r, trusted)
		} else {
			_, err = sd.Verify(nil, trusted)
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// berify re-encodes DER as a streaming encoder would: indefinite lengths everywhere and
// OCTET STRINGs in fragments of at most 100 bytes.
func berify(der []byte) []byte {
	var out []byte
	s := cryptobyte.String(der)
	for !s.Empty() {
		var body cryptobyte.String
		var tag cbasn1.Tag
		if !s.ReadAnyASN1(&body, &tag) {
			panic("berify: not DER")
		}
		switch {
		case tag&0x20 != 0:
			out = append(out, byte(tag), 0x80)
			out = append(out, berify(body)...)
			out = append(out, 0, 0)
		case tag == cbasn1.OCTET_STRING && len(body) > 0:
			out = append(out, constructedOS, 0x80)
			for len(body) > 0 {
				n := min(len(body), 100)
				out = append(out, tagOctetString, byte(n))
				out = append(out, body[:n]...)
				body = body[n:]
			}
			out = append(out, 0, 0)
		default:
			out = appendHeader(out, byte(tag), int64(len(body)))
			out = append(out, body...)
		}
	}
	return out
}

// handSigner builds SignerInfos in encodings Sign does not produce.
type handSigner struct {
	hash        crypto.Hash
	digestNULL  bool                  // NULL parameters on the digest algorithm
	digestOID   asn1.ObjectIdentifier // overrides the digest algorithm OID
	noAttrs     bool                  // sign the content digest directly
	attrs       func(digest []byte) []byte
	sigOID      asn1.ObjectIdentifier // PKCS#1 v1.5 signature algorithm OID
	pssSalt     int                   // > 0: RSASSA-PSS with this salt length
	pssParams   []byte                // overrides the encoded RSASSA-PSS-params
	contentType asn1.ObjectIdentifier // eContentType, encoded as long as id-data; nil: id-data
}

// sign returns a detached SignedData over content.
func (hs handSigner) sign(t testing.TB, id *cmstest.Identity, content []byte) []byte {
	t.Helper()
	p, err := newSignParams(id.Certificate, id.Key, &SignOptions{Hash: hs.hash})
	if err != nil {
		t.Fatal(err)
	}
	h := hs.hash.New()
	h.Write(content)
	digest := h.Sum(nil)
	var attrs []byte
	signed := digest
	if !hs.noAttrs {
		if hs.attrs != nil {
			attrs = hs.attrs(digest)
		} else if attrs, err = p.signedAttributes(digest); err != nil {
			t.Fatal(err)
		}
		h := hs.hash.New()
		h.Write(appendHeader(nil, tagSet, int64(len(attrs))))
		h.Write(attrs)
		signed = h.Sum(nil)
	}
	var sig []byte
	if hs.pssSalt > 0 {
		sig, err = rsa.SignPSS(rand.Reader, id.Key, hs.hash, signed, &rsa.PSSOptions{SaltLength: hs.pssSalt})
	} else {
		sig, err = rsa.SignPKCS1v15(nil, id.Key, hs.hash, signed)
	}
	if err != nil {
		t.Fatal(err)
	}
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(1)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddBytes(id.Certificate.RawIssuer)
			b.AddASN1BigInt(id.Certificate.SerialNumber)
		})
		digestOID := p.hashOID
		if hs.digestOID != nil {
			digestOID = hs.digestOID
		}
		addAlgorithm(b, digestOID, hs.digestNULL)
		if !hs.noAttrs {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(attrs) })
		}
		switch {
		case hs.pssSalt > 0:
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oidRSASSAPSS)
				if hs.pssParams != nil {
					b.AddBytes(hs.pssParams)
					return
				}
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { addAlgorithm(b, p.hashOID, false) })
					b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1ObjectIdentifier(oidMGF1)
							addAlgorithm(b, p.hashOID, false)
						})
					})
					b.AddASN1(cbasn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddASN1Int64(int64(hs.pssSalt)) })
				})
			})
		case hs.sigOID != nil:
			addAlgorithm(b, hs.sigOID, true)
		default:
			addAlgorithm(b, oidRSAEncryption, true)
		}
		b.AddASN1OctetString(sig)
	})
	der := p.assemble(b.BytesOrPanic(), nil, false)
	if hs.contentType != nil {
		der = bytes.Replace(der, derOIDData, mustMarshalOID(hs.contentType), 1)
	}
	return der
}

// attribute encodes one signed attribute with one value.
func attribute(oid asn1.ObjectIdentifier, value func(*cryptobyte.Builder)) []byte {
	b := cryptobyte.NewBuilder(nil)
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		b.AddASN1(cbasn1.SET, value)
	})
	return b.BytesOrPanic()
}

func contentTypeAttr(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidData) }

func TestSignedHandBuiltEncodings(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	content := []byte("payload")
	digestAttr := func(digest []byte) []byte {
		return attribute(oidAttrMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(digest) })
	}
	sha256PSSParams := func(mgfHash asn1.ObjectIdentifier, salt int64) []byte {
		b := cryptobyte.NewBuilder(nil)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { addAlgorithm(b, oidSHA256, true) })
			b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidMGF1)
					addAlgorithm(b, mgfHash, true)
				})
			})
			b.AddASN1(cbasn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddASN1Int64(salt) })
		})
		return b.BytesOrPanic()
	}
	md5 := asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}

	for name, tc := range map[string]struct {
		hs       handSigner
		reason   string // "" : verifies
		wantPSS  bool
		parseErr bool
	}{
		"no signed attributes":             {hs: handSigner{hash: crypto.SHA256, noAttrs: true}},
		"no signed attributes, SHA-1":      {hs: handSigner{hash: crypto.SHA1, noAttrs: true}},
		"digest algorithm with NULL":       {hs: handSigner{hash: crypto.SHA384, digestNULL: true}},
		"sha256WithRSAEncryption":          {hs: handSigner{hash: crypto.SHA256, sigOID: oidSHA256WithRSA}},
		"sha512WithRSAEncryption":          {hs: handSigner{hash: crypto.SHA512, sigOID: oidSHA512WithRSA}},
		"sha1WithRSA label on SHA-256":     {hs: handSigner{hash: crypto.SHA256, sigOID: oidSHA1WithRSA}},
		"PSS with maximum salt (OpenSSL)":  {hs: handSigner{hash: crypto.SHA256, pssSalt: 256 - 32 - 2}, wantPSS: true},
		"PSS with salt 20":                 {hs: handSigner{hash: crypto.SHA256, pssSalt: 20}, wantPSS: true},
		"PSS params with NULL hash params": {hs: handSigner{hash: crypto.SHA256, pssSalt: 32, pssParams: sha256PSSParams(oidSHA256, 32)}, wantPSS: true},
		"PSS absent params mean SHA-1":     {hs: handSigner{hash: crypto.SHA1, pssSalt: 20, pssParams: []byte{}}, wantPSS: true},
		"PSS salt differs from params": {
			hs:     handSigner{hash: crypto.SHA256, pssSalt: 32, pssParams: sha256PSSParams(oidSHA256, 40)},
			reason: ReasonSignatureInvalid,
		},
		"PSS with MGF1 over another hash": {
			hs:     handSigner{hash: crypto.SHA256, pssSalt: 32, pssParams: sha256PSSParams(oidSHA1, 32)},
			reason: ReasonUnsupportedAlgorithm,
		},
		"PSS hash differs from digest": {
			hs:     handSigner{hash: crypto.SHA256, pssSalt: 20, pssParams: []byte{}},
			reason: ReasonUnsupportedAlgorithm,
		},
		"PSS negative salt": {
			hs:       handSigner{hash: crypto.SHA256, pssSalt: 32, pssParams: sha256PSSParams(oidSHA256, -1)},
			parseErr: true,
		},
		"unknown digest algorithm": {
			hs:     handSigner{hash: crypto.SHA256, digestOID: md5},
			reason: ReasonUnsupportedAlgorithm,
		},
		"unknown signature algorithm": {
			hs:     handSigner{hash: crypto.SHA256, sigOID: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}},
			reason: ReasonUnsupportedAlgorithm,
		},
		"no content-type attribute": {
			hs:     handSigner{hash: crypto.SHA256, attrs: digestAttr},
			reason: ReasonMissingAttribute,
		},
		"no message-digest attribute": {
			hs:     handSigner{hash: crypto.SHA256, attrs: func([]byte) []byte { return attribute(oidAttrContentType, contentTypeAttr) }},
			reason: ReasonMissingAttribute,
		},
		"content type differs": {
			hs:     handSigner{hash: crypto.SHA256, contentType: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 5}}, // digestedData: as long as id-data
			reason: ReasonContentTypeMismatch,
		},
		"unknown attribute ignored": {
			hs: handSigner{hash: crypto.SHA256, attrs: func(d []byte) []byte {
				return concat(attribute(oidAttrContentType, contentTypeAttr), digestAttr(d),
					attribute(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 15}, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {})
					}))
			}},
		},
		"message-digest repeated": {
			hs: handSigner{hash: crypto.SHA256, attrs: func(d []byte) []byte {
				return concat(attribute(oidAttrContentType, contentTypeAttr), digestAttr(d), digestAttr(make([]byte, 32)))
			}},
			parseErr: true,
		},
		"message-digest with two values": {
			hs: handSigner{hash: crypto.SHA256, attrs: func(d []byte) []byte {
				return concat(attribute(oidAttrContentType, contentTypeAttr),
					attribute(oidAttrMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(d); b.AddASN1OctetString(d) }))
			}},
			parseErr: true,
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			der := tc.hs.sign(t, alice, content)
			sd, err := ParseSignedData(der)
			if tc.parseErr {
				var se *SyntaxError
				if !errors.As(err, &se) {
					t.Fatalf("ParseSignedData error = %v, want a *SyntaxError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s, err := sd.Verify(bytes.NewReader(content), []*x509.Certificate{alice.Certificate})
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				if s.Hash != tc.hs.hash || s.PSS != tc.wantPSS {
					t.Errorf("Signer = %+v", s)
				}
				return
			}
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Reason != tc.reason {
				t.Fatalf("Verify error = %v, want reason %q", err, tc.reason)
			}
			var ue *UnsupportedAlgorithmError
			if tc.reason == ReasonUnsupportedAlgorithm && !errors.As(err, &ue) {
				t.Errorf("error %v carries no *UnsupportedAlgorithmError", err)
			}
		})
	}
}

// concat concatenates attribute encodings (SignerInfos built by hand need not be sorted).
func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestSignedAttributesEncoding(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	for name, tc := range map[string]struct {
		when time.Time
		tag  byte
	}{
		"1950 is UTCTime":         {time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), tagUTCTime},
		"2049 is UTCTime":         {time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC), tagUTCTime},
		"2050 is GeneralizedTime": {time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC), tagGenTime},
		"1949 is GeneralizedTime": {time.Date(1949, 12, 31, 23, 59, 59, 0, time.UTC), tagGenTime},
		"local time zone":         {time.Date(2030, 6, 1, 12, 0, 0, 0, time.FixedZone("CEST", 2*3600)), tagUTCTime},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			der, err := SignDetached(strings.NewReader("x"), alice.Certificate, alice.Key, &SignOptions{SigningTime: tc.when})
			if err != nil {
				t.Fatal(err)
			}
			sd, err := ParseSignedData(der)
			if err != nil {
				t.Fatal(err)
			}
			si := sd.signers[0]
			// DER: the attributes in ascending order of their encodings, each present once.
			attrs := cryptobyte.String(si.signedAttrs)
			var prev []byte
			var n int
			for ; !attrs.Empty(); n++ {
				var a cryptobyte.String
				if !attrs.ReadASN1Element(&a, cbasn1.SEQUENCE) {
					t.Fatal("malformed attributes")
				}
				if prev != nil && bytes.Compare(prev, a) >= 0 {
					t.Error("signed attributes are not in DER order")
				}
				prev = a
				var oid asn1.ObjectIdentifier
				var values cryptobyte.String
				if !a.ReadASN1(&a, cbasn1.SEQUENCE) || !a.ReadASN1ObjectIdentifier(&oid) || !a.ReadASN1(&values, cbasn1.SET) {
					t.Fatal("malformed attribute")
				}
				if oid.Equal(oidAttrSigningTime) && (len(values) == 0 || values[0] != tc.tag) {
					t.Errorf("signing time encoded as % x, want tag 0x%02x", []byte(values), tc.tag)
				}
			}
			if n != 3 {
				t.Errorf("%d signed attributes, want 3", n)
			}
			s, err := sd.Verify(strings.NewReader("x"), []*x509.Certificate{alice.Certificate})
			if err != nil {
				t.Fatal(err)
			}
			if !s.SigningTime.Equal(tc.when) {
				t.Errorf("SigningTime = %v, want %v", s.SigningTime, tc.when)
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	bob := cmstest.New(t, "bob", nil)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		cert *x509.Certificate
		key  crypto.Signer
		opts *SignOptions
		want func(error) bool
	}{
		"ECDSA key": {alice.Certificate, ecKey, nil, func(err error) bool {
			var ue *UnsupportedAlgorithmError
			return errors.As(err, &ue) && strings.Contains(err.Error(), "ECDSA")
		}},
		"MD5":            {alice.Certificate, alice.Key, &SignOptions{Hash: crypto.MD5}, isUnsupported},
		"SHA-224":        {alice.Certificate, alice.Key, &SignOptions{Hash: crypto.SHA224}, isUnsupported},
		"key of another": {bob.Certificate, alice.Key, nil, func(err error) bool { return strings.Contains(err.Error(), "does not belong") }},
		"no certificate": {nil, alice.Key, nil, func(err error) bool { return err != nil }},
		"no key":         {alice.Certificate, nil, nil, func(err error) bool { return err != nil }},
		"year 10000":     {alice.Certificate, alice.Key, &SignOptions{SigningTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, func(err error) bool { return err != nil }},
		"PSS with ECDSA": {alice.Certificate, ecKey, &SignOptions{PSS: true}, isUnsupported},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err1 := Sign([]byte("x"), tc.cert, tc.key, tc.opts)
			_, err2 := SignDetached(strings.NewReader("x"), tc.cert, tc.key, tc.opts)
			for _, err := range []error{err1, err2} {
				if err == nil || !tc.want(err) {
					t.Errorf("error = %v", err)
				} else if !strings.HasPrefix(err.Error(), "cms: ") {
					t.Errorf("error %q does not name the package", err)
				}
			}
		})
	}
}

func isUnsupported(err error) bool {
	var ue *UnsupportedAlgorithmError
	return errors.As(err, &ue)
}

func TestParseSignedDataErrors(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	good, err := SignDetached(strings.NewReader("x"), alice.Certificate, alice.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	isSyntax := func(err error) bool { var se *SyntaxError; return errors.As(err, &se) }
	for name, tc := range map[string]struct {
		in   []byte
		want func(error) bool
	}{
		"empty":            {nil, isSyntax},
		"garbage":          {[]byte("MIME-Version: 1.0\r\n"), isSyntax},
		"truncated":        {good[:len(good)/2], isSyntax},
		"too large":        {make([]byte, MaxSignedSize+1), func(err error) bool { return errors.Is(err, ErrTooLarge) }},
		"data":             {contentInfo(oidData, []byte{0x04, 0x01, 'x'}), func(err error) bool { return strings.Contains(err.Error(), "found data") }},
		"other type":       {contentInfo(asn1.ObjectIdentifier{1, 2, 3}, []byte{0x05, 0x00}), func(err error) bool { return strings.Contains(err.Error(), "1.2.3") }},
		"not a SEQUENCE":   {contentInfo(oidSignedData, []byte{0x05, 0x00}), isSyntax},
		"empty SignedData": {contentInfo(oidSignedData, []byte{0x30, 0x00}), isSyntax},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseSignedData(tc.in)
			if err == nil || !tc.want(err) {
				t.Fatalf("error = %v", err)
			}
			if !strings.HasPrefix(err.Error(), "cms: ") {
				t.Errorf("error %q does not name the package", err)
			}
		})
	}
}

// TestSignedMultipleSigners checks that a message with an unknown and a known signer
// verifies through the known one, and that the error of a failure names the known one.
func TestSignedMultipleSigners(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	bob := cmstest.New(t, "bob", nil)
	carol := cmstest.New(t, "carol", nil)
	content := []byte("two signers")
	signerInfoOf := func(id *cmstest.Identity) []byte {
		p, err := newSignParams(id.Certificate, id.Key, nil)
		if err != nil {
			t.Fatal(err)
		}
		h := p.hash.New()
		h.Write(content)
		si, err := p.signerInfo(h.Sum(nil))
		if err != nil {
			t.Fatal(err)
		}
		return si
	}
	p, err := newSignParams(alice.Certificate, alice.Key, &SignOptions{Certificates: []*x509.Certificate{bob.Certificate}})
	if err != nil {
		t.Fatal(err)
	}
	der := p.assemble(append(signerInfoOf(bob), signerInfoOf(alice)...), nil, false)
	sd, err := ParseSignedData(der)
	if err != nil {
		t.Fatal(err)
	}
	if len(sd.signers) != 2 || len(sd.Certificates) != 2 {
		t.Fatalf("%d signers, %d certificates", len(sd.signers), len(sd.Certificates))
	}
	s, err := sd.Verify(bytes.NewReader(content), []*x509.Certificate{carol.Certificate, alice.Certificate})
	if err != nil {
		t.Fatal(err)
	}
	if s.Certificate != alice.Certificate {
		t.Errorf("verified by %v", s.Certificate.Subject)
	}
	_, err = sd.Verify(strings.NewReader("other"), []*x509.Certificate{alice.Certificate})
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Reason != ReasonDigestMismatch {
		t.Errorf("error = %v, want %q", err, ReasonDigestMismatch)
	}
}

func TestSignedNoSignerInfos(t *testing.T) {
	t.Parallel()
	alice := cmstest.New(t, "alice", nil)
	p, err := newSignParams(alice.Certificate, alice.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := ParseSignedData(p.assemble(nil, []byte("x"), true))
	if err != nil {
		t.Fatal(err)
	}
	_, err = sd.Verify(nil, []*x509.Certificate{alice.Certificate})
	var ve *VerifyError
	if !errors.As(err, &ve) || ve.Reason != ReasonNoSigner {
		t.Fatalf("error = %v, want %q", err, ReasonNoSigner)
	}
}

// TestSignedHeaderLen pins headerLen, which assemble relies on for its exact-size output, to
// what appendHeader writes.
func TestSignedHeaderLen(t *testing.T) {
	t.Parallel()
	for _, n := range []int64{0, 1, 0x7f, 0x80, 0xff, 0x100, 0x578, 0xffff, 0x10000, 1 << 24, 1<<31 - 1, 1 << 40} {
		if got, want := headerLen(n), int64(len(appendHeader(nil, tagSequence, n))); got != want {
			t.Errorf("headerLen(%#x) = %d, appendHeader writes %d", n, got, want)
		}
	}
}

func TestSignedDERFastPath(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		in   []byte
		want bool
	}{
		"DER":                     {[]byte{0x30, 0x05, 0x04, 0x01, 'x', 0x05, 0x00}, true},
		"long form":               {append([]byte{0x04, 0x81, 0x80}, make([]byte, 0x80)...), true},
		"indefinite":              {[]byte{0x30, 0x80, 0x05, 0x00, 0x00, 0x00}, false},
		"non-minimal length":      {[]byte{0x30, 0x81, 0x02, 0x05, 0x00}, false},
		"leading zero length":     {append([]byte{0x04, 0x82, 0x00, 0x80}, make([]byte, 0x80)...), false},
		"constructed OCTET":       {[]byte{0x24, 0x03, 0x04, 0x01, 'x'}, false},
		"constructed [0] allowed": {[]byte{0xa0, 0x03, 0x04, 0x01, 'x'}, true},
		"nested indefinite":       {[]byte{0x30, 0x06, 0x30, 0x80, 0x05, 0x00, 0x00, 0x00}, false},
		"child overruns parent":   {[]byte{0x30, 0x02, 0x04, 0x05, 'x', 'y', 'z', 'z', 'y'}, false},
		"truncated":               {[]byte{0x30, 0x05, 0x05, 0x00}, false},
	} {
		if _, got := derShaped(tc.in, 0); got != tc.want {
			t.Errorf("%s: derShaped = %t, want %t", name, got, tc.want)
		}
	}

	// A SignedData whose outer length is not minimal goes through normalize and verifies.
	alice := cmstest.New(t, "alice", nil)
	der, err := Sign([]byte("x"), alice.Certificate, alice.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if der[1] != 0x82 {
		t.Fatalf("unexpected header % x", der[:4])
	}
	padded := append([]byte{0x30, 0x84, 0, 0}, der[2:]...)
	sd, err := ParseSignedData(padded)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sd.Verify(nil, []*x509.Certificate{alice.Certificate}); err != nil {
		t.Fatal(err)
	}
}
