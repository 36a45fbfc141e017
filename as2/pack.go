package as2

import (
	"bufio"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/as2gate/as2gate/cms"
)

// Compression says whether and where an outgoing message is compressed (RFC 5402 §3).
type Compression int

// Compression choices. Compressing before signing makes the signature cover the compressed
// entity; compressing after signing compresses the whole multipart/signed.
const (
	NoCompression Compression = iota
	CompressBeforeSign
	CompressAfterSign
)

// String returns the configuration spelling: "none", "before-sign", "after-sign".
func (c Compression) String() string {
	switch c {
	case CompressBeforeSign:
		return "before-sign"
	case CompressAfterSign:
		return "after-sign"
	}
	return "none"
}

// MDNMode is how the sender wants the receipt.
type MDNMode int

// MDN modes: none, in the HTTP response, or POSTed later to the Receipt-Delivery-Option URL.
const (
	MDNNone MDNMode = iota
	MDNSync
	MDNAsync
)

// String returns the configuration spelling: "none", "sync", "async".
func (m MDNMode) String() string {
	switch m {
	case MDNSync:
		return "sync"
	case MDNAsync:
		return "async"
	}
	return "none"
}

// MDNRequest is what an outgoing message asks of the receiver's MDN (RFC 4130 §7.3).
type MDNRequest struct {
	Mode MDNMode
	// To is the Disposition-Notification-To value. RFC 4130 leaves its content to the
	// sender and receivers only test its presence; empty means the sender's AS2 name.
	To string
	// Signed asks for a receipt signed with pkcs7-signature.
	Signed bool
	// MICAlgs are the algorithms offered for the signed receipt's MIC, most preferred
	// first; empty means the signing algorithm, or SHA-256 for an unsigned message.
	MICAlgs []MICAlg
	// URL is the Receipt-Delivery-Option for an asynchronous MDN.
	URL string
}

// Payload is one document of an outgoing message.
type Payload struct {
	Filename    string // Content-Disposition filename; empty means none
	ContentType string // empty means application/octet-stream
	Body        io.Reader
}

// PackOptions describe an outgoing message: who sends it to whom, and how it is protected.
type PackOptions struct {
	From, To  string // AS2 names
	MessageID string // empty: a new one under the domain of MessageIDDomain
	// MessageIDDomain is the right-hand side of generated Message-IDs; empty means "as2gate".
	MessageIDDomain string
	Subject         string

	// Sign is the signing digest; zero means unsigned.
	Sign MICAlg
	// PSS signs with RSASSA-PSS instead of PKCS#1 v1.5.
	PSS bool
	// Certificate and Key sign the message (the station's signing identity).
	Certificate *x509.Certificate
	Key         crypto.Signer

	Compression Compression

	// Encrypt is the content cipher; zero means not encrypted.
	Encrypt      cms.Cipher
	KeyTransport cms.KeyTransport
	// Recipients are the partner's encryption certificates.
	Recipients []*x509.Certificate

	MDN MDNRequest

	// Header holds further HTTP headers (a partner's custom headers, a send profile); they
	// are added after the AS2 headers and replace any of the same name.
	Header http.Header

	// SpoolDir and SpoolMemory control where large intermediate layers go (see Spool).
	SpoolDir    string
	SpoolMemory int

	Rand io.Reader        // nil: crypto/rand
	Now  func() time.Time // nil: time.Now
}

// Message is a packed outgoing message: the HTTP headers and body to POST, and the MIC the
// receipt must carry. Its Body is the exact wire body: store it, and every retry sends the
// same bytes with the same Message-ID.
type Message struct {
	MessageID string      // with angle brackets, as in the header
	Header    http.Header // every HTTP header to send, Content-Type included
	Body      *Spool
	// MIC is the expected Received-Content-MIC (RFC 4130 §7.3.1), in the algorithm the
	// receipt is asked to use.
	MIC MIC
	// MICs holds the MIC in every algorithm the receiver may answer in: every AS2 algorithm
	// for an unsigned message; for a signed one, the signature's and the offered ones, or
	// nil when only the signature's was offered.
	MICs []MIC
	// MDN is what the message asks of the receipt.
	MDN MDNRequest
}

// Close releases the message body.
func (m *Message) Close() error {
	if m == nil || m.Body == nil {
		return nil
	}
	return m.Body.Close()
}

// Pack builds an outgoing AS2 message from one or more payloads (several make a
// multipart/related, RFC 6362): the content entity, then compression before signing,
// signing (multipart/signed, RFC 1847 and RFC 5751), compression after signing and encryption
// (application/pkcs7-mime), as opts ask. Every layer is spooled, so a large payload is
// never held in memory whole and every layer is written as DER with its exact length.
func Pack(payloads []Payload, opts *PackOptions) (*Message, error) {
	if err := opts.validate(len(payloads)); err != nil {
		return nil, err
	}
	p := packer{opts: opts, rand: opts.Rand, now: opts.Now}
	if p.rand == nil {
		p.rand = rand.Reader
	}
	if p.now == nil {
		p.now = time.Now
	}
	msg, err := p.pack(payloads)
	p.release()
	if err != nil {
		return nil, err
	}
	return msg, nil
}

func (o *PackOptions) validate(n int) error {
	if o == nil {
		return errors.New("as2: Pack needs options")
	}
	if n == 0 {
		return errors.New("as2: a message needs at least one payload")
	}
	if err := ValidateID(o.From); err != nil {
		return fmt.Errorf("AS2-From: %w", err)
	}
	if err := ValidateID(o.To); err != nil {
		return fmt.Errorf("AS2-To: %w", err)
	}
	if o.MessageID != "" {
		if err := ValidateMessageID(o.MessageID); err != nil {
			return err
		}
	}
	if o.Sign != 0 {
		if !o.Sign.Valid() {
			return fmt.Errorf("as2: unsupported signing algorithm %v", o.Sign)
		}
		if o.Certificate == nil || o.Key == nil {
			return errors.New("as2: signing needs the station's certificate and private key")
		}
	}
	if o.Compression < NoCompression || o.Compression > CompressAfterSign {
		return fmt.Errorf("as2: unknown compression mode %d", o.Compression)
	}
	if o.Encrypt != 0 && len(o.Recipients) == 0 {
		return errors.New("as2: encryption needs the partner's certificate")
	}
	if o.MDN.Mode == MDNAsync && o.MDN.URL == "" {
		return errors.New("as2: an asynchronous MDN needs a Receipt-Delivery-Option URL")
	}
	if o.MDN.Mode == MDNNone && o.MDN.Signed {
		return errors.New("as2: a signed MDN was asked for but no MDN")
	}
	return nil
}

// packer holds the spools of one Pack call, so that every intermediate layer is released
// whatever happens.
type packer struct {
	opts   *PackOptions
	rand   io.Reader
	now    func() time.Time
	spools []*Spool
}

func (p *packer) spool() *Spool {
	s := NewSpool(p.opts.SpoolDir, p.opts.SpoolMemory)
	p.spools = append(p.spools, s)
	return s
}

// release closes every intermediate spool; the final body is detached from the list first.
func (p *packer) release() {
	for _, s := range p.spools {
		s.Close()
	}
	p.spools = nil
}

func (p *packer) keep(s *Spool) {
	for i, x := range p.spools {
		if x == s {
			p.spools = append(p.spools[:i], p.spools[i+1:]...)
			return
		}
	}
}

// entity is a MIME entity being built: its header lines (CRLF-terminated, without the blank
// line) and its body in a spool.
type entity struct {
	contentType string
	header      []string // "Name: value" lines other than Content-Type
	body        *Spool
	head        []byte // the header block as written, blank line included; built by Open
}

// Open returns a reader of the entity as a MIME entity: headers, blank line, body. The body
// is read from its spool where it lies, so that wrapping a layer in headers does not copy
// it into another spool.
func (e *entity) Open() *io.SectionReader {
	if e.head == nil {
		h := make([]byte, 0, 256)
		h = append(h, HeaderContentType+": "+e.contentType+"\r\n"...)
		for _, line := range e.header {
			h = append(h, line...)
			h = append(h, "\r\n"...)
		}
		e.head = append(h, "\r\n"...)
	}
	r := entityReaderAt{head: e.head, body: e.body}
	return io.NewSectionReader(r, 0, int64(len(e.head))+e.body.Size())
}

// entityReaderAt reads a header block followed by a spooled body.
type entityReaderAt struct {
	head []byte
	body *Spool
}

func (r entityReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	if off < int64(len(r.head)) {
		n = copy(p, r.head[off:])
		if n == len(p) {
			return n, nil
		}
	}
	m, err := r.body.ReadAt(p[n:], max(0, off-int64(len(r.head))))
	return n + m, err
}

func (p *packer) pack(payloads []Payload) (*Message, error) {
	o := p.opts
	content, err := p.contentEntity(payloads)
	if err != nil {
		return nil, err
	}

	// The MIC (RFC 4130 §7.3.1) covers the signed entity when the message is signed, the
	// entity that is encrypted when it is encrypted only, and the bare content otherwise.
	// With compression, RFC 5402 §4 makes the MIC follow the signature: compression before
	// signing means the MIC covers the compressed entity.
	micAlgs := o.MDN.MICAlgs
	var mic MIC
	var mics []MIC

	cur := content
	if o.Compression == CompressBeforeSign {
		if cur, err = p.compress(cur); err != nil {
			return nil, err
		}
	}
	if o.Sign != 0 {
		signed, signedPart, digest, err := p.sign(cur)
		if err != nil {
			return nil, err
		}
		mic = MIC{Digest: digest, Alg: o.Sign.Hash()}
		// The receiver must answer in the signature's digest (RFC 4130 §7.4.3). QUIRK: some
		// answer in the first algorithm offered for the receipt instead; accept those too.
		if mic, mics, err = offeredMICs(signedPart, mic, micAlgs); err != nil {
			return nil, err
		}
		cur = signed
	} else {
		// Unsigned: the MIC covers the content entity with its MIME headers when the
		// message is encrypted or compressed (RFC 4130 §7.3.1, RFC 5402 §4.2 and §4.3: over
		// the uncompressed entity), and the bare content otherwise.
		var r io.Reader
		if o.Encrypt != 0 || o.Compression != NoCompression {
			r = content.Open()
		} else {
			r = cur.body.Open()
		}
		mics, err = allMICs(r)
		if err != nil {
			return nil, err
		}
		// RFC 4130 §7.4.3: SHA-1 for an unsigned message unless the sender offered another.
		want := crypto.SHA1
		if len(micAlgs) > 0 {
			want = micAlgs[0].Hash()
		}
		for _, m := range mics {
			if m.Alg == want {
				mic = m
			}
		}
	}
	if o.Compression == CompressAfterSign {
		if cur, err = p.compress(cur); err != nil {
			return nil, err
		}
	}
	if o.Encrypt != 0 {
		if cur, err = p.encrypt(cur); err != nil {
			return nil, err
		}
	}

	msgID := o.MessageID
	if msgID == "" {
		domain := o.MessageIDDomain
		if domain == "" {
			domain = "as2gate"
		}
		msgID = NewMessageID(domain)
	}
	mdn := o.MDN
	if mdn.Mode != MDNNone && len(mdn.MICAlgs) == 0 {
		mdn.MICAlgs = []MICAlg{MICAlg(mic.Alg)}
	}
	if mdn.To == "" {
		mdn.To = o.From
	}
	h := p.httpHeader(cur, msgID, mdn)
	p.keep(cur.body)
	return &Message{MessageID: msgID, Header: h, Body: cur.body, MIC: mic, MICs: mics, MDN: mdn}, nil
}

// contentEntity builds the entity that carries the payloads: the payload itself, or a
// multipart/related of them (RFC 6362 §2; the root is the first).
func (p *packer) contentEntity(payloads []Payload) (*entity, error) {
	if len(payloads) == 1 {
		return p.payloadEntity(payloads[0])
	}
	boundary := NewBoundary()
	body := p.spool()
	bw := bufio.NewWriterSize(body, 32<<10)
	for i, pl := range payloads {
		e, err := p.payloadEntity(pl)
		if err != nil {
			return nil, fmt.Errorf("as2: payload %d: %w", i+1, err)
		}
		fmt.Fprintf(bw, "--%s\r\n", boundary)
		if _, err := io.Copy(bw, e.Open()); err != nil {
			return nil, err
		}
		bw.WriteString("\r\n")
	}
	fmt.Fprintf(bw, "--%s--\r\n", boundary)
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	root := payloads[0].ContentType
	if root == "" {
		root = "application/octet-stream"
	}
	ct := mime.FormatMediaType("multipart/related", map[string]string{"boundary": boundary, "type": root})
	return &entity{contentType: ct, body: body}, nil
}

func (p *packer) payloadEntity(pl Payload) (*entity, error) {
	if pl.Body == nil {
		return nil, errors.New("as2: payload has no body")
	}
	ct := pl.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil {
		return nil, fmt.Errorf("as2: payload Content-Type %q: %w", ct, err)
	}
	e := &entity{contentType: ct, body: p.spool()}
	e.header = append(e.header, HeaderContentTransferEncoding+": binary")
	if pl.Filename != "" {
		e.header = append(e.header, HeaderContentDisposition+": "+FormatAttachment(pl.Filename))
	}
	if _, err := e.body.ReadFrom(pl.Body); err != nil {
		return nil, fmt.Errorf("as2: reading payload: %w", err)
	}
	return e, nil
}

// FormatAttachment returns a Content-Disposition value "attachment; filename=…", with the
// RFC 2231 form when the name is not plain ASCII.
func FormatAttachment(filename string) string {
	v := mime.FormatMediaType("attachment", map[string]string{"filename": filename})
	if v == "" {
		// FormatMediaType refuses names it cannot encode (control characters); drop them.
		v = mime.FormatMediaType("attachment", map[string]string{"filename": strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return -1
			}
			return r
		}, filename)})
	}
	return v
}

// compress wraps e in an application/pkcs7-mime; smime-type=compressed-data entity.
func (p *packer) compress(e *entity) (*entity, error) {
	out := p.spool()
	if err := cms.Compress(out, e.Open()); err != nil {
		return nil, fmt.Errorf("as2: compressing: %w", err)
	}
	return &entity{
		contentType: `application/pkcs7-mime; smime-type=compressed-data; name="smime.p7z"`,
		header: []string{
			HeaderContentTransferEncoding + ": binary",
			HeaderContentDisposition + `: attachment; filename="smime.p7z"`,
		},
		body: out,
	}, nil
}

// sign wraps e in a multipart/signed and returns it with the signed entity and its digest,
// which is the MIC in the signature's algorithm.
func (p *packer) sign(e *entity) (*entity, *entity, []byte, error) {
	o := p.opts
	body := p.spool()
	ct, digest, err := writeSigned(body, e, &signer{
		alg: o.Sign, pss: o.PSS, cert: o.Certificate, key: o.Key, now: p.now, rand: p.rand,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	return &entity{contentType: ct, body: body}, e, digest, nil
}

// offeredMICs returns the MIC a signed message expects, in the signature's algorithm
// (RFC 4130 §7.4.3), and, when the algorithms offered for the receipt differ from it, the
// MIC in each of them too, for receivers that answer in the offered one. sig is the MIC in
// the signature's algorithm, computed while signing; the others digest the signed entity
// again, in one pass.
func offeredMICs(signed *entity, sig MIC, offers []MICAlg) (MIC, []MIC, error) {
	var algs []MICAlg
	for _, a := range offers {
		if a.Valid() && a.Hash() != sig.Alg && !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		return sig, nil, nil
	}
	hs := make([]hash.Hash, len(algs))
	ws := make([]io.Writer, len(algs))
	for i, a := range algs {
		hs[i] = a.Hash().New()
		ws[i] = hs[i]
	}
	if _, err := io.Copy(io.MultiWriter(ws...), signed.Open()); err != nil {
		return MIC{}, nil, err
	}
	mics := []MIC{sig}
	for i, a := range algs {
		mics = append(mics, MIC{Digest: hs[i].Sum(nil), Alg: a.Hash()})
	}
	return sig, mics, nil
}

// encrypt wraps e in an application/pkcs7-mime; smime-type=enveloped-data entity, or
// authEnveloped-data for AES-GCM (RFC 8551 §3.2.2).
func (p *packer) encrypt(e *entity) (*entity, error) {
	o := p.opts
	out := p.spool()
	plain := e.Open()
	err := cms.Encrypt(out, plain, plain.Size(), o.Recipients, &cms.EncryptOptions{
		Cipher: o.Encrypt, KeyTransport: o.KeyTransport, Rand: p.rand,
	})
	if err != nil {
		return nil, fmt.Errorf("as2: encrypting: %w", err)
	}
	smimeType := "enveloped-data"
	if o.Encrypt == cms.AES128GCM || o.Encrypt == cms.AES256GCM {
		smimeType = "authEnveloped-data"
	}
	return &entity{
		contentType: `application/pkcs7-mime; smime-type=` + smimeType + `; name="smime.p7m"`,
		header:      []string{HeaderContentDisposition + `: attachment; filename="smime.p7m"`},
		body:        out,
	}, nil
}

// httpHeader returns the HTTP headers of the outermost entity: the AS2 headers of
// RFC 4130 §6, the entity's own headers, then the caller's extra headers.
func (p *packer) httpHeader(e *entity, msgID string, mdn MDNRequest) http.Header {
	o := p.opts
	h := http.Header{}
	h.Set(HeaderAS2Version, AS2Version)
	h.Set(HeaderEDIINTFeatures, EDIINTFeatures)
	h.Set(HeaderAS2From, QuoteID(o.From))
	h.Set(HeaderAS2To, QuoteID(o.To))
	h.Set(HeaderMessageID, msgID)
	h.Set(HeaderDate, p.now().UTC().Format(time.RFC1123Z))
	h.Set(HeaderMIMEVersion, "1.0")
	if o.Subject != "" {
		h.Set(HeaderSubject, mime.QEncoding.Encode("utf-8", o.Subject))
	}
	h.Set(HeaderContentType, e.contentType)
	for _, line := range e.header {
		name, value, _ := strings.Cut(line, ": ")
		if strings.EqualFold(name, HeaderContentTransferEncoding) {
			continue // HTTP carries the body as it is
		}
		h.Set(name, value)
	}
	if mdn.Mode != MDNNone {
		h.Set(HeaderDispositionNotificationTo, mdn.To)
		if mdn.Signed {
			h.Set(HeaderDispositionNotificationOptions, SignedReceiptOptions(mdn.MICAlgs...).String())
		}
		if mdn.Mode == MDNAsync {
			h.Set(HeaderReceiptDeliveryOption, mdn.URL)
		}
	}
	for name, values := range o.Header {
		h[http.CanonicalHeaderKey(name)] = append([]string(nil), values...)
	}
	return h
}

// writeBase64Lines writes b in base64 with CRLF-terminated lines of 76 characters
// (RFC 2045 §6.8).
func writeBase64Lines(w io.StringWriter, b []byte) {
	enc := base64.StdEncoding.EncodeToString(b)
	for len(enc) > 76 {
		w.WriteString(enc[:76])
		w.WriteString("\r\n")
		enc = enc[76:]
	}
	w.WriteString(enc)
	w.WriteString("\r\n")
}

// allMICs digests r with every AS2 MIC algorithm in one pass.
func allMICs(r io.Reader) ([]MIC, error) {
	algs := []MICAlg{MICAlgSHA1, MICAlgSHA256, MICAlgSHA384, MICAlgSHA512}
	hs := make([]hash.Hash, len(algs))
	ws := make([]io.Writer, len(algs))
	for i, a := range algs {
		hs[i] = a.Hash().New()
		ws[i] = hs[i]
	}
	if _, err := io.Copy(io.MultiWriter(ws...), r); err != nil {
		return nil, err
	}
	mics := make([]MIC, len(algs))
	for i, a := range algs {
		mics[i] = MIC{Digest: hs[i].Sum(nil), Alg: a.Hash()}
	}
	return mics, nil
}
