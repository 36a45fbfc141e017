package cms

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// SignedData (RFC 5652 §5), reading and verifying side.

// MaxSignedSize is the largest encoded SignedData ParseSignedData accepts. A detached
// signature is a few kilobytes whatever the size of its content; the bound matters for
// signatures that encapsulate their content, which is held in memory.
const MaxSignedSize = 64 << 20

// SignedData is a parsed SignedData.
type SignedData struct {
	// Certificates are the certificates embedded in the message. Ones that crypto/x509
	// cannot parse, and attribute certificates, are skipped.
	Certificates []*x509.Certificate
	// Content is the encapsulated content; nil when detached.
	Content []byte
	// Detached reports that the message carries no content: it signs content sent
	// alongside, as in multipart/signed.
	Detached bool

	contentType asn1.ObjectIdentifier // eContentType
	signers     []signerInfo
}

// signerInfo is a parsed SignerInfo.
type signerInfo struct {
	// The signer identifier: issuer and serial number (version 1) or subject key
	// identifier (version 3).
	issuer []byte // DER Name
	serial *big.Int
	ski    []byte

	hash      crypto.Hash
	pss       *pssParams // nil for PKCS#1 v1.5
	signature []byte
	algErr    error // an unsupported digest or signature algorithm, reported by Verify

	// Signed attributes: the contents of the SET as received, and the values verification
	// needs. hasAttrs is false for a SignerInfo that signs the content digest directly.
	hasAttrs      bool
	signedAttrs   []byte
	contentType   asn1.ObjectIdentifier
	messageDigest []byte
	signingTime   time.Time
}

// Signer describes a verified signature.
type Signer struct {
	// Certificate is the trusted certificate whose key verified the signature.
	Certificate *x509.Certificate
	// Hash is the digest algorithm, which AS2 also uses for the MIC (RFC 4130 §7.3.1).
	Hash crypto.Hash
	// PSS reports an RSASSA-PSS signature rather than PKCS#1 v1.5.
	PSS bool
	// SigningTime is the signing-time attribute; zero when absent or unreadable.
	SigningTime time.Time
	// Digest is the digest of the content under Hash, which the signature covers: the MIC
	// of an AS2 message signed with that digest, without hashing the content again.
	Digest []byte
}

// Reasons a VerifyError gives.
const (
	ReasonNoSigner             = "no signer"
	ReasonSignatureInvalid     = "signature invalid"
	ReasonDigestMismatch       = "message digest mismatch"
	ReasonUntrusted            = "signer certificate not trusted"
	ReasonMissingAttribute     = "required signed attribute missing"
	ReasonContentTypeMismatch  = "content type mismatch"
	ReasonUnsupportedAlgorithm = "unsupported algorithm"
)

// VerifyError is returned when a signature does not verify.
type VerifyError struct {
	// Reason is one of the Reason constants.
	Reason string
	// Err gives detail; for ReasonUntrusted it is an *UntrustedSignerError, for
	// ReasonUnsupportedAlgorithm an *UnsupportedAlgorithmError.
	Err error
}

func (e *VerifyError) Error() string {
	if e.Err != nil {
		return "cms: signature verification failed: " + e.Reason + ": " + e.Err.Error()
	}
	return "cms: signature verification failed: " + e.Reason
}

func (e *VerifyError) Unwrap() error { return e.Err }

// UntrustedSignerError names the certificate a message claims to be signed with when no
// trusted certificate verifies it, so that an operator can see which certificate the
// partner used (typically a renewed one not yet exchanged).
type UntrustedSignerError struct {
	// Certificate is the signer's certificate as embedded in the message; nil when the
	// message carries none.
	Certificate *x509.Certificate
	// Issuer and SerialNumber identify the signer's certificate when the message names it
	// by issuer and serial number.
	Issuer       string
	SerialNumber *big.Int
	// SubjectKeyID identifies the signer's certificate when the message names it by
	// subject key identifier.
	SubjectKeyID []byte
}

func (e *UntrustedSignerError) Error() string {
	var b strings.Builder
	b.WriteString("cms: the message is signed with ")
	if c := e.Certificate; c != nil {
		fmt.Fprintf(&b, "certificate subject %q, issuer %q, serial %s, valid %s to %s",
			c.Subject.String(), c.Issuer.String(), serialHex(c.SerialNumber),
			c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
	} else if e.SerialNumber != nil {
		fmt.Fprintf(&b, "the certificate with issuer %q and serial %s (not included in the message)",
			e.Issuer, serialHex(e.SerialNumber))
	} else {
		fmt.Fprintf(&b, "the certificate with subject key identifier %X (not included in the message)", e.SubjectKeyID)
	}
	b.WriteString(", which is not among the trusted certificates")
	return b.String()
}

// serialHex spells a serial number as OpenSSL and certificate viewers do.
func serialHex(n *big.Int) string {
	if n == nil {
		return "?"
	}
	s := fmt.Sprintf("%X", n)
	if len(s)%2 == 1 && n.Sign() >= 0 {
		s = "0" + s
	}
	return s
}

// ParseSignedData parses a ContentInfo holding a SignedData, in BER or DER. Inputs larger
// than MaxSignedSize fail with ErrTooLarge. Offsets in a *SyntaxError count in the DER form
// of the input, which for BER input differs from the bytes received.
//
// When the input is DER, the result shares memory with it (Content and the certificates
// point into ber): the caller must not modify ber while it uses the result.
func ParseSignedData(ber []byte) (*SignedData, error) {
	if len(ber) > MaxSignedSize {
		return nil, ErrTooLarge
	}
	// Most senders write DER; normalising it would only copy the message, content included.
	der := ber
	if used, ok := derShaped(ber, 0); !ok || used != len(ber) {
		var err error
		if der, err = normalizeAll(ber); err != nil {
			return nil, err
		}
	}
	oid, body, err := parseContentInfo(der)
	if err != nil {
		return nil, err
	}
	if !oid.Equal(oidSignedData) {
		t := contentTypeOf(oid)
		if t == TypeUnknown {
			return nil, fmt.Errorf("cms: expected signed-data, found content type %s", oid)
		}
		return nil, fmt.Errorf("cms: expected signed-data, found %s", t)
	}
	p := sdParser{der: der}
	return p.signedData(body)
}

// derShaped reports whether in starts with an element that cryptobyte can read as it is:
// definite, minimal lengths and no constructed strings, down to every nested element. It
// returns the element's encoded length. It accepts less than normalize rejects, never more:
// anything it refuses goes through normalize.
func derShaped(in []byte, depth int) (int, bool) {
	if depth > MaxDepth {
		return 0, false
	}
	h, err := parseHeader(in, 0)
	if err != nil || h.length < 0 || h.length > int64(len(in)-h.headerBytes) {
		return 0, false
	}
	if h.headerBytes > 2 && (h.length < 0x80 || in[2] == 0) {
		return 0, false // a long-form length DER would write shorter
	}
	end := h.headerBytes + int(h.length)
	if !h.constructed() {
		return end, true
	}
	if h.tag&0xc0 == 0 && isStringTag(h.tag) {
		return 0, false
	}
	for pos := h.headerBytes; pos < end; {
		n, ok := derShaped(in[pos:end], depth+1)
		if !ok {
			return 0, false
		}
		pos += n
	}
	return end, true
}

// sdParser reads a SignedData held in memory in DER.
type sdParser struct{ der []byte }

// errAt makes a SyntaxError at the position of rest, which must be a sub-slice of p.der:
// sub-slices share the capacity up to the end of the buffer, so their offset follows.
func (p *sdParser) errAt(rest cryptobyte.String, msg string) error {
	return &SyntaxError{int64(cap(p.der) - cap(rest)), msg}
}

// locate gives an offset to a SyntaxError from a helper that does not know its position.
func (p *sdParser) locate(err error, at cryptobyte.String) error {
	var se *SyntaxError
	if errors.As(err, &se) && se.Offset == 0 {
		return &SyntaxError{int64(cap(p.der) - cap(at)), se.Msg}
	}
	return err
}

func (p *sdParser) signedData(body cryptobyte.String) (*SignedData, error) {
	var s cryptobyte.String
	if !body.ReadASN1(&s, cbasn1.SEQUENCE) || !body.Empty() {
		return nil, p.errAt(body, "SignedData is not a single SEQUENCE")
	}
	var version int64
	if !s.ReadASN1Integer(&version) {
		return nil, p.errAt(s, "malformed SignedData version")
	}
	// digestAlgorithms only announces the algorithms to a one-pass reader; every
	// SignerInfo names its own, and those are what count.
	if !s.SkipASN1(cbasn1.SET) {
		return nil, p.errAt(s, "malformed SignedData digestAlgorithms")
	}

	sd := &SignedData{}
	var eci, explicit cryptobyte.String
	var present bool
	if !s.ReadASN1(&eci, cbasn1.SEQUENCE) || !eci.ReadASN1ObjectIdentifier(&sd.contentType) {
		return nil, p.errAt(s, "malformed EncapsulatedContentInfo")
	}
	if !eci.ReadOptionalASN1(&explicit, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) || !eci.Empty() {
		return nil, p.errAt(eci, "malformed eContent")
	}
	if present {
		var octets cryptobyte.String
		if !explicit.ReadASN1(&octets, cbasn1.OCTET_STRING) || !explicit.Empty() {
			return nil, p.errAt(explicit, "eContent is not an OCTET STRING")
		}
		// Clipped so that appending to Content cannot overwrite the rest of the message.
		sd.Content = slices.Clip([]byte(octets))
	} else {
		sd.Detached = true
	}

	var certs cryptobyte.String
	if !s.ReadOptionalASN1(&certs, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return nil, p.errAt(s, "malformed certificates")
	}
	for !certs.Empty() {
		var c cryptobyte.String
		var tag cbasn1.Tag
		if !certs.ReadAnyASN1Element(&c, &tag) {
			return nil, p.errAt(certs, "malformed CertificateSet")
		}
		if tag != cbasn1.SEQUENCE {
			continue // an attribute certificate or another format: not a signer's
		}
		// A certificate crypto/x509 rejects (a negative serial, a malformed extension) is
		// skipped rather than failing the message: verification relies on the trusted
		// certificates, and the embedded ones only serve to describe an unknown signer.
		if cert, err := x509.ParseCertificate(c); err == nil {
			sd.Certificates = append(sd.Certificates, cert)
		}
	}
	if !s.SkipOptionalASN1(cbasn1.Tag(1).Constructed().ContextSpecific()) {
		return nil, p.errAt(s, "malformed crls")
	}

	var infos cryptobyte.String
	if !s.ReadASN1(&infos, cbasn1.SET) {
		return nil, p.errAt(s, "malformed signerInfos")
	}
	if !s.Empty() {
		return nil, p.errAt(s, "trailing data in SignedData")
	}
	for !infos.Empty() {
		var raw cryptobyte.String
		if !infos.ReadASN1(&raw, cbasn1.SEQUENCE) {
			return nil, p.errAt(infos, "SignerInfo is not a SEQUENCE")
		}
		si, err := p.signerInfo(raw)
		if err != nil {
			return nil, err
		}
		sd.signers = append(sd.signers, si)
	}
	return sd, nil
}

func (p *sdParser) signerInfo(s cryptobyte.String) (signerInfo, error) {
	var si signerInfo
	var version int64
	if !s.ReadASN1Integer(&version) {
		return si, p.errAt(s, "malformed SignerInfo version")
	}
	switch {
	case s.PeekASN1Tag(cbasn1.SEQUENCE):
		var ias, issuer cryptobyte.String
		si.serial = new(big.Int)
		if !s.ReadASN1(&ias, cbasn1.SEQUENCE) || !ias.ReadASN1Element(&issuer, cbasn1.SEQUENCE) ||
			!ias.ReadASN1Integer(si.serial) || !ias.Empty() {
			return si, p.errAt(s, "malformed IssuerAndSerialNumber")
		}
		si.issuer = issuer
	case s.PeekASN1Tag(cbasn1.Tag(0).ContextSpecific()):
		var ski cryptobyte.String
		if !s.ReadASN1(&ski, cbasn1.Tag(0).ContextSpecific()) || len(ski) == 0 {
			return si, p.errAt(s, "malformed SubjectKeyIdentifier")
		}
		si.ski = ski
	default:
		return si, p.errAt(s, "unknown SignerIdentifier choice")
	}

	at := s
	h, err := readDigestAlgorithm(&s)
	var unsupported *UnsupportedAlgorithmError
	switch {
	case errors.As(err, &unsupported):
		si.algErr = err
	case err != nil:
		return si, p.locate(err, at)
	}
	si.hash = h

	var attrs cryptobyte.String
	if !s.ReadOptionalASN1(&attrs, &si.hasAttrs, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return si, p.errAt(s, "malformed signedAttrs")
	}
	if si.hasAttrs {
		si.signedAttrs = attrs
		if err := p.signedAttributes(attrs, &si); err != nil {
			return si, err
		}
	}

	at = s
	oid, params, err := readAlgorithmIdentifier(&s)
	if err != nil {
		return si, p.locate(err, at)
	}
	switch {
	case oid.Equal(oidRSAEncryption), oid.Equal(oidSHA1WithRSA), oid.Equal(oidSHA256WithRSA),
		oid.Equal(oidSHA384WithRSA), oid.Equal(oidSHA512WithRSA):
		// QUIRK: the digest inside the PKCS#1 v1.5 signature is the one digestAlgorithm
		// names; the hash in a sha*WithRSAEncryption OID is not checked against it, as
		// OpenSSL does not, since some writers label every signature sha1WithRSA.
	case oid.Equal(oidRSASSAPSS):
		pss, err := parsePSSParams(params)
		switch {
		case errors.As(err, &unsupported):
			si.algErr = err
		case err != nil:
			return si, p.locate(err, at)
		case si.algErr == nil && pss.hash != si.hash:
			si.algErr = &UnsupportedAlgorithmError{What: "signature",
				Name: fmt.Sprintf("RSASSA-PSS over %s with digest algorithm %s", pss.hash, si.hash)}
		}
		si.pss = &pss
	default:
		if si.algErr == nil {
			si.algErr = &UnsupportedAlgorithmError{What: "signature", OID: oid}
		}
	}

	var sig cryptobyte.String
	if !s.ReadASN1(&sig, cbasn1.OCTET_STRING) {
		return si, p.errAt(s, "malformed SignerInfo signature")
	}
	si.signature = sig
	if !s.SkipOptionalASN1(cbasn1.Tag(1).Constructed().ContextSpecific()) || !s.Empty() {
		return si, p.errAt(s, "trailing data in SignerInfo")
	}
	return si, nil
}

// signedAttributes reads the attributes verification needs. RFC 5652 §11 allows each of
// them once, with one value; a second one could make two readers disagree on what was
// signed, so it is an error.
func (p *sdParser) signedAttributes(attrs cryptobyte.String, si *signerInfo) error {
	var seenTime bool
	for !attrs.Empty() {
		var attr, values cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !attrs.ReadASN1(&attr, cbasn1.SEQUENCE) || !attr.ReadASN1ObjectIdentifier(&oid) ||
			!attr.ReadASN1(&values, cbasn1.SET) || !attr.Empty() {
			return p.errAt(attrs, "malformed signed attribute")
		}
		switch {
		case oid.Equal(oidAttrContentType):
			if si.contentType != nil {
				return p.errAt(values, "content-type attribute repeated")
			}
			if !values.ReadASN1ObjectIdentifier(&si.contentType) || !values.Empty() {
				return p.errAt(values, "content-type attribute must hold one OBJECT IDENTIFIER")
			}
		case oid.Equal(oidAttrMessageDigest):
			if si.messageDigest != nil {
				return p.errAt(values, "message-digest attribute repeated")
			}
			var md cryptobyte.String
			if !values.ReadASN1(&md, cbasn1.OCTET_STRING) || !values.Empty() {
				return p.errAt(values, "message-digest attribute must hold one OCTET STRING")
			}
			si.messageDigest = md
		case oid.Equal(oidAttrSigningTime):
			if seenTime {
				return p.errAt(values, "signing-time attribute repeated")
			}
			seenTime = true
			// The signing time is informational: one that cannot be read is left zero
			// rather than failing a signature that otherwise verifies.
			var t time.Time
			if values.PeekASN1Tag(cbasn1.UTCTime) {
				values.ReadASN1UTCTime(&t)
			} else {
				values.ReadASN1GeneralizedTime(&t)
			}
			si.signingTime = t
		}
	}
	return nil
}

// readAlgorithmIdentifier reads AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT
// IDENTIFIER, parameters ANY OPTIONAL }, returning the parameters as a whole element,
// empty when absent.
func readAlgorithmIdentifier(s *cryptobyte.String) (asn1.ObjectIdentifier, cryptobyte.String, error) {
	var seq, params cryptobyte.String
	var oid asn1.ObjectIdentifier
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) || !seq.ReadASN1ObjectIdentifier(&oid) {
		return nil, nil, &SyntaxError{0, "malformed AlgorithmIdentifier"}
	}
	if !seq.Empty() {
		var tag cbasn1.Tag
		if !seq.ReadAnyASN1Element(&params, &tag) || !seq.Empty() {
			return nil, nil, &SyntaxError{0, "malformed AlgorithmIdentifier parameters"}
		}
	}
	return oid, params, nil
}

// readDigestAlgorithm reads a digest AlgorithmIdentifier. RFC 5754 §2 writes SHA-2
// identifiers without parameters and RFC 3370 §2.1 SHA-1 with either form; both are
// accepted for every digest.
func readDigestAlgorithm(s *cryptobyte.String) (crypto.Hash, error) {
	oid, params, err := readAlgorithmIdentifier(s)
	if err != nil {
		return 0, err
	}
	if len(params) != 0 && !bytes.Equal(params, []byte{tagNull, 0}) {
		return 0, &SyntaxError{0, "digest algorithm parameters are neither absent nor NULL"}
	}
	return hashForOID(oid)
}

// Verify checks the signature over content: the detached content, read to its end and
// hashed as it is read, or, when content is nil, the encapsulated content. trusted lists
// the certificates allowed to have signed (the partner's); it must not be empty. The
// certificates are trusted as given: no chain or validity period is checked, as AS2
// partners exchange their certificates directly.
//
// A signature that does not verify gives a *VerifyError; a failure to read content gives
// the read error, wrapped.
func (sd *SignedData) Verify(content io.Reader, trusted []*x509.Certificate) (*Signer, error) {
	if len(trusted) == 0 {
		return nil, errors.New("cms: no trusted certificates to verify the signature with")
	}
	if len(sd.signers) == 0 {
		return nil, &VerifyError{Reason: ReasonNoSigner}
	}
	digests, err := sd.digestContent(content)
	if err != nil {
		return nil, err
	}
	var firstErr error
	for i := range sd.signers {
		s, err := sd.verifySigner(&sd.signers[i], digests, trusted)
		if err == nil {
			return s, nil
		}
		// With several signers, an error about a signer we recognised says more than one
		// about a signer we do not know or cannot check.
		var ve *VerifyError
		if firstErr == nil || errors.As(firstErr, &ve) &&
			(ve.Reason == ReasonUntrusted || ve.Reason == ReasonUnsupportedAlgorithm) {
			firstErr = err
		}
	}
	return nil, firstErr
}

// DigestAlgorithms returns the digest algorithms Verify will hash the content with: those of
// the signers whose algorithms are supported, each once, in the order the signers come. A
// caller that needs the content's digest under one of them (AS2's MIC) finds it in
// Signer.Digest instead of hashing the content a second time.
func (sd *SignedData) DigestAlgorithms() []crypto.Hash {
	var algs []crypto.Hash
	for _, si := range sd.signers {
		if si.algErr == nil && !slices.Contains(algs, si.hash) {
			algs = append(algs, si.hash)
		}
	}
	return algs
}

// contentDigest is the digest of the content under one algorithm.
type contentDigest struct {
	hash crypto.Hash
	sum  []byte
}

// digestContent hashes the content once under every digest algorithm the signers use.
func (sd *SignedData) digestContent(content io.Reader) ([]contentDigest, error) {
	switch {
	case content == nil && sd.Detached:
		return nil, errors.New("cms: the signature is detached: the signed content must be given")
	case content != nil && !sd.Detached:
		return nil, errors.New("cms: the signature encapsulates its content: verify it with a nil content reader")
	}
	var hashes []hash.Hash
	var digests []contentDigest
	for _, alg := range sd.DigestAlgorithms() {
		digests = append(digests, contentDigest{hash: alg})
		hashes = append(hashes, alg.New())
	}
	if len(hashes) == 0 {
		return nil, nil
	}
	if content == nil {
		for _, h := range hashes {
			h.Write(sd.Content)
		}
	} else {
		w := io.Writer(hashes[0])
		if len(hashes) > 1 {
			ws := make([]io.Writer, len(hashes))
			for i, h := range hashes {
				ws[i] = h
			}
			w = io.MultiWriter(ws...)
		}
		buf := copyBuffers.Get().(*[]byte)
		_, err := io.CopyBuffer(w, content, *buf)
		copyBuffers.Put(buf)
		if err != nil {
			return nil, fmt.Errorf("cms: reading the signed content: %w", err)
		}
	}
	for i, h := range hashes {
		digests[i].sum = h.Sum(nil)
	}
	return digests, nil
}

// copyBuffers are the buffers detached content is hashed through: one per Verify call would
// be 32 KiB allocated to verify a 1 KB message.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// verifySigner checks one SignerInfo against the trusted certificates.
func (sd *SignedData) verifySigner(si *signerInfo, digests []contentDigest, trusted []*x509.Certificate) (*Signer, error) {
	if si.algErr != nil {
		return nil, &VerifyError{Reason: ReasonUnsupportedAlgorithm, Err: si.algErr}
	}
	var digest []byte
	for _, d := range digests {
		if d.hash == si.hash {
			digest = d.sum
		}
	}
	signed := digest
	if si.hasAttrs {
		// The signature covers the attributes under the SET OF tag (RFC 5652 §5.4).
		h := si.hash.New()
		h.Write(appendHeader(make([]byte, 0, 8), tagSet, int64(len(si.signedAttrs))))
		h.Write(si.signedAttrs)
		signed = h.Sum(nil)
	}

	var firstErr error
	for _, c := range trusted {
		if c == nil || !si.identifies(c) {
			continue
		}
		err := si.check(c, sd.contentType, digest, signed)
		if err == nil {
			return si.result(c, digest), nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}

	// QUIRK: the signer identifier names no trusted certificate, yet products sign with a
	// trusted key under an identifier we do not match: a certificate re-issued over the same
	// key, an issuer name re-encoded (PrintableString for UTF8String), a serial number
	// written as unsigned. Any trusted key that verifies the signature is accepted: the
	// signature, not the identifier, proves who signed.
	for _, c := range trusted {
		if c == nil {
			continue
		}
		err := si.check(c, sd.contentType, digest, signed)
		if err == nil {
			return si.result(c, digest), nil
		}
		var ve *VerifyError
		if errors.As(err, &ve) && ve.Reason != ReasonSignatureInvalid && ve.Reason != ReasonUnsupportedAlgorithm {
			return nil, err // this key made the signature, but the attributes are wrong
		}
	}

	detail := &UntrustedSignerError{SerialNumber: si.serial, SubjectKeyID: si.ski}
	if si.issuer != nil {
		detail.Issuer = nameString(si.issuer)
	}
	for _, c := range sd.Certificates {
		if si.identifies(c) {
			detail.Certificate = c
			break
		}
	}
	return nil, &VerifyError{Reason: ReasonUntrusted, Err: detail}
}

// identifies reports whether the signer identifier names cert.
func (si *signerInfo) identifies(cert *x509.Certificate) bool {
	if si.ski != nil {
		return bytes.Equal(si.ski, cert.SubjectKeyId)
	}
	return cert.SerialNumber != nil && si.serial.Cmp(cert.SerialNumber) == 0 && bytes.Equal(si.issuer, cert.RawIssuer)
}

// check verifies the signature with cert's key, then the signed attributes. digest is the
// content digest and signed the digest the signature covers.
func (si *signerInfo) check(cert *x509.Certificate, eContentType asn1.ObjectIdentifier, digest, signed []byte) error {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return &VerifyError{Reason: ReasonUnsupportedAlgorithm,
			Err: &UnsupportedAlgorithmError{What: "signature", Name: keyAlgorithmName(cert.PublicKey) + " key"}}
	}
	var err error
	if si.pss != nil {
		err = rsa.VerifyPSS(pub, si.hash, signed, si.signature, si.pss.options())
	} else {
		err = rsa.VerifyPKCS1v15(pub, si.hash, signed, si.signature)
	}
	if err != nil {
		return &VerifyError{Reason: ReasonSignatureInvalid, Err: err}
	}
	if !si.hasAttrs {
		return nil
	}
	switch {
	case si.contentType == nil:
		return &VerifyError{Reason: ReasonMissingAttribute, Err: errors.New("cms: no content-type attribute")}
	case !si.contentType.Equal(eContentType):
		return &VerifyError{Reason: ReasonContentTypeMismatch,
			Err: fmt.Errorf("cms: the content-type attribute says %s, the content is %s", si.contentType, eContentType)}
	case si.messageDigest == nil:
		return &VerifyError{Reason: ReasonMissingAttribute, Err: errors.New("cms: no message-digest attribute")}
	case !bytes.Equal(si.messageDigest, digest):
		return &VerifyError{Reason: ReasonDigestMismatch}
	}
	return nil
}

func (si *signerInfo) result(cert *x509.Certificate, digest []byte) *Signer {
	return &Signer{Certificate: cert, Hash: si.hash, PSS: si.pss != nil, SigningTime: si.signingTime, Digest: digest}
}

// nameString spells a DER Name as crypto/x509 does, or in hex when it does not parse.
func nameString(der []byte) string {
	var rdns pkix.RDNSequence
	if rest, err := asn1.Unmarshal(der, &rdns); err != nil || len(rest) > 0 {
		return fmt.Sprintf("%X", der)
	}
	var n pkix.Name
	n.FillFromRDNSequence(&rdns)
	return n.String()
}
