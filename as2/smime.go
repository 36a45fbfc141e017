package as2

import (
	"bufio"
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
// digest of the signed entity, computed in the same pass as the signature (the MIC of a
// signed message, RFC 4130 §7.3.1).
func writeSigned(w io.Writer, signedPart opener, s *signer) (contentType string, digest []byte, err error) {
	h := s.alg.Hash().New()
	sig, err := cms.SignDetached(io.TeeReader(signedPart.Open(), h), s.cert, s.key, &cms.SignOptions{
		Hash: s.alg.Hash(), PSS: s.pss, SigningTime: s.now(), Rand: s.rand,
	})
	if err != nil {
		return "", nil, fmt.Errorf("as2: signing: %w", err)
	}
	boundary := NewBoundary()
	bw := bufio.NewWriterSize(w, 32<<10)
	fmt.Fprintf(bw, "--%s\r\n", boundary)
	if _, err := io.Copy(bw, signedPart.Open()); err != nil {
		return "", nil, err
	}
	fmt.Fprintf(bw, "\r\n--%s\r\n", boundary)
	bw.WriteString("Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n")
	bw.WriteString("Content-Transfer-Encoding: base64\r\n")
	bw.WriteString("Content-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n")
	writeBase64Lines(bw, sig)
	fmt.Fprintf(bw, "--%s--\r\n", boundary)
	if err := bw.Flush(); err != nil {
		return "", nil, err
	}
	ct := mime.FormatMediaType("multipart/signed", map[string]string{
		"protocol": "application/pkcs7-signature",
		"micalg":   s.alg.String(),
		"boundary": boundary,
	})
	return ct, h.Sum(nil), nil
}
