package as2

import (
	"bytes"
	"crypto"
	_ "crypto/sha1" // registers SHA-1 for crypto.Hash.New
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/base64"
	"fmt"
	"hash"
	"strings"
)

// MIC is a message integrity check: the digest of the received content that the receiver
// returns in the Received-Content-MIC field of the MDN (RFC 4130 §7.3.1, §7.4.3), and the
// sender compares with the digest it computed when it sent the message.
type MIC struct {
	Digest []byte
	Alg    crypto.Hash
}

// String returns the Received-Content-MIC value: the base64 digest, a comma, a space and the
// algorithm name, e.g. "43d9tGY3gNSGuFaut4PAGvuc+48VgW6USgXLDPTxsBU=, sha-256".
func (m MIC) String() string {
	return base64.StdEncoding.EncodeToString(m.Digest) + ", " + MICAlg(m.Alg).String()
}

// Equal reports whether m and o are the same digest with the same algorithm.
func (m MIC) Equal(o MIC) bool {
	return m.Alg == o.Alg && len(m.Digest) > 0 && bytes.Equal(m.Digest, o.Digest)
}

// IsZero reports whether m holds no digest.
func (m MIC) IsZero() bool { return len(m.Digest) == 0 }

// ParseMIC reads a Received-Content-MIC value: "base64-digest, algorithm". It accepts any
// spacing, every spelling ParseMICAlg knows, base64 with or without padding, and a digest
// wrapped over several lines.
func ParseMIC(s string) (MIC, error) {
	digest, alg, ok := strings.Cut(s, ",")
	if !ok {
		return MIC{}, fmt.Errorf("as2: Received-Content-MIC %q has no algorithm (want \"digest, alg\")", s)
	}
	a, err := ParseMICAlg(alg)
	if err != nil {
		return MIC{}, fmt.Errorf("as2: Received-Content-MIC %q: %w", s, err)
	}
	digest = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, digest)
	d, err := base64.StdEncoding.DecodeString(digest)
	if err != nil {
		d, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(digest, "="))
	}
	if err != nil {
		return MIC{}, fmt.Errorf("as2: Received-Content-MIC %q: digest is not base64: %w", s, err)
	}
	if len(d) != a.Hash().Size() {
		return MIC{}, fmt.Errorf("as2: Received-Content-MIC %q: %d-byte digest for %s, which makes %d bytes", s, len(d), a, a.Hash().Size())
	}
	return MIC{Digest: d, Alg: a.Hash()}, nil
}

// MICHasher computes a MIC over what is written to it, so that a large message is hashed as
// it streams. Write never fails.
type MICHasher struct {
	h   hash.Hash
	alg crypto.Hash
}

// NewMICHasher returns a hasher for alg, one of the four AS2 MIC algorithms.
func NewMICHasher(alg crypto.Hash) (*MICHasher, error) {
	if _, err := MICAlgFor(alg); err != nil {
		return nil, err
	}
	return &MICHasher{h: alg.New(), alg: alg}, nil
}

func (m *MICHasher) Write(p []byte) (int, error) { return m.h.Write(p) }

// MIC returns the MIC of everything written so far.
func (m *MICHasher) MIC() MIC { return MIC{Digest: m.h.Sum(nil), Alg: m.alg} }

// ComputeMIC returns the MIC of the concatenation of data.
func ComputeMIC(alg crypto.Hash, data ...[]byte) (MIC, error) {
	h, err := NewMICHasher(alg)
	if err != nil {
		return MIC{}, err
	}
	for _, d := range data {
		h.h.Write(d)
	}
	return h.MIC(), nil
}

// MICScope says which bytes the MIC of a message covers. It depends on how the message was
// packed, and both ends must agree on it: the sender computes the MIC when it packs, the
// receiver when it unpacks, and the two are compared when the MDN comes back.
type MICScope int

// The MIC scopes, from RFC 4130 §7.3.1 and, for compressed messages, RFC 5402 §4.
//
// "Canonical" means CRLF line ends in the MIME header block (and in a text body): see
// Canonicalize. Content-Transfer-Encoding is never removed before hashing: the MIC covers the
// entity as it was packed.
const (
	// MICSignedEntity: the message is signed and the MIC covers exactly the bytes the
	// signature covers, the first part of the multipart/signed, MIME headers included,
	// canonical (RFC 4130 §7.3.1 first bullet, RFC 5402 §4.1). A receiver hashes Part.Raw of
	// that part as received (with CRLF restored on its headers, see CanonicalizeHeader).
	// Neither encryption around the signature nor compression after signing changes it.
	MICSignedEntity MICScope = iota + 1

	// MICSignedCompressedEntity: the message was compressed and then signed; what was signed,
	// and so what the MIC covers, is the application/pkcs7-mime; smime-type=compressed-data
	// entity, its headers and its CMS bytes (RFC 5402 §3.2, §3.5, §4.1), not the payload
	// inside. For a receiver this is the same rule as MICSignedEntity.
	MICSignedCompressedEntity

	// MICEntity: the message is not signed but encrypted, or compressed, or both. The MIC
	// covers the payload MIME entity, headers and body, canonical, as it is after decryption
	// and after decompression (RFC 4130 §7.3.1 second bullet, RFC 5402 §4.2 and §4.3). For a
	// compressed message that is the uncompressed entity, never the compressed-data wrapper.
	// With several attachments (RFC 6362) the entity is the whole multipart/related.
	MICEntity

	// MICContent: the message is neither signed, nor encrypted, nor compressed. The MIC
	// covers the body only, without any MIME or HTTP header (RFC 4130 §7.3.1 third bullet),
	// after the HTTP-level Content-Transfer-Encoding (if any) is removed.
	MICContent
)

// MICScopeFor returns what the MIC covers for a message with the given layers.
// compressBeforeSign matters only when the message is both signed and compressed.
func MICScopeFor(signed, encrypted, compressed, compressBeforeSign bool) MICScope {
	switch {
	case signed && compressed && compressBeforeSign:
		return MICSignedCompressedEntity
	case signed:
		return MICSignedEntity
	case encrypted || compressed:
		return MICEntity
	}
	return MICContent
}

// IncludesHeaders reports whether the MIC covers MIME headers.
func (s MICScope) IncludesHeaders() bool { return s != MICContent }

func (s MICScope) String() string {
	switch s {
	case MICSignedEntity:
		return "signed entity"
	case MICSignedCompressedEntity:
		return "signed compressed-data entity"
	case MICEntity:
		return "payload entity after decryption and decompression"
	case MICContent:
		return "payload content without headers"
	}
	return fmt.Sprintf("MICScope(%d)", int(s))
}
