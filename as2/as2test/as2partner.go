package as2test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/cms"
)

// AS2Config is the identity of a partner made with AS2, and the ways it misbehaves. The
// zero misbehaviour is a correct RFC 4130 receiver.
type AS2Config struct {
	// ID is the partner's AS2 name, the AS2-From of its MDNs; empty means the AS2-To of
	// each message it answers.
	ID string
	// Certificate and Key are the partner's station identity: the key decrypts messages
	// and signs MDNs. To decrypt, Key must also be a crypto.Decrypter, as an
	// *rsa.PrivateKey is. Without them the partner can neither decrypt nor sign.
	Certificate *x509.Certificate
	Key         crypto.Signer
	// Trusted are the senders' certificates a signed message must verify with.
	Trusted []*x509.Certificate

	// Disposition replaces the disposition the partner would answer with, e.g.
	// as2.ProcessedWithError(as2.DecryptionFailed) for a message it read perfectly well.
	Disposition *as2.Disposition
	// WrongMIC answers with a Received-Content-MIC that is not the message's.
	WrongMIC bool
	// OmitMIC answers without a Received-Content-MIC.
	OmitMIC bool
	// UnsignedMDN answers with an unsigned MDN even when a signed one was requested.
	UnsignedMDN bool
	// TamperSignature answers with a signed MDN whose signed content was changed after
	// signing, so that its signature does not verify (a message-digest mismatch).
	TamperSignature bool
	// GarbledMDN answers 200 with bytes that are not an MDN (an HTML page, as a web server
	// in front of a broken AS2 product sends) where an MDN was requested.
	GarbledMDN bool
	// MDNContentType replaces the Content-Type of the MDN response.
	MDNContentType string
	// MessageIDOverride is the Original-Message-ID of the MDN instead of the message's:
	// an MDN that answers another message.
	MessageIDOverride string
	// Chunked sends the synchronous MDN with chunked transfer encoding instead of a
	// Content-Length.
	Chunked bool
	// Status is the HTTP status of the answer; 0 means 200. A synchronous MDN goes with
	// any status, as some products send their MDN with a 500.
	Status int
	// MDNClient posts asynchronous MDNs; nil means a client of the partner's own that
	// follows no redirect and uses no proxy.
	MDNClient *http.Client
}

// Received is what a partner made with AS2 read from one request: the AS2 headers, the
// layers peeled and the payloads, or the error that stopped it, and the MDN it answered.
type Received struct {
	// Request is the AS2 headers as as2.ParseRequest read them; nil when they were refused.
	Request *as2.Request
	// Err is why the message could not be read: the *as2.RequestError of ParseRequest or
	// the *as2.UnpackError of Unpack; nil when it was read.
	Err error
	// Layers are the protection layers found, outermost first.
	Layers []as2.Layer
	// MIC is the Received-Content-MIC the partner computed.
	MIC as2.MIC
	// Attachments are the payloads of a message, in order.
	Attachments []Attachment
	// MDN is the receipt the request carried, when it was an asynchronous MDN, and
	// Signer its verified signature (nil when unsigned).
	MDN    *as2.MDN
	Signer *cms.Signer
	// Answer is the MDN the partner sent back, synchronously or asynchronously, as it
	// encoded it (with WrongMIC, OmitMIC and MessageIDOverride applied, before GarbledMDN
	// and TamperSignature damage its bytes); nil when it sent none.
	Answer *as2.MDN
}

// Attachment is one payload a partner made with AS2 received.
type Attachment struct {
	ContentType string // with parameters, as received
	Filename    string // from Content-Disposition; empty when absent
	Body        []byte // with the Content-Transfer-Encoding removed
}

// tamperedText is the human-readable text of every MDN the partner signs; TamperSignature
// changes it after signing, keeping its length.
const (
	mdnText      = "Receipt from the as2test partner: this text is signed."
	tamperedText = "Receipt from the as2test partner: this text is forged."
)

// garbledMDN is what a GarbledMDN partner answers with.
var garbledMDN = []byte("<html><head><title>Upload</title></head><body><p>Thank you. Your file was uploaded.</p></body></html>\r\n")

// AS2 makes the partner a working AS2 receiver built on package as2: it reads the AS2
// headers (a 400 when they are missing), decrypts, decompresses and verifies the message
// with cfg's keys, and answers with the MDN the sender asked for: signed or not,
// synchronous in the response or asynchronous to the Receipt-Delivery-Option URL after an
// empty 200. An asynchronous MDN it receives is read and answered with an empty 200. What
// it read is recorded in Request.AS2.
//
// A message it cannot read is answered with the negative MDN RFC 4130 §7.5.4 asks for,
// "processed/error: decryption-failed" and the like. The misbehaviours of cfg change the
// answer the way broken or hostile partners do.
func AS2(cfg AS2Config) Behavior {
	return behaviorFunc(func(x *exchange) {
		x.readBody(-1)
		rcv := &Received{}
		x.req.AS2 = rcv
		if !x.req.Complete {
			x.record()
			return // the client went away mid-body: nobody is left to answer
		}
		reply := cfg.receive(x.r, x.req.Body, rcv)
		x.record()
		reply.write(x, &cfg)
	})
}

// as2Reply is the answer being made to one request.
type as2Reply struct {
	status int
	header http.Header
	body   []byte
	async  string // the URL of an asynchronous MDN, sent after the empty 200
	mdnHdr http.Header
	mdn    []byte
}

// receive reads one request into rcv and returns the answer.
func (cfg *AS2Config) receive(r *http.Request, body []byte, rcv *Received) *as2Reply {
	req, err := as2.ParseRequest(r)
	if err != nil {
		rcv.Err = err
		return &as2Reply{status: http.StatusBadRequest, header: textHeader(), body: []byte(err.Error() + "\n")}
	}
	rcv.Request = req
	opts := &as2.UnpackOptions{Trusted: cfg.Trusted, MICAlgs: req.MDN.MICAlgs}
	if dec, ok := cfg.Key.(crypto.Decrypter); ok && cfg.Certificate != nil {
		opts.Recipients = []cms.Recipient{{Certificate: cfg.Certificate, Key: dec}}
	}
	in, uerr := as2.Unpack(r.Header, io.NewSectionReader(bytes.NewReader(body), 0, int64(len(body))), opts)
	rcv.Err = uerr
	if in != nil {
		defer in.Close()
		rcv.Layers, rcv.MIC, rcv.MDN, rcv.Signer = in.Layers, in.MIC, in.MDN, in.Signer()
		for _, a := range in.Attachments {
			b, err := io.ReadAll(a.Body.Open())
			if err != nil {
				// A spool in memory or in a file just written: failing to read it back is a
				// fault of the machine, which the answer reports.
				rcv.Err = err
				return &as2Reply{status: http.StatusInternalServerError, header: textHeader(), body: []byte("as2test: " + err.Error() + "\n")}
			}
			rcv.Attachments = append(rcv.Attachments, Attachment{ContentType: a.ContentType, Filename: a.Filename, Body: b})
		}
	}
	status := cfg.Status
	if status == 0 {
		status = http.StatusOK
	}
	if rcv.MDN != nil || req.MDN.Mode == as2.MDNNone {
		return &as2Reply{status: status}
	}

	d := as2.Processed()
	if uerr != nil {
		desc := as2.UnexpectedProcessingError
		var ue *as2.UnpackError
		if errors.As(uerr, &ue) && ue.Description != "" {
			desc = ue.Description
		}
		d = as2.ProcessedWithError(desc)
	}
	if cfg.Disposition != nil {
		d = *cfg.Disposition
	}
	m := as2.NewMDN(req, in, d, "as2test")
	m.Text = mdnText
	if cfg.MessageIDOverride != "" {
		m.OriginalMessageID = cfg.MessageIDOverride
	}
	switch {
	case cfg.OmitMIC:
		m.ReceivedMIC = nil
	case cfg.WrongMIC:
		wrong := as2.MIC{Alg: crypto.SHA256}
		if m.ReceivedMIC != nil {
			wrong = *m.ReceivedMIC
		}
		hh := wrong.Alg.New()
		io.WriteString(hh, "as2test: not the message")
		wrong.Digest = hh.Sum(nil)
		m.ReceivedMIC = &wrong
	}
	rcv.Answer = m

	var signer *as2.MDNSigner
	if !cfg.UnsignedMDN && cfg.Certificate != nil && cfg.Key != nil {
		signer = &as2.MDNSigner{Certificate: cfg.Certificate, Key: cfg.Key}
	}
	from := cfg.ID
	if from == "" {
		from = req.To
	}
	h, b, err := as2.EncodeMDN(m, req, signer, from)
	if err != nil {
		rcv.Err = errors.Join(rcv.Err, err)
		return &as2Reply{status: http.StatusInternalServerError, header: textHeader(), body: []byte("as2test: " + err.Error() + "\n")}
	}
	if cfg.TamperSignature {
		b = bytes.Replace(b, []byte(mdnText), []byte(tamperedText), 1)
	}
	if cfg.GarbledMDN {
		h.Set(as2.HeaderContentType, "text/html; charset=utf-8")
		b = garbledMDN
	}
	if cfg.MDNContentType != "" {
		h.Set(as2.HeaderContentType, cfg.MDNContentType)
	}
	if req.MDN.Mode == as2.MDNAsync {
		return &as2Reply{status: status, async: req.MDN.URL, mdnHdr: h, mdn: b}
	}
	return &as2Reply{status: status, header: h, body: b}
}

func textHeader() http.Header {
	return http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
}

// write sends the answer, then the asynchronous MDN if there is one.
func (a *as2Reply) write(x *exchange, cfg *AS2Config) {
	h := x.w.Header()
	for k, v := range a.header {
		h[k] = v
	}
	if !cfg.Chunked || len(a.body) == 0 {
		h.Set("Content-Length", strconv.Itoa(len(a.body)))
		x.w.WriteHeader(a.status)
		// A write error means the client left; the exchange is over either way.
		_, _ = x.w.Write(a.body)
	} else {
		// Without a Content-Length, a flush before the handler returns makes net/http send
		// the rest in chunks.
		x.w.WriteHeader(a.status)
		half := len(a.body) / 2
		_, _ = x.w.Write(a.body[:half])
		_ = http.NewResponseController(x.w).Flush()
		_, _ = x.w.Write(a.body[half:])
	}
	if a.async == "" {
		return
	}
	// The response is complete (its length is known), so the sender has its 200 before the
	// MDN leaves, as with a real partner's queue. The MDN is posted in the exchange so that
	// Close waits for it; it is abandoned when the partner closes, not when the sender
	// drops the connection that carried the message.
	_ = http.NewResponseController(x.w).Flush()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-x.p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	hc := cfg.MDNClient
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{}}
		defer hc.CloseIdleConnections()
	}
	c := &as2.Client{HTTP: hc}
	if err := c.SendMDN(ctx, a.async, a.mdnHdr, a.mdn); err != nil {
		// Whether the MDN arrived is for the test to see at its receiver; the reason goes
		// to the log.
		x.p.logf("sending the asynchronous MDN to %s: %v", a.async, err)
	}
}

// logf writes to the test's log, unless the test is over.
func (p *Partner) logf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.tb.Logf("as2test: "+format, args...)
	}
}
