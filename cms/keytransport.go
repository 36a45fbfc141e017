package cms

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	_ "crypto/sha256" // OAEP digests, linked for crypto.Hash.New
	_ "crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Key transport recipients (RFC 5652 §6.2.1): the content-encryption key encrypted to a
// recipient's RSA public key with PKCS#1 v1.5 (RFC 3370 §4.2.1) or RSAES-OAEP (RFC 3560,
// parameters from RFC 4055 §4.1).

// KeyTransport is how the content-encryption key is encrypted to a recipient's RSA key.
//
// The canonical form, which ParseKeyTransport and Decrypt return, has Hash set whenever OAEP
// is, MGFHash zero when it equals Hash, and both zero without OAEP. Compare values with Equal.
type KeyTransport struct {
	OAEP    bool        // false: RSA PKCS#1 v1.5
	Hash    crypto.Hash // OAEP digest: SHA1, SHA256, SHA384, SHA512 (zero with OAEP means SHA1)
	MGFHash crypto.Hash // MGF1 digest; zero means the same as Hash
}

// canonical returns k with the defaults spelled out as described on KeyTransport.
func (k KeyTransport) canonical() KeyTransport {
	if !k.OAEP {
		return KeyTransport{}
	}
	if k.Hash == 0 {
		k.Hash = crypto.SHA1
	}
	if k.MGFHash == k.Hash {
		k.MGFHash = 0
	}
	return k
}

func (k KeyTransport) mgfHash() crypto.Hash {
	if k.MGFHash == 0 {
		return k.Hash
	}
	return k.MGFHash
}

// Equal reports whether k and o are the same algorithm once defaults are applied.
func (k KeyTransport) Equal(o KeyTransport) bool { return k.canonical() == o.canonical() }

var keyTransportHashNames = map[crypto.Hash]string{
	crypto.SHA1:   "sha1",
	crypto.SHA256: "sha256",
	crypto.SHA384: "sha384",
	crypto.SHA512: "sha512",
}

func hashName(h crypto.Hash) string {
	if n, ok := keyTransportHashNames[h]; ok {
		return n
	}
	return h.String()
}

// String returns the configuration spelling of k: "rsa-pkcs1v15", "rsa-oaep-sha256",
// "rsa-oaep-sha256-mgf1-sha1" when the MGF1 digest differs.
func (k KeyTransport) String() string {
	k = k.canonical()
	if !k.OAEP {
		return "rsa-pkcs1v15"
	}
	s := "rsa-oaep-" + hashName(k.Hash)
	if k.MGFHash != 0 {
		s += "-mgf1-" + hashName(k.MGFHash)
	}
	return s
}

// ParseKeyTransport parses the spellings String produces. "rsa-oaep" alone means SHA-1.
func ParseKeyTransport(s string) (KeyTransport, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "rsa-pkcs1v15" {
		return KeyTransport{}, nil
	}
	rest, ok := strings.CutPrefix(s, "rsa-oaep")
	if !ok {
		return KeyTransport{}, fmt.Errorf("cms: unknown key transport %q", s)
	}
	k := KeyTransport{OAEP: true, Hash: crypto.SHA1}
	if rest == "" {
		return k, nil
	}
	hashPart, mgfPart, hasMGF := strings.Cut(strings.TrimPrefix(rest, "-"), "-mgf1-")
	lookup := func(name string) (crypto.Hash, bool) {
		for h, n := range keyTransportHashNames {
			if n == name {
				return h, true
			}
		}
		return 0, false
	}
	if k.Hash, ok = lookup(hashPart); !ok || !strings.HasPrefix(rest, "-") {
		return KeyTransport{}, fmt.Errorf("cms: unknown key transport %q", s)
	}
	if hasMGF {
		if k.MGFHash, ok = lookup(mgfPart); !ok {
			return KeyTransport{}, fmt.Errorf("cms: unknown key transport %q", s)
		}
	}
	return k.canonical(), nil
}

// algorithmIdentifier returns the DER keyEncryptionAlgorithm for k.
//
// For OAEP both hashAlgorithm and maskGenAlgorithm are written unless they equal the DER
// DEFAULT (SHA-1), which DER forbids encoding and which is then also what every reader
// assumes. Writing only the hash would make readers assume MGF1-SHA1 and fail.
func (k KeyTransport) algorithmIdentifier() ([]byte, error) {
	k = k.canonical()
	var b cryptobyte.Builder
	if !k.OAEP {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidRSAEncryption)
			b.AddASN1NULL()
		})
		return b.Bytes()
	}
	hashOID, err := keyTransportHashOID(k.Hash)
	if err != nil {
		return nil, err
	}
	mgfOID, err := keyTransportHashOID(k.mgfHash())
	if err != nil {
		return nil, err
	}
	// RFC 4055 §2.1: in OAEP parameters the digest identifiers carry NULL parameters.
	hashAlg := func(b *cryptobyte.Builder, oid asn1.ObjectIdentifier) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1NULL()
		})
	}
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidRSAESOAEP)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			if k.Hash != crypto.SHA1 {
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					hashAlg(b, hashOID)
				})
			}
			if k.mgfHash() != crypto.SHA1 {
				b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1ObjectIdentifier(oidMGF1)
						hashAlg(b, mgfOID)
					})
				})
			}
		})
	})
	return b.Bytes()
}

func keyTransportHashOID(h crypto.Hash) (asn1.ObjectIdentifier, error) {
	oid, err := oidForHash(h)
	if err != nil {
		return nil, &UnsupportedAlgorithmError{What: "key transport", Name: "RSA-OAEP with " + h.String()}
	}
	return oid, nil
}

// parseKeyTransportAlgorithm reads a keyEncryptionAlgorithm and returns the key transport
// and the OAEP label (almost always empty).
func parseKeyTransportAlgorithm(der []byte) (KeyTransport, []byte, error) {
	oid, params, err := parseEnvAlgorithm(der)
	if err != nil {
		return KeyTransport{}, nil, err
	}
	switch {
	case oid.Equal(oidRSAEncryption):
		return KeyTransport{}, nil, nil
	case oid.Equal(oidRSAESOAEP):
		return parseOAEPParams(params)
	}
	return KeyTransport{}, nil, &UnsupportedAlgorithmError{What: "key transport", OID: oid}
}

// parseOAEPParams reads RSAES-OAEP-params (RFC 4055 §4.1), in which every field has a
// default: SHA-1, MGF1 with SHA-1, and an empty label.
func parseOAEPParams(params []byte) (KeyTransport, []byte, error) {
	k := KeyTransport{OAEP: true, Hash: crypto.SHA1, MGFHash: crypto.SHA1}
	// QUIRK: RFC 4055 makes the parameters mandatory, but some writers leave them out or
	// put NULL to mean "all defaults".
	if len(params) == 0 || bytes.Equal(params, []byte{tagNull, 0}) {
		return k.canonical(), nil, nil
	}
	bad := func(what string) (KeyTransport, []byte, error) {
		return KeyTransport{}, nil, fmt.Errorf("cms: malformed RSAES-OAEP parameters: %s", what)
	}
	s := cryptobyte.String(params)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !s.Empty() {
		return bad("not a SEQUENCE")
	}
	var label []byte
	var field cryptobyte.String
	var present bool
	if !seq.ReadOptionalASN1(&field, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return bad("hashAlgorithm")
	}
	if present {
		h, err := parseOAEPHash(field)
		if err != nil {
			return KeyTransport{}, nil, err
		}
		k.Hash = h
	}
	if !seq.ReadOptionalASN1(&field, &present, cbasn1.Tag(1).Constructed().ContextSpecific()) {
		return bad("maskGenAlgorithm")
	}
	if present {
		oid, mgfParams, err := parseEnvAlgorithm(field)
		if err != nil {
			return KeyTransport{}, nil, err
		}
		if !oid.Equal(oidMGF1) {
			return KeyTransport{}, nil, &UnsupportedAlgorithmError{What: "key transport", Name: "RSA-OAEP with mask generation " + oid.String()}
		}
		h, err := parseOAEPHash(mgfParams)
		if err != nil {
			return KeyTransport{}, nil, err
		}
		k.MGFHash = h
	}
	if !seq.ReadOptionalASN1(&field, &present, cbasn1.Tag(2).Constructed().ContextSpecific()) {
		return bad("pSourceAlgorithm")
	}
	if present {
		oid, pParams, err := parseEnvAlgorithm(field)
		if err != nil {
			return KeyTransport{}, nil, err
		}
		ps := cryptobyte.String(pParams)
		if !oid.Equal(oidPSpecified) || !ps.ReadASN1Bytes(&label, cbasn1.OCTET_STRING) || !ps.Empty() {
			return bad("pSourceAlgorithm is not id-pSpecified with an OCTET STRING")
		}
	}
	if !seq.Empty() {
		return bad("trailing fields")
	}
	return k.canonical(), label, nil
}

// parseOAEPHash reads a digest AlgorithmIdentifier whose parameters are NULL or absent.
func parseOAEPHash(der []byte) (crypto.Hash, error) {
	oid, params, err := parseEnvAlgorithm(der)
	if err != nil {
		return 0, err
	}
	if len(params) != 0 && !bytes.Equal(params, []byte{tagNull, 0}) {
		return 0, errors.New("cms: digest algorithm in RSAES-OAEP parameters has parameters")
	}
	h, err := hashForOID(oid)
	if err != nil {
		return 0, &UnsupportedAlgorithmError{What: "key transport", Name: "RSA-OAEP with digest " + oid.String()}
	}
	return h, nil
}

// parseEnvAlgorithm reads an AlgorithmIdentifier and returns its OID and the DER of its
// parameters (nil when absent).
func parseEnvAlgorithm(der []byte) (asn1.ObjectIdentifier, []byte, error) {
	s := cryptobyte.String(der)
	var alg cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&alg, cbasn1.SEQUENCE) || !s.Empty() || !alg.ReadASN1ObjectIdentifier(&oid) {
		return nil, nil, errors.New("cms: malformed AlgorithmIdentifier")
	}
	var params cryptobyte.String
	if !alg.Empty() {
		if !alg.ReadAnyASN1Element(&params, nil) || !alg.Empty() {
			return nil, nil, errors.New("cms: malformed AlgorithmIdentifier parameters")
		}
	}
	return oid, params, nil
}

// encryptKey encrypts the content-encryption key to pub.
func (k KeyTransport) encryptKey(random io.Reader, pub *rsa.PublicKey, cek []byte) ([]byte, error) {
	k = k.canonical()
	if !k.OAEP {
		return rsa.EncryptPKCS1v15(random, pub, cek)
	}
	if !k.Hash.Available() || !k.mgfHash().Available() {
		return nil, &UnsupportedAlgorithmError{What: "key transport", Name: k.String()}
	}
	return rsa.EncryptOAEPWithOptions(random, pub, cek, &rsa.OAEPOptions{Hash: k.Hash, MGFHash: k.mgfHash()})
}

// decryptKey recovers a content-encryption key of keyLen bytes. Every failure is
// ErrDecryption.
//
// PKCS#1 v1.5 uses implicit rejection (RFC 3218 §2.3.2): when the padding is wrong a random
// key of the right length takes the place of the real one, the content then fails to
// decrypt, and the sender cannot tell a padding error from any other (Bleichenbacher).
func decryptKey(k KeyTransport, label []byte, key crypto.Decrypter, encryptedKey []byte, keyLen int) ([]byte, error) {
	k = k.canonical()
	var cek []byte
	if !k.OAEP {
		if priv, ok := key.(*rsa.PrivateKey); ok {
			cek = make([]byte, keyLen)
			if _, err := io.ReadFull(rand.Reader, cek); err != nil {
				return nil, err
			}
			if err := rsa.DecryptPKCS1v15SessionKey(nil, priv, encryptedKey, cek); err != nil {
				return nil, ErrDecryption
			}
			return cek, nil
		}
		var err error
		cek, err = key.Decrypt(rand.Reader, encryptedKey, &rsa.PKCS1v15DecryptOptions{SessionKeyLen: keyLen})
		if err != nil {
			return nil, ErrDecryption
		}
	} else {
		var err error
		cek, err = key.Decrypt(rand.Reader, encryptedKey, &rsa.OAEPOptions{Hash: k.Hash, MGFHash: k.mgfHash(), Label: label})
		if err != nil {
			return nil, ErrDecryption
		}
	}
	if len(cek) != keyLen {
		return nil, ErrDecryption
	}
	return cek, nil
}

// RecipientID identifies one RecipientInfo of a message: the certificate the sender
// encrypted to, or a kind of recipient this package does not support.
type RecipientID struct {
	Issuer       string   // issuer name of the certificate (issuerAndSerialNumber), RFC 2253 form
	SerialNumber *big.Int // its serial number
	SubjectKeyID []byte   // or its subject key identifier
	Other        string   // non-empty for unsupported recipient kinds: "key agreement", "KEK", "password", "other"
}

// String names the certificate as an operator would look it up.
func (id RecipientID) String() string {
	switch {
	case id.Other != "":
		return id.Other + " recipient (not supported)"
	case id.SubjectKeyID != nil:
		return fmt.Sprintf("subject key identifier %X", id.SubjectKeyID)
	default:
		return fmt.Sprintf("issuer %q serial %s (0x%X)", id.Issuer, id.SerialNumber, id.SerialNumber)
	}
}

// ErrNoRecipient is the error (wrapped in a *NoRecipientError) for a message that is not
// encrypted for any of the recipient keys given to Decrypt.
var ErrNoRecipient = errors.New("cms: the message is not encrypted for any of our certificates")

// NoRecipientError lists the recipients a message was encrypted for, so that an operator can
// see which certificate the partner used. It unwraps to ErrNoRecipient.
type NoRecipientError struct {
	Recipients []RecipientID
}

func (e *NoRecipientError) Error() string {
	var b strings.Builder
	b.WriteString(ErrNoRecipient.Error())
	b.WriteString("; it is for ")
	for i, id := range e.Recipients {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(id.String())
	}
	return b.String()
}

func (e *NoRecipientError) Unwrap() error { return ErrNoRecipient }

// recipientInfo is one parsed KeyTransRecipientInfo (or a placeholder for another kind).
type recipientInfo struct {
	id           RecipientID
	rawIssuer    []byte
	algorithm    []byte // DER keyEncryptionAlgorithm
	encryptedKey []byte
}

// maxRecipientInfos bounds the encoded size of the RecipientInfos SET.
const maxRecipientInfos = 1 << 20

// otherRecipientKinds names the RecipientInfo choices other than key transport.
var otherRecipientKinds = map[cbasn1.Tag]string{
	cbasn1.Tag(1).Constructed().ContextSpecific(): "key agreement",
	cbasn1.Tag(2).Constructed().ContextSpecific(): "KEK",
	cbasn1.Tag(3).Constructed().ContextSpecific(): "password",
	cbasn1.Tag(4).Constructed().ContextSpecific(): "other",
}

// parseRecipientInfos reads the DER RecipientInfos SET.
func parseRecipientInfos(der []byte) ([]recipientInfo, error) {
	s := cryptobyte.String(der)
	var set cryptobyte.String
	if !s.ReadASN1(&set, cbasn1.SET) || !s.Empty() {
		return nil, errors.New("cms: recipientInfos is not a SET")
	}
	var infos []recipientInfo
	for !set.Empty() {
		var ri cryptobyte.String
		var tag cbasn1.Tag
		if !set.ReadAnyASN1(&ri, &tag) {
			return nil, errors.New("cms: malformed RecipientInfo")
		}
		if kind, ok := otherRecipientKinds[tag]; ok {
			infos = append(infos, recipientInfo{id: RecipientID{Other: kind}})
			continue
		}
		if tag != cbasn1.SEQUENCE {
			return nil, fmt.Errorf("cms: RecipientInfo has unknown tag 0x%02x", uint8(tag))
		}
		info, err := parseKeyTransRecipientInfo(ri)
		if err != nil {
			return nil, err
		}
		infos = append(infos, info)
	}
	if len(infos) == 0 {
		return nil, errors.New("cms: the message has no recipients")
	}
	return infos, nil
}

func parseKeyTransRecipientInfo(ri cryptobyte.String) (recipientInfo, error) {
	var info recipientInfo
	bad := func(what string) (recipientInfo, error) {
		return recipientInfo{}, fmt.Errorf("cms: malformed KeyTransRecipientInfo: %s", what)
	}
	var version int
	if !ri.ReadASN1Integer(&version) {
		return bad("version")
	}
	switch {
	case ri.PeekASN1Tag(cbasn1.SEQUENCE):
		var ias cryptobyte.String
		var name cryptobyte.String
		serial := new(big.Int)
		if !ri.ReadASN1(&ias, cbasn1.SEQUENCE) || !ias.ReadASN1Element(&name, cbasn1.SEQUENCE) ||
			!ias.ReadASN1Integer(serial) || !ias.Empty() {
			return bad("issuerAndSerialNumber")
		}
		info.rawIssuer = name
		info.id.Issuer = nameString(name)
		info.id.SerialNumber = serial
	case ri.PeekASN1Tag(cbasn1.Tag(0).ContextSpecific()):
		var ski []byte
		if !ri.ReadASN1Bytes(&ski, cbasn1.Tag(0).ContextSpecific()) {
			return bad("subjectKeyIdentifier")
		}
		if ski == nil {
			ski = []byte{}
		}
		info.id.SubjectKeyID = ski
	default:
		return bad("recipient identifier")
	}
	var alg cryptobyte.String
	if !ri.ReadASN1Element(&alg, cbasn1.SEQUENCE) {
		return bad("keyEncryptionAlgorithm")
	}
	info.algorithm = alg
	if !ri.ReadASN1Bytes(&info.encryptedKey, cbasn1.OCTET_STRING) || !ri.Empty() {
		return bad("encryptedKey")
	}
	return info, nil
}

// matches reports whether the RecipientInfo is for cert.
func (ri *recipientInfo) matches(cert *x509.Certificate) bool {
	if cert == nil || ri.id.Other != "" {
		return false
	}
	if ri.id.SubjectKeyID != nil {
		ski := cert.SubjectKeyId
		if len(ski) == 0 {
			ski = computedKeyID(cert)
		}
		return len(ski) > 0 && bytes.Equal(ri.id.SubjectKeyID, ski)
	}
	if ri.id.SerialNumber == nil || cert.SerialNumber == nil || ri.id.SerialNumber.Cmp(cert.SerialNumber) != 0 {
		return false
	}
	if bytes.Equal(ri.rawIssuer, cert.RawIssuer) {
		return true
	}
	// QUIRK: some products re-encode the issuer name (PrintableString for UTF8String, other
	// spacing) instead of copying it from the certificate; compare the names' text.
	return strings.EqualFold(ri.id.Issuer, nameString(cert.RawIssuer))
}

// computedKeyID is the RFC 5280 §4.2.1.2 method (1) key identifier: the SHA-1 of the
// subjectPublicKey bits. Senders use it for certificates that carry no SKI extension.
func computedKeyID(cert *x509.Certificate) []byte {
	s := cryptobyte.String(cert.RawSubjectPublicKeyInfo)
	var spki cryptobyte.String
	var bits asn1.BitString
	if !s.ReadASN1(&spki, cbasn1.SEQUENCE) || !spki.SkipASN1(cbasn1.SEQUENCE) || !spki.ReadASN1BitString(&bits) {
		return nil
	}
	sum := sha1.Sum(bits.Bytes)
	return sum[:]
}

// marshalKeyTransRecipientInfo builds a version 0 KeyTransRecipientInfo naming cert by
// issuer and serial number, the form every product reads.
func marshalKeyTransRecipientInfo(b *cryptobyte.Builder, cert *x509.Certificate, algorithm, encryptedKey []byte) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(0)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddBytes(cert.RawIssuer)
			b.AddASN1BigInt(cert.SerialNumber)
		})
		b.AddBytes(algorithm)
		b.AddASN1OctetString(encryptedKey)
	})
}
