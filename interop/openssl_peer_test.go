package interop

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// An AS2 partner made of the `openssl cms` command and the Go standard library, to meet the
// gateway with an implementation that shares none of its code. Every signature, digest,
// encryption and decryption is one openssl command; the MIME and HTTP around them are
// assembled here by hand, from RFC 4130, RFC 1847 and RFC 8551, and read back with a
// boundary splitter of its own, so that nothing of the as2 package checks the as2 package.

// opensslPeerDeadline bounds each HTTP exchange and each wait for a report: a safety net for a
// hung peer, not a timer anything waits for.
const opensslPeerDeadline = time.Minute

// opensslAS2 is one AS2 identity of the OpenSSL peer and the partner it trades with.
type opensslAS2 struct {
	openssl     string // the openssl binary
	AS2ID       string
	certPath    string // our certificate, PEM
	keyPath     string // our private key, PEM
	partnerCert string // the partner's certificate: we encrypt to it and verify its signatures
	dir         string // scratch files for the commands that want them
}

func newOpenSSLAS2(t testing.TB, as2ID, certPath, keyPath, partnerCert string) *opensslAS2 {
	t.Helper()
	return &opensslAS2{openssl: need(t, "openssl"), AS2ID: as2ID, certPath: certPath, keyPath: keyPath,
		partnerCert: partnerCert, dir: t.TempDir()}
}

// cmd runs openssl with stdin and returns its standard output.
func (p *opensslAS2) cmd(stdin []byte, args ...string) ([]byte, error) {
	out, err := runErr(stdin, p.openssl, args...)
	if err != nil {
		return nil, fmt.Errorf("openssl %s: %w", strings.Join(args[:min(2, len(args))], " "), err)
	}
	return out, nil
}

// scratch writes b to a new file in the scratch folder and returns its path.
func (p *opensslAS2) scratch(pattern string, b []byte) (string, error) {
	f, err := os.CreateTemp(p.dir, pattern)
	if err != nil {
		return "", err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return f.Name(), err
}

// sign returns a detached CMS signature (DER, signer certificate embedded) over content as
// it is: -binary keeps OpenSSL from turning line ends into CRLF.
func (p *opensslAS2) sign(content []byte, md string, pss bool) ([]byte, error) {
	args := []string{"cms", "-sign", "-binary", "-md", md, "-signer", p.certPath, "-inkey", p.keyPath, "-outform", "DER"}
	if pss {
		args = append(args, "-keyopt", "rsa_padding_mode:pss")
	}
	return p.cmd(content, args...)
}

// verify checks a detached signature over content with the partner's certificate. The
// content is given as a file, exactly: verifying a whole multipart/signed with -binary keeps
// a stray CR in the content and fails.
func (p *opensslAS2) verify(content, sig []byte) error {
	contentPath, err := p.scratch("content-*.bin", content)
	if err != nil {
		return err
	}
	verified, err := p.cmd(sig, "cms", "-verify", "-binary", "-inform", "DER", "-content", contentPath,
		"-CAfile", p.partnerCert, "-purpose", "any")
	if err != nil {
		return err
	}
	if !bytes.Equal(verified, content) {
		return fmt.Errorf("openssl verified %d bytes, not the %d of the signed part", len(verified), len(content))
	}
	return nil
}

// encrypt returns an EnvelopedData (AuthEnvelopedData for a GCM cipher) of content for the
// partner, DER. cipher is an openssl cipher option without its dash (aes256, des3,
// aes-128-gcm); oaep is the OAEP and MGF1 digest, or "" for PKCS#1 v1.5 key transport.
func (p *opensslAS2) encrypt(content []byte, cipher, oaep string) ([]byte, error) {
	args := []string{"cms", "-encrypt", "-binary", "-" + cipher, "-outform", "DER", "-recip", p.partnerCert}
	if oaep != "" {
		args = append(args, "-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:"+oaep, "-keyopt", "rsa_mgf1_md:"+oaep)
	}
	return p.cmd(content, args...)
}

// decrypt opens an EnvelopedData or AuthEnvelopedData addressed to us.
func (p *opensslAS2) decrypt(der []byte) ([]byte, error) {
	return p.cmd(der, "cms", "-decrypt", "-binary", "-inform", "DER", "-recip", p.certPath, "-inkey", p.keyPath)
}

// digest returns the md digest of b.
func (p *opensslAS2) digest(md string, b []byte) ([]byte, error) {
	return p.cmd(b, "dgst", "-"+md, "-binary")
}

// opensslAlgorithmLine is how `openssl cms -cmsout -print` names an algorithm, and
// opensslParameterOID how it names an OID inside algorithm parameters it dumps as ASN.1.
var (
	opensslAlgorithmLine = regexp.MustCompile(`algorithm: \S+ \(([0-9.]+)\)`)
	opensslParameterOID  = regexp.MustCompile(`prim: +OBJECT +:(\S+)`)
)

// algorithms returns the algorithms `openssl cms -cmsout -print` names in a CMS structure:
// the OID of each AlgorithmIdentifier (for an envelope the key transport and the content
// cipher; for a signature the digest and signature algorithms, its certificates' included),
// then openssl's short name of each OID within their parameters (the OAEP and MGF1
// digests: "sha256").
func (p *opensslAS2) algorithms(der []byte) ([]string, error) {
	out, err := p.cmd(der, "cms", "-cmsout", "-print", "-inform", "DER")
	if err != nil {
		return nil, err
	}
	var algs []string
	for _, re := range []*regexp.Regexp{opensslAlgorithmLine, opensslParameterOID} {
		for _, m := range re.FindAllSubmatch(out, -1) {
			algs = append(algs, string(m[1]))
		}
	}
	return algs, nil
}

// opensslMicalg is the RFC 5751 micalg name of an openssl digest name: sha256 -> sha-256.
func opensslMicalg(md string) string { return "sha-" + strings.TrimPrefix(md, "sha") }

// opensslDigestName is the openssl name of a micalg: sha-256 -> sha256, also for the
// RFC 3851 spellings without the dash.
func opensslDigestName(micalg string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(micalg)), "-", "")
}

// opensslFormatMIC is the Received-Content-MIC value of a digest.
func opensslFormatMIC(digest []byte, md string) string {
	return base64.StdEncoding.EncodeToString(digest) + ", " + opensslMicalg(md)
}

// opensslBoundary returns a MIME boundary, or a Message-ID local part, nobody else uses.
func opensslBoundary() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// opensslBase64Lines encodes b in lines of 76 characters, each ended by CRLF.
func opensslBase64Lines(b []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(b)
	var out bytes.Buffer
	for len(enc) > 76 {
		out.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	out.WriteString(enc + "\r\n")
	return out.Bytes()
}

// opensslMultipartSigned wraps entity (its headers and body) and a detached signature over it in a
// multipart/signed entity (RFC 1847), whose first header line is its Content-Type.
func opensslMultipartSigned(entity, sig []byte, md string) []byte {
	b := opensslBoundary()
	var out bytes.Buffer
	fmt.Fprintf(&out, "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=%s; boundary=\"%s\"\r\n\r\n", opensslMicalg(md), b)
	fmt.Fprintf(&out, "--%s\r\n", b)
	out.Write(entity)
	// The CRLF before the delimiter belongs to the delimiter (RFC 2046 section 5.1.1): the
	// signed part is entity exactly.
	fmt.Fprintf(&out, "\r\n--%s\r\nContent-Type: application/pkcs7-signature; name=\"smime.p7s\"\r\n", b)
	out.WriteString("Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"smime.p7s\"\r\n\r\n")
	out.Write(opensslBase64Lines(sig))
	fmt.Fprintf(&out, "--%s--\r\n", b)
	return out.Bytes()
}

// opensslSplitEntity splits a MIME entity into its header and its body.
func opensslSplitEntity(entity []byte) (textproto.MIMEHeader, []byte, error) {
	end := bytes.Index(entity, []byte("\r\n\r\n"))
	if end < 0 {
		if bytes.HasPrefix(entity, []byte("\r\n")) {
			return textproto.MIMEHeader{}, entity[2:], nil
		}
		return nil, nil, errors.New("openssl peer: MIME entity without the blank line that ends its header")
	}
	h, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(entity[:end+4]))).ReadMIMEHeader()
	if err != nil {
		return nil, nil, fmt.Errorf("openssl peer: MIME header: %w", err)
	}
	return h, entity[end+4:], nil
}

// opensslSplitParts returns the body parts of a multipart body byte for byte as they were sent:
// each runs from the line after its delimiter to the CRLF before the next delimiter, which
// belongs to that delimiter (RFC 2046 section 5.1.1).
func opensslSplitParts(body []byte, boundary string) ([][]byte, error) {
	// Pretend a CRLF before the body so that a delimiter opening it is found like the others.
	body = append([]byte("\r\n"), body...)
	at, closing, err := nextDelimiter(body, 0, boundary)
	if err != nil {
		return nil, err
	}
	var parts [][]byte
	for !closing {
		// The part starts after the delimiter line, whose end nextDelimiter has seen.
		eol := bytes.Index(body[at+2:], []byte("\r\n"))
		start := at + 2 + eol + 2
		var end int
		if end, closing, err = nextDelimiter(body, start, boundary); err != nil {
			return nil, fmt.Errorf("%w after %d parts", err, len(parts))
		}
		parts = append(parts, body[start:end])
		at = end
	}
	return parts, nil
}

// nextDelimiter finds the first delimiter of boundary in body from position from: a CRLF,
// "--", the boundary, then "--" (closing) or optional white space and CRLF. It returns the
// position of the delimiter's CRLF.
func nextDelimiter(body []byte, from int, boundary string) (at int, closing bool, err error) {
	delim := []byte("\r\n--" + boundary)
	for {
		i := bytes.Index(body[from:], delim)
		if i < 0 {
			return 0, false, fmt.Errorf("openssl peer: no delimiter of boundary %q", boundary)
		}
		at = from + i
		rest := body[at+len(delim):]
		if bytes.HasPrefix(rest, []byte("--")) {
			return at, true, nil
		}
		if after := bytes.TrimLeft(rest, " \t"); bytes.HasPrefix(after, []byte("\r\n")) {
			return at, false, nil
		}
		from = at + len(delim) // a longer boundary that starts with this one
	}
}

// opensslMediaType parses a Content-Type, lower-casing the type.
func opensslMediaType(h textproto.MIMEHeader) (string, map[string]string, error) {
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return "", nil, fmt.Errorf("openssl peer: Content-Type %q: %w", h.Get("Content-Type"), err)
	}
	return mt, params, nil
}

// opensslDecodeBody removes the Content-Transfer-Encoding of an entity's body.
func opensslDecodeBody(h textproto.MIMEHeader, body []byte) ([]byte, error) {
	switch cte := strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))); cte {
	case "", "7bit", "8bit", "binary":
		return body, nil
	case "base64":
		return io.ReadAll(base64.NewDecoder(base64.StdEncoding, bytes.NewReader(bytes.Map(func(r rune) rune {
			if r == '\r' || r == '\n' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, body))))
	default:
		return nil, fmt.Errorf("openssl peer: Content-Transfer-Encoding %q", cte)
	}
}

// opensslSignedParts splits a multipart/signed body into the signed part, exactly, and the DER of
// its signature.
func opensslSignedParts(body []byte, params map[string]string) (signed, sig []byte, err error) {
	parts, err := opensslSplitParts(body, params["boundary"])
	if err != nil {
		return nil, nil, err
	}
	if len(parts) != 2 {
		return nil, nil, fmt.Errorf("openssl peer: multipart/signed with %d parts, want 2", len(parts))
	}
	h, b, err := opensslSplitEntity(parts[1])
	if err != nil {
		return nil, nil, err
	}
	sig, err = opensslDecodeBody(h, b)
	return parts[0], sig, err
}

// opensslReceiptOptions reads Disposition-Notification-Options: whether a signed receipt is asked
// for, and the openssl names of the digests offered for it, in order.
func opensslReceiptOptions(v string) (signed bool, mds []string) {
	for _, param := range strings.Split(v, ";") {
		name, value, _ := strings.Cut(param, "=")
		values := strings.Split(value, ",")[1:] // after the importance
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "signed-receipt-protocol":
			for _, p := range values {
				signed = signed || strings.EqualFold(strings.TrimSpace(p), "pkcs7-signature")
			}
		case "signed-receipt-micalg":
			for _, a := range values {
				mds = append(mds, opensslDigestName(a))
			}
		}
	}
	return signed, mds
}

// opensslOutbound is one message the OpenSSL peer sends.
type opensslOutbound struct {
	Sign        string // openssl digest: sha1, sha256, sha384, sha512; "": unsigned
	PSS         bool   // sign with RSASSA-PSS
	Encrypt     string // openssl cipher option without its dash: des3, aes256, aes-128-gcm; "": not encrypted
	OAEP        string // the OAEP digest; "": PKCS#1 v1.5 key transport
	MDN         string // sync, async or none
	MDNSign     string // the digest asked for a signed receipt; "": an unsigned receipt
	ReceiptURL  string // Receipt-Delivery-Option of an asynchronous MDN
	Filename    string
	ContentType string
	Payload     []byte
}

// opensslSent is what the OpenSSL peer sent and the synchronous answer it got.
type opensslSent struct {
	MessageID   string
	ExpectedMIC string // the Received-Content-MIC the receiver must return
	Status      int
	Header      http.Header // the response's
	Body        []byte
}

// send packs o (payload entity, then multipart/signed, then the envelope) and POSTs it to url.
func (p *opensslAS2) send(ctx context.Context, url, to string, o opensslOutbound) (*opensslSent, error) {
	var entity bytes.Buffer
	fmt.Fprintf(&entity, "Content-Type: %s\r\nContent-Transfer-Encoding: binary\r\n", o.ContentType)
	fmt.Fprintf(&entity, "Content-Disposition: attachment; filename=\"%s\"\r\n\r\n", o.Filename)
	entity.Write(o.Payload)

	// RFC 4130 section 7.3.1: the MIC covers the signed part with its headers, or, unsigned,
	// the entity that is encrypted.
	micMD := o.Sign
	if micMD == "" {
		micMD = cmp.Or(o.MDNSign, "sha256")
	}
	mic, err := p.digest(micMD, entity.Bytes())
	if err != nil {
		return nil, err
	}
	sent := &opensslSent{MessageID: "<" + opensslBoundary() + "@openssl.as2gate.test>", ExpectedMIC: opensslFormatMIC(mic, micMD)}

	content := entity.Bytes()
	if o.Sign != "" {
		sig, err := p.sign(content, o.Sign, o.PSS)
		if err != nil {
			return nil, err
		}
		content = opensslMultipartSigned(content, sig, o.Sign)
	}
	header, body, err := opensslSplitEntity(content)
	if err != nil {
		return nil, err
	}
	if o.Encrypt != "" {
		if body, err = p.encrypt(content, o.Encrypt, o.OAEP); err != nil {
			return nil, err
		}
		smimeType := "enveloped-data"
		if strings.HasSuffix(o.Encrypt, "-gcm") {
			smimeType = "authEnveloped-data" // RFC 8551 section 3.4
		}
		header = textproto.MIMEHeader{
			"Content-Type":              {"application/pkcs7-mime; smime-type=" + smimeType + "; name=\"smime.p7m\""},
			"Content-Transfer-Encoding": {"binary"},
			"Content-Disposition":       {"attachment; filename=\"smime.p7m\""},
		}
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("MIME-Version", "1.0")
	req.Header.Set("AS2-Version", "1.2")
	req.Header.Set("AS2-From", p.AS2ID)
	req.Header.Set("AS2-To", to)
	req.Header.Set("Message-ID", sent.MessageID)
	req.Header.Set("Subject", "openssl peer: "+o.Filename)
	req.Header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	if o.MDN != "none" {
		req.Header.Set("Disposition-Notification-To", "mailto:as2@openssl.as2gate.test")
		if o.MDNSign != "" {
			req.Header.Set("Disposition-Notification-Options",
				"signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, "+opensslMicalg(o.MDNSign))
		}
		if o.MDN == "async" {
			req.Header.Set("Receipt-Delivery-Option", o.ReceiptURL)
		}
	}
	resp, err := (&http.Client{Timeout: opensslPeerDeadline}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	sent.Status, sent.Header = resp.StatusCode, resp.Header
	if sent.Body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<20)); err != nil {
		return nil, fmt.Errorf("openssl peer: reading the answer: %w", err)
	}
	return sent, nil
}

// opensslMDN is an MDN as the OpenSSL peer read it.
type opensslMDN struct {
	Signed            bool   // a multipart/signed whose signature openssl verified with the partner's certificate
	Micalg            string // the micalg of a signed MDN
	Disposition       string
	OriginalMessageID string
	ReceivedMIC       string
}

// readMDN reads an MDN (its Content-Type and body): a signed one must verify with the
// partner's certificate.
func (p *opensslAS2) readMDN(contentType string, body []byte) (*opensslMDN, error) {
	h := textproto.MIMEHeader{"Content-Type": {contentType}}
	mt, params, err := opensslMediaType(h)
	if err != nil {
		return nil, err
	}
	var mdn opensslMDN
	if mt == "multipart/signed" {
		signed, sig, err := opensslSignedParts(body, params)
		if err != nil {
			return nil, err
		}
		if err := p.verify(signed, sig); err != nil {
			return nil, fmt.Errorf("openssl peer: MDN signature: %w", err)
		}
		mdn.Signed, mdn.Micalg = true, params["micalg"]
		if h, body, err = opensslSplitEntity(signed); err != nil {
			return nil, err
		}
		if mt, params, err = opensslMediaType(h); err != nil {
			return nil, err
		}
	}
	if mt != "multipart/report" {
		return nil, fmt.Errorf("openssl peer: MDN of type %s, want multipart/report", mt)
	}
	parts, err := opensslSplitParts(body, params["boundary"])
	if err != nil {
		return nil, err
	}
	for _, part := range parts {
		ph, pb, err := opensslSplitEntity(part)
		if err != nil {
			return nil, err
		}
		if pt, _, err := opensslMediaType(ph); err != nil || pt != "message/disposition-notification" {
			continue
		}
		if pb, err = opensslDecodeBody(ph, pb); err != nil {
			return nil, err
		}
		fields, err := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(pb), strings.NewReader("\r\n\r\n")))).ReadMIMEHeader()
		if err != nil {
			return nil, fmt.Errorf("openssl peer: disposition notification fields: %w", err)
		}
		mdn.Disposition = fields.Get("Disposition")
		mdn.OriginalMessageID = fields.Get("Original-Message-Id")
		mdn.ReceivedMIC = fields.Get("Received-Content-Mic")
		return &mdn, nil
	}
	return nil, errors.New("openssl peer: multipart/report without a message/disposition-notification part")
}

// opensslSameMIC compares two Received-Content-MIC values, whose spacing and case of the
// algorithm may differ.
func opensslSameMIC(a, b string) bool {
	norm := func(s string) string {
		mic, alg, _ := strings.Cut(s, ",")
		return strings.TrimSpace(mic) + "," + opensslDigestName(alg)
	}
	return norm(a) == norm(b)
}

// opensslMDNSink receives asynchronous MDNs for the OpenSSL sender.
type opensslMDNSink struct {
	URL  string
	mdns chan opensslMDNPost
}

type opensslMDNPost struct {
	contentType string
	body        []byte
}

// startOpenSSLMDNSink serves an endpoint for one asynchronous MDN until the test ends.
func startOpenSSLMDNSink(t testing.TB) *opensslMDNSink {
	s := &opensslMDNSink{mdns: make(chan opensslMDNPost, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case s.mdns <- opensslMDNPost{r.Header.Get("Content-Type"), body}:
			w.WriteHeader(http.StatusOK)
		default:
			http.Error(w, "openssl peer: one asynchronous MDN was expected, this is another", http.StatusConflict)
		}
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/mdn"
	return s
}

// next returns the Content-Type and body of the asynchronous MDN once it has arrived.
func (s *opensslMDNSink) next(t testing.TB) (string, []byte) {
	t.Helper()
	deadline := time.NewTimer(opensslPeerDeadline)
	defer deadline.Stop()
	select {
	case m := <-s.mdns:
		return m.contentType, m.body
	case <-deadline.C:
		t.Fatalf("no asynchronous MDN within %v", opensslPeerDeadline)
	}
	return "", nil
}

// opensslInbound is the OpenSSL receiver's report on one message.
type opensslInbound struct {
	MessageID, AS2From, AS2To string
	Envelope                  []string // the envelope's algorithms (see algorithms); nil when not encrypted
	Signature                 []string // the signature's algorithms; nil when unsigned
	Micalg                    string   // the micalg of multipart/signed; "" when unsigned
	MIC                       string   // the Received-Content-MIC we returned
	Filename, ContentType     string
	Payload                   []byte
	MDN                       string // how the MDN went back: sync, async or none
	AsyncStatus               int
	Err                       error // what went wrong; the message got no positive MDN
}

// opensslReceiver is an AS2 endpoint on 127.0.0.1 that the OpenSSL peer answers.
type opensslReceiver struct {
	URL  string
	peer *opensslAS2

	mu    sync.Mutex
	slots map[string]chan opensslInbound
	async sync.WaitGroup
}

// startOpenSSLReceiver serves p's AS2 endpoint until the test ends.
func startOpenSSLReceiver(t testing.TB, p *opensslAS2) *opensslReceiver {
	r := &opensslReceiver{peer: p, slots: map[string]chan opensslInbound{}}
	srv := httptest.NewServer(http.HandlerFunc(r.serveHTTP))
	t.Cleanup(func() {
		srv.Close()
		r.async.Wait()
	})
	r.URL = srv.URL + "/as2"
	return r
}

func (r *opensslReceiver) slot(messageID string) chan opensslInbound {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.slots[messageID]
	if !ok {
		c = make(chan opensslInbound, 1)
		r.slots[messageID] = c
	}
	return c
}

// deliver hands in to whoever waits for its Message-ID. A message sent again (a retry) is
// not reported again: the first report is the one a test reads.
func (r *opensslReceiver) deliver(in opensslInbound) {
	select {
	case r.slot(in.MessageID) <- in:
	default:
	}
}

// next returns the report on the message with this Message-ID once it has been answered.
func (r *opensslReceiver) next(t testing.TB, messageID string) opensslInbound {
	t.Helper()
	deadline := time.NewTimer(opensslPeerDeadline)
	defer deadline.Stop()
	select {
	case m := <-r.slot(messageID):
		return m
	case <-deadline.C:
		t.Fatalf("the OpenSSL receiver got no message %s within %v", messageID, opensslPeerDeadline)
	}
	return opensslInbound{}
}

// report returns the report on a message without waiting, and whether there is one yet;
// next still returns it afterwards.
func (r *opensslReceiver) report(messageID string) (opensslInbound, bool) {
	c := r.slot(messageID)
	select {
	case m := <-c:
		c <- m
		return m, true
	default:
		return opensslInbound{}, false
	}
}

func (r *opensslReceiver) serveHTTP(w http.ResponseWriter, req *http.Request) {
	in := opensslInbound{MessageID: req.Header.Get("Message-ID"), AS2From: req.Header.Get("AS2-From"), AS2To: req.Header.Get("AS2-To")}
	mdn, err := r.receive(req, &in)
	if err != nil {
		in.Err = err
		http.Error(w, err.Error(), http.StatusBadRequest)
		r.deliver(in)
		return
	}
	var head textproto.MIMEHeader
	var body []byte
	if mdn != nil {
		if head, body, err = opensslSplitEntity(mdn); err != nil {
			in.Err = err
			http.Error(w, err.Error(), http.StatusInternalServerError)
			r.deliver(in)
			return
		}
		head.Set("AS2-Version", "1.2")
		head.Set("AS2-From", in.AS2To)
		head.Set("AS2-To", in.AS2From)
		head.Set("Message-ID", "<"+opensslBoundary()+"@openssl.as2gate.test>")
		head.Set("MIME-Version", "1.0")
	}
	receiptURL := req.Header.Get("Receipt-Delivery-Option")
	switch {
	case mdn == nil:
		in.MDN = "none"
		w.WriteHeader(http.StatusOK)
	case receiptURL == "":
		in.MDN = "sync"
		for k, v := range head {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body)
	default:
		// Answer the POST first, as a partner on another machine would, then deliver the
		// MDN on a connection of its own.
		in.MDN = "async"
		w.WriteHeader(http.StatusOK)
		r.async.Add(1)
		go func() {
			defer r.async.Done()
			in.AsyncStatus, in.Err = opensslPostMDN(receiptURL, head, body)
			r.deliver(in)
		}()
		return
	}
	r.deliver(in)
}

// opensslPostMDN delivers an asynchronous MDN and returns the HTTP status it got.
func opensslPostMDN(url string, head textproto.MIMEHeader, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opensslPeerDeadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	for k, v := range head {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("openssl peer: posting the asynchronous MDN: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("openssl peer: the asynchronous MDN got HTTP %d", resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// receive opens a message (envelope, signature, payload), fills in, and returns the MDN to
// send back as a MIME entity, or nil when none was asked for.
func (r *opensslReceiver) receive(req *http.Request, in *opensslInbound) ([]byte, error) {
	p := r.peer
	wire, err := io.ReadAll(io.LimitReader(req.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("openssl peer: reading the message: %w", err)
	}
	h := textproto.MIMEHeader(req.Header)
	if wire, err = opensslDecodeBody(h, wire); err != nil {
		return nil, err
	}
	mt, params, err := opensslMediaType(h)
	if err != nil {
		return nil, err
	}
	// entity is the MIME entity the message carries, headers included: the one inside the
	// envelope, or, unencrypted, the HTTP body under its Content-Type (already decoded).
	entity := append([]byte("Content-Type: "+h.Get("Content-Type")+"\r\n\r\n"), wire...)
	if mt == "application/pkcs7-mime" {
		if in.Envelope, err = p.algorithms(wire); err != nil {
			return nil, err
		}
		if entity, err = p.decrypt(wire); err != nil {
			return nil, err
		}
		if h, _, err = opensslSplitEntity(entity); err != nil {
			return nil, err
		}
		if mt, params, err = opensslMediaType(h); err != nil {
			return nil, err
		}
	}
	wantSigned, mds := opensslReceiptOptions(req.Header.Get("Disposition-Notification-Options"))
	micMD := "sha256"
	if len(mds) > 0 {
		micMD = mds[0]
	}
	micOver := entity
	if mt == "multipart/signed" {
		_, body, err := opensslSplitEntity(entity)
		if err != nil {
			return nil, err
		}
		signed, sig, err := opensslSignedParts(body, params)
		if err != nil {
			return nil, err
		}
		if err := p.verify(signed, sig); err != nil {
			return nil, fmt.Errorf("openssl peer: message signature: %w", err)
		}
		if in.Signature, err = p.algorithms(sig); err != nil {
			return nil, err
		}
		// RFC 4130 section 7.3.1: a signed message's MIC uses the signature's digest.
		in.Micalg = params["micalg"]
		micMD, micOver, entity = opensslDigestName(in.Micalg), signed, signed
	}
	digest, err := p.digest(micMD, micOver)
	if err != nil {
		return nil, err
	}
	in.MIC = opensslFormatMIC(digest, micMD)

	ph, pb, err := opensslSplitEntity(entity)
	if err != nil {
		return nil, err
	}
	if in.Payload, err = opensslDecodeBody(ph, pb); err != nil {
		return nil, err
	}
	in.ContentType = ph.Get("Content-Type")
	if _, dp, err := mime.ParseMediaType(ph.Get("Content-Disposition")); err == nil {
		in.Filename = dp["filename"]
	}

	if req.Header.Get("Disposition-Notification-To") == "" {
		return nil, nil
	}
	report := opensslMDNReport(in)
	if !wantSigned {
		return report, nil
	}
	sig, err := p.sign(report, micMD, false)
	if err != nil {
		return nil, err
	}
	return opensslMultipartSigned(report, sig, micMD), nil
}

// opensslMDNReport is the multipart/report of a positive MDN (RFC 3798, RFC 4130 section 7.4.3),
// with its Content-Type header.
func opensslMDNReport(in *opensslInbound) []byte {
	b := opensslBoundary()
	var out bytes.Buffer
	fmt.Fprintf(&out, "Content-Type: multipart/report; report-type=disposition-notification; boundary=\"%s\"\r\n\r\n", b)
	fmt.Fprintf(&out, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n", b)
	fmt.Fprintf(&out, "The message %s was received and verified with OpenSSL.\r\n", in.MessageID)
	fmt.Fprintf(&out, "\r\n--%s\r\nContent-Type: message/disposition-notification\r\nContent-Transfer-Encoding: 7bit\r\n\r\n", b)
	fmt.Fprintf(&out, "Reporting-UA: openssl peer\r\nOriginal-Recipient: rfc822; %s\r\nFinal-Recipient: rfc822; %s\r\n", in.AS2To, in.AS2To)
	fmt.Fprintf(&out, "Original-Message-ID: %s\r\nDisposition: automatic-action/MDN-sent-automatically; processed\r\n", in.MessageID)
	fmt.Fprintf(&out, "Received-Content-MIC: %s\r\n", in.MIC)
	fmt.Fprintf(&out, "\r\n--%s--\r\n", b)
	return out.Bytes()
}

// TestOpenSSLPeerSplitParts pins the boundary splitter the OpenSSL peer reads signed parts
// with: a part is exactly the bytes between delimiter lines, CRLFs inside it included.
func TestOpenSSLPeerSplitParts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		want    []string
		wantErr bool
	}{
		{"two parts", "--b\r\nA: 1\r\n\r\nx\r\n--b\r\n\r\ny\r\n--b--\r\n", []string{"A: 1\r\n\r\nx", "\r\ny"}, false},
		{"preamble and padding", "pre\r\n--b  \r\n\r\nx\r\n\r\n--b--", []string{"\r\nx\r\n"}, false},
		{"longer boundary inside", "--b\r\n\r\n--bb\r\n--b--\r\n", []string{"\r\n--bb"}, false},
		{"no close delimiter", "--b\r\n\r\nx\r\n", nil, true},
		{"no delimiter", "x\r\n", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := opensslSplitParts([]byte(tc.body), "b")
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d parts %q, want %q", len(got), got, tc.want)
			}
			for i := range got {
				if string(got[i]) != tc.want[i] {
					t.Errorf("part %d %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestOpenSSLPeerSelfLoop checks the OpenSSL peer against itself, so that a gateway test
// failing against it points at the gateway: its sender and its receiver exchange a message
// and a signed MDN, and a tampered signature is refused.
func TestOpenSSLPeerSelfLoop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := newLibas2Party(t, dir, "OSSLA")
	b := newLibas2Party(t, dir, "OSSLB")
	sender := newOpenSSLAS2(t, a.AS2ID, a.CertPath, a.KeyPath, b.CertPath)
	r := startOpenSSLReceiver(t, newOpenSSLAS2(t, b.AS2ID, b.CertPath, b.KeyPath, a.CertPath))
	payload := append([]byte("UNB+UNOC:3+OSSLA+OSSLB'\r\nbare LF\n"), 0, 0x80, 0xff, '\r')
	ctx, cancel := context.WithTimeout(context.Background(), opensslPeerDeadline)
	defer cancel()
	sent, err := sender.send(ctx, r.URL, b.AS2ID, opensslOutbound{
		Sign: "sha256", Encrypt: "aes-128-gcm", OAEP: "sha256", MDN: "sync", MDNSign: "sha256",
		Filename: "order.edi", ContentType: "application/EDIFACT", Payload: payload,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := r.next(t, sent.MessageID)
	if got.Err != nil || !bytes.Equal(got.Payload, payload) || got.Filename != "order.edi" {
		t.Fatalf("receiver: %v, payload %q, filename %q", got.Err, got.Payload, got.Filename)
	}
	mdn, err := sender.readMDN(sent.Header.Get("Content-Type"), sent.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !mdn.Signed || mdn.OriginalMessageID != sent.MessageID || !opensslSameMIC(mdn.ReceivedMIC, sent.ExpectedMIC) ||
		mdn.Disposition != "automatic-action/MDN-sent-automatically; processed" {
		t.Fatalf("MDN %+v, want a signed positive MDN with MIC %s", mdn, sent.ExpectedMIC)
	}

	_, params, _ := mime.ParseMediaType(sent.Header.Get("Content-Type"))
	signed, sig, err := opensslSignedParts(sent.Body, params)
	if err != nil {
		t.Fatal(err)
	}
	if err := sender.verify(append(bytes.Clone(signed), ' '), sig); err == nil {
		t.Error("openssl verified a signed part with a byte added")
	}
}
