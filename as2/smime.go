package as2

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"mime"
	"time"

	"github.com/as2gate/as2gate/cms"
)

// signer is a signing identity with its algorithm choices.
type signer struct {
	alg  MICAlg
	pss  bool
	cert *x509.Certificate
	key  crypto.Signer
	now  func() time.Time
	rand io.Reader
}

// opener is a MIME entity that can be read any number of times: a *Spool, or an entity
// being packed.
type opener interface {
	Open() *io.SectionReader
}

// writeSigned writes to w the body of a multipart/signed (RFC 1847 §2.1, RFC 5751 §3.5.3)
// whose first part is the MIME entity signedPart, exactly as it is, and whose second part
// is a detached CMS signature over it. It returns the multipart's Content-Type and the
// digest of the signed entity (the MIC of a signed message, RFC 4130 §7.3.1).
//
// The entity is read once: it is hashed as it is copied into the first part, and the
// signature, which needs only the digest, is written after it.
func writeSigned(w io.Writer, signedPart opener, s *signer) (contentType string, digest []byte, err error) {
	boundary := NewBoundary()
	if _, err := io.WriteString(w, "--"+boundary+"\r\n"); err != nil {
		return "", nil, err
	}
	h := s.alg.Hash().New()
	if _, err := io.Copy(w, io.TeeReader(signedPart.Open(), h)); err != nil {
		return "", nil, err
	}
	digest = h.Sum(nil)
	sig, err := cms.SignDetachedDigest(digest, s.cert, s.key, &cms.SignOptions{
		Hash: s.alg.Hash(), PSS: s.pss, SigningTime: s.now(), Rand: s.rand,
	})
	if err != nil {
		return "", nil, fmt.Errorf("as2: signing: %w", err)
	}
	var b bytes.Buffer
	b.Grow(300 + len(sig)*140/100)
	fmt.Fprintf(&b, "\r\n--%s\r\n", boundary)
	b.WriteString("Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n")
	b.WriteString("Content-Transfer-Encoding: base64\r\n")
	b.WriteString("Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n")
	writeBase64Lines(&b, sig)
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	if _, err := w.Write(b.Bytes()); err != nil {
		return "", nil, err
	}
	ct := mime.FormatMediaType("multipart/signed", map[string]string{
		"protocol": "application/pkcs7-signature",
		"micalg":   s.alg.String(),
		"boundary": boundary,
	})
	return ct, digest, nil
}
