package cms

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1" // the digests the package signs and verifies with
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// SignedData (RFC 5652 §5), writing side.
//
//	SignedData ::= SEQUENCE {
//	    version CMSVersion,
//	    digestAlgorithms SET OF DigestAlgorithmIdentifier,
//	    encapContentInfo EncapsulatedContentInfo,
//	    certificates [0] IMPLICIT CertificateSet OPTIONAL,
//	    crls [1] IMPLICIT RevocationInfoChoices OPTIONAL,
//	    signerInfos SET OF SignerInfo }
//
//	SignerInfo ::= SEQUENCE {
//	    version CMSVersion,
//	    sid SignerIdentifier,
//	    digestAlgorithm DigestAlgorithmIdentifier,
//	    signedAttrs [0] IMPLICIT SignedAttributes OPTIONAL,
//	    signatureAlgorithm SignatureAlgorithmIdentifier,
//	    signature SignatureValue,
//	    unsignedAttrs [1] IMPLICIT UnsignedAttributes OPTIONAL }

// SignOptions adjust signing. A nil *SignOptions means SHA-256, PKCS#1 v1.5, certificate
// embedded, signing time now.
type SignOptions struct {
	// Hash is the digest algorithm: crypto.SHA1, SHA256, SHA384 or SHA512; zero means SHA256.
	Hash crypto.Hash
	// PSS selects RSASSA-PSS (RFC 4056: explicit parameters, MGF1 with the same hash, salt
	// as long as the hash) instead of PKCS#1 v1.5.
	PSS bool
	// NoCertificate leaves the signer certificate out of the message, as some products do;
	// the receiver must then know it already.
	NoCertificate bool
	// Certificates are further certificates to embed, such as the signer's chain.
	Certificates []*x509.Certificate
	// SigningTime is written in the signing-time attribute; zero means time.Now().
	SigningTime time.Time
	// Rand is passed to the key's Sign method, which draws PSS salts from it; nil means
	// crypto/rand.Reader.
	Rand io.Reader
	// SubjectKeyID identifies the signer by its certificate's subject key identifier
	// (SignerInfo version 3) instead of by issuer and serial number. The certificate must
	// carry the extension.
	SubjectKeyID bool
}

// SignDetached reads content to its end, hashing as it reads (constant memory), and returns
// the DER of a ContentInfo holding a SignedData with no encapsulated content, as
// multipart/signed (RFC 8551 §3.5.3) carries it.
func SignDetached(content io.Reader, cert *x509.Certificate, key crypto.Signer, opts *SignOptions) ([]byte, error) {
	p, err := newSignParams(cert, key, opts)
	if err != nil {
		return nil, err
	}
	h := p.hash.New()
	if _, err := io.Copy(h, content); err != nil {
		return nil, fmt.Errorf("cms: reading the content to sign: %w", err)
	}
	return p.sign(h.Sum(make([]byte, 0, 64)), nil, false)
}

// SignDetachedDigest is SignDetached for content the caller has already hashed with
// opts.Hash (SHA-256 when opts is nil or its Hash is zero). AS2 needs that same digest as
// its MIC (RFC 4130 §7.3.1), and hashing once saves a pass over a large payload.
func SignDetachedDigest(digest []byte, cert *x509.Certificate, key crypto.Signer, opts *SignOptions) ([]byte, error) {
	p, err := newSignParams(cert, key, opts)
	if err != nil {
		return nil, err
	}
	if len(digest) != p.hash.Size() {
		return nil, fmt.Errorf("cms: the content digest is %d bytes, a %v digest is %d", len(digest), p.hash, p.hash.Size())
	}
	return p.sign(digest, nil, false)
}

// Sign returns the DER of a ContentInfo holding a SignedData that encapsulates content
// (eContentType id-data).
func Sign(content []byte, cert *x509.Certificate, key crypto.Signer, opts *SignOptions) ([]byte, error) {
	p, err := newSignParams(cert, key, opts)
	if err != nil {
		return nil, err
	}
	h := p.hash.New()
	h.Write(content)
	return p.sign(h.Sum(make([]byte, 0, 64)), content, true)
}

// signParams are validated signing inputs.
type signParams struct {
	cert        *x509.Certificate
	key         crypto.Signer
	hash        crypto.Hash
	hashOID     asn1.ObjectIdentifier
	pss         bool
	ski         bool
	embed       [][]byte // DER certificates to embed, in order
	signingTime time.Time
	rand        io.Reader
}

func newSignParams(cert *x509.Certificate, key crypto.Signer, opts *SignOptions) (*signParams, error) {
	if cert == nil {
		return nil, errors.New("cms: no signer certificate")
	}
	if key == nil {
		return nil, errors.New("cms: no signing key")
	}
	if opts == nil {
		opts = &SignOptions{}
	}
	pub, ok := key.Public().(*rsa.PublicKey)
	if !ok {
		return nil, &UnsupportedAlgorithmError{What: "signature", Name: keyAlgorithmName(key.Public()) + " key"}
	}
	if !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("cms: the signing key does not belong to certificate %q", cert.Subject)
	}
	p := &signParams{
		cert:        cert,
		key:         key,
		hash:        opts.Hash,
		pss:         opts.PSS,
		ski:         opts.SubjectKeyID,
		signingTime: opts.SigningTime,
		rand:        opts.Rand,
	}
	if p.hash == 0 {
		p.hash = crypto.SHA256
	}
	var err error
	if p.hashOID, err = oidForHash(p.hash); err != nil {
		return nil, err
	}
	if !p.hash.Available() {
		return nil, &UnsupportedAlgorithmError{What: "digest", Name: p.hash.String()}
	}
	if p.ski && len(cert.SubjectKeyId) == 0 {
		return nil, fmt.Errorf("cms: certificate %q has no subject key identifier to name the signer by", cert.Subject)
	}
	if p.signingTime.IsZero() {
		p.signingTime = time.Now()
	}
	if p.rand == nil {
		p.rand = rand.Reader
	}
	if !opts.NoCertificate {
		p.embed = append(p.embed, cert.Raw)
	}
	for _, c := range opts.Certificates {
		if c != nil && !bytes.Equal(c.Raw, cert.Raw) {
			p.embed = append(p.embed, c.Raw)
		}
	}
	return p, nil
}

func keyAlgorithmName(pub crypto.PublicKey) string {
	switch pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// sign builds the SignedData for a content digest; content is embedded when encapsulate is set.
func (p *signParams) sign(digest, content []byte, encapsulate bool) ([]byte, error) {
	si, err := p.signerInfo(digest)
	if err != nil {
		return nil, err
	}
	return p.assemble(si, content, encapsulate), nil
}

// signerInfo builds and signs the SignerInfo.
func (p *signParams) signerInfo(digest []byte) ([]byte, error) {
	attrs, err := p.signedAttributes(digest)
	if err != nil {
		return nil, err
	}
	// The signature covers the attributes with the SET OF tag (RFC 5652 §5.4), although
	// they travel under [0] IMPLICIT.
	h := p.hash.New()
	h.Write(appendHeader(make([]byte, 0, 8), tagSet, int64(len(attrs))))
	h.Write(attrs)
	var signerOpts crypto.SignerOpts = p.hash
	if p.pss {
		signerOpts = &rsa.PSSOptions{SaltLength: p.hash.Size(), Hash: p.hash}
	}
	sig, err := p.key.Sign(p.rand, h.Sum(make([]byte, 0, 64)), signerOpts)
	if err != nil {
		return nil, fmt.Errorf("cms: signing: %w", err)
	}

	b := cryptobyte.NewBuilder(make([]byte, 0, 256+len(attrs)+len(sig)+len(p.cert.RawIssuer)))
	var algErr error
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if p.ski {
			b.AddASN1Int64(3)
			b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddBytes(p.cert.SubjectKeyId)
			})
		} else {
			b.AddASN1Int64(1)
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddBytes(p.cert.RawIssuer)
				b.AddASN1BigInt(p.cert.SerialNumber)
			})
		}
		addAlgorithm(b, p.hashOID, false)
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddBytes(attrs)
		})
		if p.pss {
			algErr = addPSSAlgorithm(b, p.hash)
		} else {
			// rsaEncryption rather than sha256WithRSAEncryption: OpenSSL writes it, and
			// every verifier we know accepts it, while some older ones reject the latter.
			addAlgorithm(b, oidRSAEncryption, true)
		}
		b.AddASN1OctetString(sig)
	})
	if algErr != nil {
		return nil, algErr
	}
	return b.Bytes()
}

// signedAttributes returns the contents of the SignedAttributes SET: content-type,
// signing-time and message-digest, in DER order.
func (p *signParams) signedAttributes(digest []byte) ([]byte, error) {
	t := p.signingTime.UTC()
	if t.Year() < 1 || t.Year() > 9999 {
		return nil, fmt.Errorf("cms: signing time %v cannot be encoded", p.signingTime)
	}
	attr := func(oid asn1.ObjectIdentifier, value func(*cryptobyte.Builder)) []byte {
		b := cryptobyte.NewBuilder(make([]byte, 0, 64))
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1(cbasn1.SET, value)
		})
		return b.BytesOrPanic() // only fixed, valid OIDs and byte strings go in
	}
	list := [3][]byte{
		attr(oidAttrContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidData) }),
		attr(oidAttrSigningTime, func(b *cryptobyte.Builder) {
			// RFC 5652 §11.3: UTCTime for 1950 through 2049, GeneralizedTime otherwise.
			if y := t.Year(); y >= 1950 && y < 2050 {
				b.AddASN1(cbasn1.UTCTime, func(b *cryptobyte.Builder) {
					b.AddBytes(t.AppendFormat(make([]byte, 0, 13), "060102150405Z"))
				})
			} else {
				b.AddASN1(cbasn1.GeneralizedTime, func(b *cryptobyte.Builder) {
					b.AddBytes(t.AppendFormat(make([]byte, 0, 15), "20060102150405Z"))
				})
			}
		}),
		attr(oidAttrMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(digest) }),
	}
	// DER sorts the elements of a SET OF by their encodings (X.690 §11.6).
	slices.SortFunc(list[:], bytes.Compare)
	return slices.Concat(list[:]...), nil
}

// addAlgorithm appends an AlgorithmIdentifier with absent or NULL parameters.
func addAlgorithm(b *cryptobyte.Builder, oid asn1.ObjectIdentifier, null bool) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if null {
			b.AddASN1NULL()
		}
	})
}

// assemble writes the ContentInfo around one SignerInfo. Lengths are computed first so that
// the content, which may be large, is copied once into an output of the exact size.
func (p *signParams) assemble(si, content []byte, encapsulate bool) []byte {
	tlv := func(n int) int { return int(headerLen(int64(n))) + n }

	var digestAlgs cryptobyte.Builder
	digestAlgs.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { addAlgorithm(b, p.hashOID, false) })
	digestAlgsDER := digestAlgs.BytesOrPanic() // a fixed, valid OID

	eciBody := len(derOIDData)
	if encapsulate {
		eciBody += tlv(tlv(len(content)))
	}
	certsBody := 0
	for _, c := range p.embed {
		certsBody += len(c)
	}
	sdBody := 3 + len(digestAlgsDER) + tlv(eciBody) + tlv(len(si))
	if len(p.embed) > 0 {
		sdBody += tlv(certsBody)
	}
	ciBody := len(derOIDSignedData) + tlv(tlv(sdBody))

	out := make([]byte, 0, tlv(ciBody))
	out = appendHeader(out, tagSequence, int64(ciBody))
	out = append(out, derOIDSignedData...)
	out = appendHeader(out, classContext|bitCompound|0, int64(tlv(sdBody)))
	out = appendHeader(out, tagSequence, int64(sdBody))
	// RFC 5652 §5.1: version 3 when a SignerInfo is version 3, else 1.
	version := byte(1)
	if p.ski {
		version = 3
	}
	out = append(out, tagInteger, 1, version)
	out = append(out, digestAlgsDER...)
	out = appendHeader(out, tagSequence, int64(eciBody))
	out = append(out, derOIDData...)
	if encapsulate {
		out = appendHeader(out, classContext|bitCompound|0, int64(tlv(len(content))))
		out = appendHeader(out, tagOctetString, int64(len(content)))
		out = append(out, content...)
	}
	if len(p.embed) > 0 {
		// The signer's certificate goes first: some receivers take the first one as the
		// signer's instead of matching the signer identifier.
		out = appendHeader(out, classContext|bitCompound|0, int64(certsBody))
		for _, c := range p.embed {
			out = append(out, c...)
		}
	}
	out = appendHeader(out, tagSet, int64(len(si)))
	return append(out, si...)
}

// DER encodings of the OIDs the writer emits on every message.
var (
	derOIDData       = mustMarshalOID(oidData)
	derOIDSignedData = mustMarshalOID(oidSignedData)
)

func mustMarshalOID(oid asn1.ObjectIdentifier) []byte {
	der, err := asn1.Marshal(oid)
	if err != nil {
		panic(err) // the package's own OIDs are valid; this runs at start-up
	}
	return der
}
