package cms

import (
	"crypto/cipher"
	"crypto/subtle"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// maxEnvAlgorithm bounds an encoded content-encryption AlgorithmIdentifier.
const maxEnvAlgorithm = 1 << 10

// Decrypt reads a ContentInfo holding EnvelopedData or AuthEnvelopedData (BER or DER) from r
// and writes the plaintext to w as it decrypts, holding only a chunk in memory.
//
// The RecipientInfo used is the first that names one of recipients by issuer and serial
// number or by subject key identifier; several recipients allow for certificate rollover.
// A message for none of them fails with a *NoRecipientError (errors.Is ErrNoRecipient).
// Failures that depend on the key or on the ciphertext are ErrDecryption.
//
// On any error, what was written to w must be discarded: CBC content is checked only as far
// as its padding, and AuthEnvelopedData is authenticated only at its end.
func Decrypt(w io.Writer, r io.Reader, recipients []Recipient, opts *DecryptOptions) (*DecryptInfo, error) {
	var limit int64
	if opts != nil {
		limit = opts.MaxSize
	}
	d := newDecoder(r, limit)
	oid, err := d.contentInfoStart()
	if err != nil {
		return nil, err
	}
	info := &DecryptInfo{Type: contentTypeOf(oid)}
	if info.Type != TypeEnvelopedData && info.Type != TypeAuthEnvelopedData {
		return nil, fmt.Errorf("cms: content type %s is neither enveloped-data nor authEnveloped-data", oid)
	}
	if err := d.enter(tagSequence); err != nil {
		return nil, err
	}
	if err := d.envVersion(); err != nil {
		return nil, err
	}
	if tag, err := d.peekTag(); err != nil {
		return nil, err
	} else if tag == classContext|bitCompound|0 {
		// originatorInfo: certificates and CRLs of the originator, of no use here.
		if _, _, err := d.element(0); err != nil {
			return nil, err
		}
	}
	risDER, tag, err := d.element(maxRecipientInfos)
	if err != nil {
		return nil, err
	}
	if tag != tagSet {
		return nil, d.syntax(fmt.Sprintf("expected the recipientInfos SET, found tag 0x%02x", tag))
	}
	infos, err := parseRecipientInfos(risDER)
	if err != nil {
		return nil, err
	}
	ri, rcp := chooseRecipient(infos, recipients)
	if ri == nil {
		e := &NoRecipientError{}
		for _, ri := range infos {
			e.Recipients = append(e.Recipients, ri.id)
		}
		return nil, e
	}
	info.Recipient = rcp
	kt, label, err := parseKeyTransportAlgorithm(ri.algorithm)
	if err != nil {
		return nil, err
	}
	info.KeyTransport = kt

	// EncryptedContentInfo: the inner content type (normally id-data, which the caller
	// learns from the plaintext anyway), the algorithm and the encrypted content.
	if err := d.enter(tagSequence); err != nil {
		return nil, err
	}
	if _, err := d.oid(); err != nil {
		return nil, err
	}
	algDER, tag, err := d.element(maxEnvAlgorithm)
	if err != nil {
		return nil, err
	}
	if tag != tagSequence {
		return nil, d.syntax("expected the contentEncryptionAlgorithm SEQUENCE")
	}
	algOID, params, err := parseEnvAlgorithm(algDER)
	if err != nil {
		return nil, err
	}
	c, ok := cipherForOID(algOID)
	if !ok {
		return nil, &UnsupportedAlgorithmError{What: "content encryption", OID: algOID}
	}
	info.Cipher = c
	spec := cipherSpecs[c]
	if spec.gcm != (info.Type == TypeAuthEnvelopedData) {
		// libas2 and some Go pkcs7 forks put GCM in EnvelopedData, with the tag glued to
		// the ciphertext; OpenSSL and BouncyCastle refuse that, and so do we.
		return nil, fmt.Errorf("cms: %s content encryption inside %s is not allowed (RFC 5084 puts GCM in authEnveloped-data only)",
			c, info.Type)
	}

	cek, err := decryptKey(kt, label, rcp.Key, ri.encryptedKey, spec.keyLen)
	if err != nil {
		return nil, err
	}
	block, err := c.newBlock(cek)
	if err != nil {
		return nil, ErrDecryption
	}

	ok, err = d.more()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("cms: the encrypted content is absent (detached), which is not supported")
	}
	h, err := d.header()
	if err != nil {
		return nil, err
	}
	if h.tag != classContext|0 && h.tag != classContext|bitCompound|0 {
		return nil, d.syntax(fmt.Sprintf("expected the [0] encryptedContent, found tag 0x%02x", h.tag))
	}
	ciphertext, err := d.octets(h)
	if err != nil {
		return nil, err
	}

	if !spec.gcm {
		iv, err := parseCBCParams(params, block.BlockSize())
		if err != nil {
			return nil, err
		}
		if err := decryptCBC(w, ciphertext, cipher.NewCBCDecrypter(block, iv)); err != nil {
			return nil, err
		}
		if err := d.leave(); err != nil { // EncryptedContentInfo
			return nil, err
		}
	} else if err := d.openGCM(w, ciphertext, block, params); err != nil {
		return nil, err
	}

	// The rest of EnvelopedData (unprotectedAttrs) or AuthEnvelopedData (unauthAttrs), the
	// [0] and the ContentInfo.
	for range 3 {
		if err := d.leave(); err != nil {
			return nil, err
		}
	}
	if err := d.trailer(); err != nil {
		return nil, err
	}
	return info, nil
}

// envVersion reads and checks the CMSVersion of (Auth)EnvelopedData: 0 to 4 exist.
func (d *decoder) envVersion() error {
	der, tag, err := d.element(16)
	if err != nil {
		return err
	}
	s := cryptobyte.String(der)
	var v int
	if tag != tagInteger || !s.ReadASN1Integer(&v) || v < 0 || v > 4 {
		return d.syntax("invalid version")
	}
	return nil
}

// chooseRecipient returns the first RecipientInfo naming one of the recipients that has a
// key, and that recipient.
func chooseRecipient(infos []recipientInfo, recipients []Recipient) (*recipientInfo, *Recipient) {
	for i := range infos {
		for j := range recipients {
			if recipients[j].Key != nil && infos[i].matches(recipients[j].Certificate) {
				return &infos[i], &recipients[j]
			}
		}
	}
	return nil, nil
}

// openGCM decrypts AES-GCM content to w, leaves the EncryptedContentInfo, reads authAttrs and
// the mac, and checks the tag.
func (d *decoder) openGCM(w io.Writer, ciphertext io.Reader, block cipher.Block, params []byte) error {
	nonce, icvLen, err := parseGCMParams(params)
	if err != nil {
		return err
	}
	g, err := newGCMStream(block, nonce)
	if err != nil {
		return err
	}
	buf := make([]byte, envChunk)
	for {
		n, err := io.ReadFull(ciphertext, buf)
		if n > 0 {
			if err := g.decrypt(buf[:n], buf[:n]); err != nil {
				return err
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return fmt.Errorf("cms: writing plaintext: %w", err)
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if err := d.leave(); err != nil { // EncryptedContentInfo
		return err
	}

	var aad []byte
	tag, err := d.peekTag()
	if err != nil {
		return err
	}
	if tag == classContext|bitCompound|1 {
		der, _, err := d.element(maxAuthAttrs)
		if err != nil {
			return err
		}
		aad = authAttrsAAD(der)
	}
	der, tag, err := d.element(64)
	if err != nil {
		return err
	}
	var mac []byte
	s := cryptobyte.String(der)
	if tag != tagOctetString || !s.ReadASN1Bytes(&mac, cbasn1.OCTET_STRING) {
		return d.syntax("expected the mac OCTET STRING")
	}
	if len(mac) != icvLen {
		return fmt.Errorf("%w: the mac is %d bytes, the GCM parameters say %d", ErrDecryption, len(mac), icvLen)
	}
	if subtle.ConstantTimeCompare(g.tag(aad)[:icvLen], mac) != 1 {
		return ErrDecryption
	}
	return nil
}

// trailer checks what follows the ContentInfo: nothing, or the zero bytes and line ends some
// products append after a base64 body's DER, as normalizeAll tolerates.
func (d *decoder) trailer() error {
	for {
		c, err := d.r.ReadByte()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if d.limit > 0 && d.pos >= d.limit {
			return ErrTooLarge
		}
		d.pos++
		if c != 0 && c != '\r' && c != '\n' {
			return d.syntax("trailing data after the ContentInfo")
		}
	}
}
