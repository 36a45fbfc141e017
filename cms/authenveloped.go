package cms

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// AuthEnvelopedData specifics (RFC 5083) with AES-GCM (RFC 5084).

const (
	// gcmNonceLen is the nonce length written: 12 bytes, as RFC 5084 §3.2 recommends.
	gcmNonceLen = 12
	// gcmTagLen is the ICV length written. It is not the ASN.1 DEFAULT (12), so DER has it
	// spelled out, as OpenSSL and BouncyCastle write it.
	gcmTagLen = 16
	// maxGCMNonce bounds the nonce accepted. SP 800-38D allows any length; products use 12.
	maxGCMNonce = 128
	// maxAuthAttrs bounds the encoded authenticated attributes.
	maxAuthAttrs = 64 << 10
)

// gcmParams encodes GCMParameters ::= SEQUENCE { aes-nonce OCTET STRING,
// aes-ICVlen INTEGER DEFAULT 12 }.
func gcmParams(nonce []byte, icvLen int) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1OctetString(nonce)
		if icvLen != 12 {
			b.AddASN1Int64(int64(icvLen))
		}
	})
	return b.BytesOrPanic()
}

// parseGCMParams reads GCMParameters and checks the ICV length is one RFC 5084 allows
// (12 to 16 bytes).
func parseGCMParams(params []byte) (nonce []byte, icvLen int, err error) {
	s := cryptobyte.String(params)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() || !seq.ReadASN1Bytes(&nonce, cbasn1.OCTET_STRING) {
		return nil, 0, errors.New("cms: malformed GCM parameters")
	}
	icvLen = 12
	if !seq.Empty() {
		if !seq.ReadASN1Integer(&icvLen) || !seq.Empty() {
			return nil, 0, errors.New("cms: malformed GCM parameters")
		}
	}
	if icvLen < 12 || icvLen > 16 {
		return nil, 0, fmt.Errorf("cms: GCM ICV length %d is not between 12 and 16", icvLen)
	}
	if len(nonce) == 0 || len(nonce) > maxGCMNonce {
		return nil, 0, fmt.Errorf("cms: GCM nonce of %d bytes", len(nonce))
	}
	return nonce, icvLen, nil
}

// gcmSealer adapts gcmStream to envSealer.
type gcmSealer struct{ g *gcmStream }

func (s gcmSealer) seal(buf []byte, _ bool) ([]byte, error) {
	return buf, s.g.encrypt(buf, buf)
}

// trailer is the tag. Encrypt writes no authenticated attributes, so there is no AAD.
func (s gcmSealer) trailer() []byte { return s.g.tag(nil)[:gcmTagLen] }

// authAttrsAAD turns the DER of an authAttrs field ([1] IMPLICIT SET OF Attribute) into the
// additional authenticated data: RFC 5083 §2.1 authenticates the DER encoding with an
// EXPLICIT SET OF tag in place of the [1].
func authAttrsAAD(der []byte) []byte {
	aad := append([]byte(nil), der...)
	aad[0] = tagSet
	return aad
}
