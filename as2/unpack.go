package as2

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/as2gate/as2gate/cms"
)

// Dispositions modifiers of RFC 4130 §7.4.3 and RFC 5402 §5 that Unpack reports in
// UnpackError.Description, for the negative MDN.
const (
	DescDecryptionFailed          = "decryption-failed"
	DescAuthenticationFailed      = "authentication-failed"
	DescIntegrityCheckFailed      = "integrity-check-failed"
	DescDecompressionFailed       = "decompression-failed"
	DescUnexpectedProcessingError = "unexpected-processing-error"
	DescInsufficientSecurity      = "insufficient-message-security"
)

// maxLayers bounds how many protection layers Unpack peels: real messages have at most four
// (encryption, compression, signature, compression).
const maxLayers = 6

// maxSignaturePart bounds the signature part of a multipart/signed and an MDN body.
const maxSignaturePart = 1 << 20

// UnpackOptions give the keys and limits for unpacking one inbound message.
type UnpackOptions struct {
	// Recipients are the station's decryption keys (several during a certificate rollover).
	Recipients []cms.Recipient
	// Trusted are the partner's certificates; a signature must verify with one of them.
	Trusted []*x509.Certificate
	// MaxSize bounds each decrypted or decompressed layer; 0 means no bound.
	MaxSize int64
	// MICAlgs are the algorithms the sender offered for the MIC (the signed-receipt-micalg of
	// its Disposition-Notification-Options), most preferred first. The MIC of a signed
	// message uses its signature digest whatever the offer (RFC 4130 §7.4.3); an unsigned
	// message's MIC uses the first offer, else SHA-1 (RFC 4130 §7.4.3).
	MICAlgs []MICAlg
	// MaxAttachments bounds the documents of one message (each costs a spool, however
	// small); 0 means DefaultMaxAttachments.
	MaxAttachments int
	// SpoolDir and SpoolMemory control where large layers go (see Spool).
	SpoolDir    string
	SpoolMemory int
}

// Layer is one protection layer found on an inbound message, outermost first.
type Layer struct {
	Type    cms.ContentType  // TypeEnvelopedData, TypeAuthEnvelopedData, TypeSignedData or TypeCompressedData
	Decrypt *cms.DecryptInfo // for the encryption layers
	Signer  *cms.Signer      // for the signature layer
}

// Attachment is one document of an inbound message.
type Attachment struct {
	Header      Header // the MIME header of the payload entity
	ContentType string // its media type with parameters
	Filename    string // from Content-Disposition; empty when absent
	Body        *Spool // decoded content (Content-Transfer-Encoding removed)
}

// Incoming is an unpacked inbound message: its layers, the MIC to return, and its payloads,
// or the MDN it carries when it is an MDN.
type Incoming struct {
	Layers []Layer
	// MIC is the Received-Content-MIC to return (RFC 4130 §7.3.1).
	MIC MIC
	// Attachments are the documents, in order (several for RFC 6362 multipart/related).
	Attachments []Attachment
	// MDN is set instead of Attachments when the message is a receipt (an asynchronous MDN).
	MDN *MDN
	// MDNEntity is the MDN's multipart/report entity as received, when MDN is set.
	MDNEntity []byte

	spools []*Spool
}

// Encrypted reports whether the message had an encryption layer.
func (in *Incoming) Encrypted() bool {
	return in.layer(cms.TypeEnvelopedData, cms.TypeAuthEnvelopedData) != nil
}

// Compressed reports whether the message had a compression layer.
func (in *Incoming) Compressed() bool { return in.layer(cms.TypeCompressedData) != nil }

// Signer returns the verified signature of the message, or nil when it was unsigned.
func (in *Incoming) Signer() *cms.Signer {
	if l := in.layer(cms.TypeSignedData); l != nil {
		return l.Signer
	}
	return nil
}

func (in *Incoming) layer(types ...cms.ContentType) *Layer {
	for i := range in.Layers {
		for _, t := range types {
			if in.Layers[i].Type == t {
				return &in.Layers[i]
			}
		}
	}
	return nil
}

// Close releases the spooled layers and attachments.
func (in *Incoming) Close() error {
	for _, s := range in.spools {
		s.Close()
	}
	in.spools = nil
	return nil
}

// Unpack peels an inbound message layer by layer, in whatever order the layers come:
// decryption (EnvelopedData, AuthEnvelopedData), decompression, signature verification over
// the bytes exactly as received (multipart/signed, or an encapsulated SignedData), then the
// payload or payloads. header is the HTTP request header; body the request body (base64 when
// the header Content-Transfer-Encoding says so, QUIRK: libas2 and some others send that).
//
// Errors are *UnpackError, whose Description is the disposition modifier a negative MDN
// answers with. Unpack does not judge whether the layers found satisfy an agreement: the
// caller reads Layers for that.
func Unpack(header http.Header, body *io.SectionReader, opts *UnpackOptions) (*Incoming, error) {
	if opts == nil {
		opts = &UnpackOptions{}
	}
	u := &unpacker{opts: opts, in: &Incoming{}}
	in, err := u.unpack(header, body)
	if err != nil {
		u.in.Close()
		return nil, u.opaque(err)
	}
	return in, nil
}

// opaque keeps a failure inside an encryption layer from telling the sender more than that
// decryption failed. CBC is malleable: an attacker who replays a captured envelope with
// chosen blocks learns from "decryption-failed" (bad padding) against anything else (good
// padding, then a MIME, compression or signature failure) whether his guess was right, and
// decrypts the message a byte at a time. Until a signature inside has verified, every
// failure after the decryption gets the one description; Err keeps the real cause for the
// operator.
func (u *unpacker) opaque(err error) error {
	var ue *UnpackError
	if !errors.As(err, &ue) || ue.Description == DescDecryptionFailed || !u.in.Encrypted() || u.in.Signer() != nil {
		return err
	}
	return &UnpackError{Layer: ue.Layer, Description: DescDecryptionFailed, Err: fmt.Errorf("%s: %w", ue.Description, ue.Err)}
}

type unpacker struct {
	opts *UnpackOptions
	in   *Incoming
}

func (u *unpacker) spool() *Spool {
	s := NewSpool(u.opts.SpoolDir, u.opts.SpoolMemory)
	u.in.spools = append(u.in.spools, s)
	return s
}

// part is the entity being unpacked: its header and its body, still transfer-encoded.
type part struct {
	header Header
	body   *io.SectionReader
	// raw is the whole entity, header included, when it is held in a spool of its own (the
	// output of a decryption or decompression, or a signed part).
	raw *io.SectionReader
}

// decoded returns a new reader of the body with its transfer encoding removed.
func (p *part) decoded() (io.Reader, error) {
	return DecodeTransferEncoding(p.header.TransferEncoding(), io.NewSectionReader(p.body, 0, p.body.Size()))
}

func fail(layer, desc string, err error) error {
	return &UnpackError{Layer: layer, Description: desc, Err: err}
}

func (u *unpacker) unpack(h http.Header, body *io.SectionReader) (*Incoming, error) {
	var top Header
	for _, name := range []string{HeaderContentType, HeaderContentTransferEncoding, HeaderContentDisposition} {
		if v := h.Get(name); v != "" {
			if err := top.Add(name, v); err != nil {
				return nil, fail("mime", DescUnexpectedProcessingError, err)
			}
		}
	}
	if top.Get(HeaderContentType) == "" {
		return nil, fail("mime", DescUnexpectedProcessingError, errors.New("the request has no Content-Type"))
	}
	cur := &part{header: top, body: body}
	// lastPlain is the entity that the last decryption or decompression produced: for an
	// unsigned message the MIC covers it (RFC 4130 §7.3.1, RFC 5402 §4.2, §4.3).
	var lastPlain *io.SectionReader
	signed := false
	for depth := 0; ; depth++ {
		if depth > maxLayers {
			return nil, fail("mime", DescUnexpectedProcessingError, fmt.Errorf("more than %d nested layers", maxLayers))
		}
		mt := cur.header.MediaType()
		switch {
		case mt == "application/pkcs7-mime" || mt == "application/x-pkcs7-mime":
			next, typ, err := u.openCMS(cur)
			if err != nil {
				return nil, err
			}
			if typ == cms.TypeSignedData {
				signed = true
			} else if !signed {
				lastPlain = next.raw
			}
			cur = next
		case mt == "multipart/signed":
			next, err := u.verifyMultipart(cur)
			if err != nil {
				return nil, err
			}
			signed = true
			cur = next
		case mt == "multipart/report" || mt == "message/disposition-notification":
			// QUIRK: some receivers answer with the bare disposition-notification part,
			// without the multipart/report around it; ParseMDNBody reads both.
			if err := u.readMDN(cur); err != nil {
				return nil, err
			}
			return u.finish(signed, lastPlain, cur)
		default:
			if err := u.attachments(cur); err != nil {
				return nil, err
			}
			return u.finish(signed, lastPlain, cur)
		}
	}
}

// finish computes the MIC of an unsigned message; a signed one got it from its signature.
func (u *unpacker) finish(signed bool, lastPlain *io.SectionReader, content *part) (*Incoming, error) {
	if signed {
		return u.in, nil
	}
	h := u.micAlg(0).New()
	var r io.Reader
	if lastPlain != nil {
		// RFC 4130 §7.3.1: the decrypted entity is canonicalised before the MIC: a sender
		// that wrote bare LF header lines hashed them as CRLF.
		r = io.NewSectionReader(lastPlain, 0, lastPlain.Size())
		if fixed, ok := crlfHeader(lastPlain); ok {
			r = fixed
		}
	} else {
		// Neither signed, encrypted nor compressed: the content without headers, after the
		// transfer encoding is removed.
		var err error
		if r, err = content.decoded(); err != nil {
			return nil, fail("mime", DescUnexpectedProcessingError, err)
		}
	}
	if _, err := io.Copy(h, r); err != nil {
		return nil, fail("mime", DescUnexpectedProcessingError, err)
	}
	u.in.MIC = MIC{Digest: h.Sum(nil), Alg: u.micAlg(0)}
	return u.in, nil
}

// micAlg is the digest for the MIC: the signature digest of a signed message (RFC 4130
// §7.4.3: "the same as that used on the message that was signed"; senders such as libas2
// check exactly that), else the sender's first offer, else SHA-1, which §7.4.3 names for
// unsigned messages.
func (u *unpacker) micAlg(signature crypto.Hash) crypto.Hash {
	if signature != 0 {
		return signature
	}
	if len(u.opts.MICAlgs) > 0 && u.opts.MICAlgs[0].Valid() {
		return u.opts.MICAlgs[0].Hash()
	}
	return crypto.SHA1
}

// openCMS decrypts, decompresses or opens an encapsulated signature.
func (u *unpacker) openCMS(cur *part) (*part, cms.ContentType, error) {
	der, err := cur.decoded()
	if err != nil {
		return nil, 0, fail("mime", DescUnexpectedProcessingError, err)
	}
	// The CMS decoder reads through this buffer (cms.Decrypt and cms.Decompress take a
	// *bufio.Reader as their own): 64 KiB, or less for a small body.
	br := bufio.NewReaderSize(der, int(min(64<<10, max(4<<10, cur.body.Size()))))
	prefix, _ := br.Peek(64)
	typ, err := cms.Identify(prefix)
	if err != nil {
		return nil, 0, fail("mime", DescUnexpectedProcessingError, fmt.Errorf("application/pkcs7-mime body: %w", err))
	}
	out := u.spool()
	switch typ {
	case cms.TypeEnvelopedData, cms.TypeAuthEnvelopedData:
		info, err := cms.Decrypt(out, br, u.opts.Recipients, &cms.DecryptOptions{MaxSize: u.opts.MaxSize})
		if err != nil {
			return nil, 0, fail("decrypt", DescDecryptionFailed, err)
		}
		u.in.Layers = append(u.in.Layers, Layer{Type: typ, Decrypt: info})
	case cms.TypeCompressedData:
		if _, err := cms.Decompress(out, br, u.opts.MaxSize); err != nil {
			return nil, 0, fail("decompress", DescDecompressionFailed, err)
		}
		u.in.Layers = append(u.in.Layers, Layer{Type: typ})
	case cms.TypeSignedData:
		// An encapsulated signature (smime-type=signed-data): rare in AS2, held in memory.
		b, err := readAtMost(br, cms.MaxSignedSize)
		if err != nil {
			return nil, 0, fail("verify", DescIntegrityCheckFailed, err)
		}
		sd, err := cms.ParseSignedData(b)
		if err != nil {
			return nil, 0, fail("verify", DescIntegrityCheckFailed, err)
		}
		signer, err := sd.Verify(nil, u.opts.Trusted)
		if err != nil {
			return nil, 0, fail("verify", verifyDescription(err), &SignatureError{Err: err})
		}
		u.in.Layers = append(u.in.Layers, Layer{Type: typ, Signer: signer})
		out.Write(sd.Content)
		if alg := u.micAlg(signer.Hash); alg == signer.Hash {
			u.in.MIC = MIC{Digest: signer.Digest, Alg: alg}
		} else {
			u.in.MIC = u.digest(signer.Hash, sd.Content)
		}
	default:
		return nil, 0, fail("mime", DescUnexpectedProcessingError, fmt.Errorf("application/pkcs7-mime holds %s, which AS2 does not use", typ))
	}
	next, err := u.entityIn(out)
	if err != nil {
		return nil, 0, err
	}
	return next, typ, nil
}

func (u *unpacker) digest(signature crypto.Hash, b []byte) MIC {
	alg := u.micAlg(signature)
	h := alg.New()
	h.Write(b)
	return MIC{Digest: h.Sum(nil), Alg: alg}
}

// entityIn parses the MIME entity held in s.
func (u *unpacker) entityIn(s *Spool) (*part, error) {
	br := bufio.NewReader(s.Open())
	h, raw, err := ReadHeader(br)
	if err != nil {
		return nil, fail("mime", DescUnexpectedProcessingError, err)
	}
	if h.Get(HeaderContentType) == "" {
		return nil, fail("mime", DescUnexpectedProcessingError, errors.New("the protected MIME entity has no Content-Type"))
	}
	n := int64(len(raw))
	return &part{header: h, body: s.Section(n, s.Size()-n), raw: s.Open()}, nil
}

// verifyMultipart checks a multipart/signed (RFC 1847 §2.1) over its first part exactly as
// received, and returns that part.
func (u *unpacker) verifyMultipart(cur *part) (*part, error) {
	boundary, err := cur.header.Boundary()
	if err != nil {
		return nil, fail("verify", DescIntegrityCheckFailed, err)
	}
	body, err := cur.decoded()
	if err != nil {
		return nil, fail("mime", DescUnexpectedProcessingError, err)
	}
	mr := NewMultipartReader(body, boundary)
	first, err := mr.NextPart()
	if err != nil {
		return nil, fail("verify", DescIntegrityCheckFailed, fmt.Errorf("multipart/signed: %w", err))
	}
	signedPart := u.spool()
	if _, err := signedPart.ReadFrom(first); err != nil {
		return nil, fail("verify", DescIntegrityCheckFailed, fmt.Errorf("multipart/signed: %w", err))
	}
	second, err := mr.NextPart()
	if err != nil {
		return nil, fail("verify", DescIntegrityCheckFailed, fmt.Errorf("multipart/signed has no signature part: %w", err))
	}
	sigEntity, err := readAtMost(second, maxSignaturePart)
	if err != nil {
		return nil, fail("verify", DescIntegrityCheckFailed, fmt.Errorf("signature part: %w", err))
	}
	e, err := ParseEntity(sigEntity)
	if err != nil {
		return nil, fail("verify", DescIntegrityCheckFailed, fmt.Errorf("signature part: %w", err))
	}
	if mt := e.Header.MediaType(); mt != "application/pkcs7-signature" && mt != "application/x-pkcs7-signature" {
		return nil, fail("verify", DescIntegrityCheckFailed, fmt.Errorf("the second part of multipart/signed is %q, not application/pkcs7-signature", mt))
	}
	der, err := e.DecodedBody()
	if err != nil {
		return nil, fail("verify", DescIntegrityCheckFailed, fmt.Errorf("signature part: %w", err))
	}
	sd, err := cms.ParseSignedData(der)
	if err != nil {
		return nil, fail("verify", DescIntegrityCheckFailed, err)
	}
	signer, mic, err := u.verifyOver(sd, signedPart.Open())
	if err != nil {
		// QUIRK: a signed part whose header lines end in a bare LF was signed over CRLF
		// headers by its sender (seen in a stored capture): retry with CRLF restored on the
		// header only, the body left untouched.
		if fixed, ok := crlfHeader(signedPart.Open()); ok {
			if s2, m2, err2 := u.verifyOver(sd, fixed); err2 == nil {
				signer, mic, err = s2, m2, nil
			}
		}
	}
	if err != nil {
		return nil, fail("verify", verifyDescription(err), &SignatureError{Err: err})
	}
	u.in.Layers = append(u.in.Layers, Layer{Type: cms.TypeSignedData, Signer: signer})
	u.in.MIC = mic
	return u.entityIn(signedPart)
}

// verifyDescription names a verification failure for the MDN: content that does not match
// its signature is integrity-check-failed (RFC 4130 §7.5.4), any other signature problem
// authentication-failed.
func verifyDescription(err error) string {
	var ve *cms.VerifyError
	if errors.As(err, &ve) && ve.Reason == cms.ReasonDigestMismatch {
		return DescIntegrityCheckFailed
	}
	return DescAuthenticationFailed
}

// verifyOver verifies sd over content and returns the MIC of the same bytes, in the
// signature's digest (RFC 4130 §7.4.3), which Verify computes anyway: the content is read
// once.
func (u *unpacker) verifyOver(sd *cms.SignedData, content io.Reader) (*cms.Signer, MIC, error) {
	signer, err := sd.Verify(content, u.opts.Trusted)
	if err != nil {
		return nil, MIC{}, err
	}
	return signer, MIC{Digest: signer.Digest, Alg: signer.Hash}, nil
}

// crlfHeader returns the entity in e with CRLF line ends restored in its header block, when
// that block has bare LFs.
func crlfHeader(e *io.SectionReader) (io.Reader, bool) {
	br := bufio.NewReader(io.NewSectionReader(e, 0, e.Size()))
	_, raw, err := ReadHeader(br)
	if err != nil || !bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) {
		return nil, false
	}
	n := int64(len(raw))
	return io.MultiReader(bytes.NewReader(ToCRLF(raw)), io.NewSectionReader(e, n, e.Size()-n)), true
}

// readMDN reads a multipart/report receipt.
func (u *unpacker) readMDN(cur *part) error {
	body, err := cur.decoded()
	if err != nil {
		return fail("mime", DescUnexpectedProcessingError, err)
	}
	b, err := readAtMost(body, maxSignaturePart)
	if err != nil {
		return fail("mime", DescUnexpectedProcessingError, fmt.Errorf("MDN: %w", err))
	}
	m, err := ParseMDNBody(cur.header.Get(HeaderContentType), b)
	if err != nil {
		return fail("mime", DescUnexpectedProcessingError, err)
	}
	u.in.MDN = m
	if cur.raw != nil {
		u.in.MDNEntity, _ = readAtMost(io.NewSectionReader(cur.raw, 0, cur.raw.Size()), maxSignaturePart+MaxHeaderBytes)
	} else {
		u.in.MDNEntity = append(cur.header.Bytes(), b...)
	}
	return nil
}

// attachments reads the payload entity: one document, or a multipart of several (RFC 6362).
func (u *unpacker) attachments(cur *part) error {
	if !strings.HasPrefix(cur.header.MediaType(), "multipart/") {
		return u.attachment(cur.header, io.NewSectionReader(cur.body, 0, cur.body.Size()))
	}
	boundary, err := cur.header.Boundary()
	if err != nil {
		return fail("mime", DescUnexpectedProcessingError, err)
	}
	body, err := cur.decoded()
	if err != nil {
		return fail("mime", DescUnexpectedProcessingError, err)
	}
	mr := NewMultipartReader(body, boundary)
	for {
		pr, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fail("mime", DescUnexpectedProcessingError, err)
		}
		br := bufio.NewReader(pr)
		h, _, err := ReadHeader(br)
		if err != nil {
			return fail("mime", DescUnexpectedProcessingError, err)
		}
		if err := u.attachment(h, br); err != nil {
			return err
		}
	}
}

func (u *unpacker) attachment(h Header, body io.Reader) error {
	if max := u.maxAttachments(); len(u.in.Attachments) >= max {
		return fail("mime", DescUnexpectedProcessingError, fmt.Errorf("more than %d attachments in one message", max))
	}
	r, err := DecodeTransferEncoding(h.TransferEncoding(), body)
	if err != nil {
		return fail("mime", DescUnexpectedProcessingError, err)
	}
	s := u.spool()
	if _, err := s.ReadFrom(r); err != nil {
		return fail("mime", DescUnexpectedProcessingError, fmt.Errorf("reading payload: %w", err))
	}
	ct := h.Get(HeaderContentType)
	if ct == "" {
		ct = "application/octet-stream"
	}
	u.in.Attachments = append(u.in.Attachments, Attachment{Header: h, ContentType: ct, Filename: h.Filename(), Body: s})
	return nil
}

// DefaultMaxAttachments bounds the documents of one message unless UnpackOptions says.
const DefaultMaxAttachments = 1000

func (u *unpacker) maxAttachments() int {
	if u.opts.MaxAttachments > 0 {
		return u.opts.MaxAttachments
	}
	return DefaultMaxAttachments
}

// readAtMost reads r to its end, failing past max bytes.
func readAtMost(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return b, nil
}
