package as2

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Request is what the AS2 headers of an inbound POST say (RFC 4130 §6), read before its body.
type Request struct {
	From, To  string // AS2-From and AS2-To, unquoted
	MessageID string // as received, angle brackets kept
	Subject   string
	Header    http.Header
	// MDN is what the sender asks for: no MDN when it sent no Disposition-Notification-To,
	// an asynchronous one when it gave a Receipt-Delivery-Option.
	MDN MDNRequest
	// MDNOptions is the Disposition-Notification-Options as received.
	MDNOptions DispositionOptions
	RemoteAddr string
}

// RequestError reports AS2 headers that are missing or malformed; a receiver answers 400.
type RequestError struct {
	Header string
	Err    error
}

func (e *RequestError) Error() string { return fmt.Sprintf("as2: header %s: %v", e.Header, e.Err) }

func (e *RequestError) Unwrap() error { return e.Err }

// ParseRequest reads the AS2 headers of r. It does not read the body.
func ParseRequest(r *http.Request) (*Request, error) {
	req := &Request{Header: r.Header, RemoteAddr: r.RemoteAddr, Subject: decodeHeaderWords(r.Header.Get(HeaderSubject))}
	var err error
	if req.From, err = requiredID(r.Header, HeaderAS2From); err != nil {
		return nil, err
	}
	if req.To, err = requiredID(r.Header, HeaderAS2To); err != nil {
		return nil, err
	}
	req.MessageID = strings.TrimSpace(r.Header.Get(HeaderMessageID))
	if req.MessageID == "" {
		return nil, &RequestError{Header: HeaderMessageID, Err: errors.New("missing")}
	}
	if req.MDN, req.MDNOptions, err = ReadMDNRequest(r.Header); err != nil {
		return nil, err
	}
	return req, nil
}

// ReadMDNRequest reads what a message asks of its receipt from its headers: no MDN without
// Disposition-Notification-To, an asynchronous one with a Receipt-Delivery-Option, signed
// when Disposition-Notification-Options asks for pkcs7-signature.
func ReadMDNRequest(h http.Header) (MDNRequest, DispositionOptions, error) {
	var req MDNRequest
	var opts DispositionOptions
	to := strings.TrimSpace(h.Get(HeaderDispositionNotificationTo))
	if to == "" {
		return req, opts, nil
	}
	req = MDNRequest{Mode: MDNSync, To: to}
	if u := strings.TrimSpace(h.Get(HeaderReceiptDeliveryOption)); u != "" {
		req.Mode, req.URL = MDNAsync, u
	}
	if v := h.Get(HeaderDispositionNotificationOptions); v != "" {
		var err error
		if opts, err = ParseDispositionOptions(v); err != nil {
			return req, opts, &RequestError{Header: HeaderDispositionNotificationOptions, Err: err}
		}
		req.Signed = opts.SignedReceipt()
		req.MICAlgs = opts.MICAlgs()
	}
	return req, opts, nil
}

func requiredID(h http.Header, name string) (string, error) {
	v := h.Get(name)
	if strings.TrimSpace(v) == "" {
		return "", &RequestError{Header: name, Err: errors.New("missing")}
	}
	id, err := UnquoteID(v)
	if err != nil {
		return "", &RequestError{Header: name, Err: err}
	}
	return id, nil
}

func decodeHeaderWords(s string) string {
	if d, err := new(mime.WordDecoder).DecodeHeader(s); err == nil {
		return d
	}
	return s
}

// Agreement is what a receiver knows about one sender: keys, trust and limits.
type Agreement struct {
	// Unpack holds the station's decryption keys and the partner's certificates.
	Unpack UnpackOptions
	// MaxSize bounds the request body; a larger one is refused with 413. 0 means no bound.
	MaxSize int64
}

// Refusal is an error a Backend returns to refuse a message before its body is read; the
// Handler answers with its status and text.
type Refusal struct {
	Status int    // e.g. 403 for an unknown AS2-From / AS2-To pair
	Reason string // a plain-text explanation for the sender's operator
}

func (e *Refusal) Error() string { return fmt.Sprintf("as2: refused (%d): %s", e.Status, e.Reason) }

// Reply is what the receiver answers to a message: a synchronous MDN, or an empty 200.
type Reply struct {
	Header http.Header
	Body   []byte
}

// Backend is the receiver behind a Handler: the gateway. The Handler speaks HTTP and AS2;
// the Backend decides, stores, and builds the MDN.
type Backend interface {
	// Agreement is called with the AS2 headers before the body is read. A *Refusal (or any
	// error, answered with 403) refuses the message.
	Agreement(ctx context.Context, req *Request) (*Agreement, error)
	// Receive is called with the whole request body, spooled as received, and the result of
	// Unpack: in, or the *UnpackError that stopped it. It must store what it needs before it
	// returns, because the reply may tell the sender that the message is safe. An error is
	// answered with 503 so that the sender tries again.
	Receive(ctx context.Context, req *Request, wire *Spool, in *Incoming, unpackErr error) (*Reply, error)
}

// Handler serves the AS2 endpoint: POST of messages and of asynchronous MDNs.
type Handler struct {
	Backend Backend
	// SpoolDir and SpoolMemory control where request bodies and layers are spooled.
	SpoolDir    string
	SpoolMemory int
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		textReply(w, http.StatusMethodNotAllowed, "AS2 messages are sent with POST")
		return
	}
	req, err := ParseRequest(r)
	if err != nil {
		textReply(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	ag, err := h.Backend.Agreement(ctx, req)
	if err != nil {
		var ref *Refusal
		if errors.As(err, &ref) {
			textReply(w, ref.Status, ref.Reason)
		} else {
			textReply(w, http.StatusForbidden, err.Error())
		}
		return
	}
	if ag.MaxSize > 0 && r.ContentLength > ag.MaxSize {
		textReply(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the message is %d bytes; this receiver accepts at most %d", r.ContentLength, ag.MaxSize))
		return
	}
	wire := NewSpool(h.SpoolDir, h.SpoolMemory)
	defer wire.Close()
	body := io.Reader(r.Body)
	if ag.MaxSize > 0 {
		body = io.LimitReader(r.Body, ag.MaxSize+1)
	}
	if _, err := wire.ReadFrom(body); err != nil {
		// The sender broke off or the body could not be stored: nothing was accepted.
		textReply(w, http.StatusBadRequest, "reading the message body: "+err.Error())
		return
	}
	if ag.MaxSize > 0 && wire.Size() > ag.MaxSize {
		textReply(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the message is larger than the %d bytes this receiver accepts", ag.MaxSize))
		return
	}
	opts := ag.Unpack
	if opts.SpoolDir == "" {
		opts.SpoolDir = h.SpoolDir
	}
	if opts.SpoolMemory == 0 {
		opts.SpoolMemory = h.SpoolMemory
	}
	if len(opts.MICAlgs) == 0 {
		opts.MICAlgs = req.MDN.MICAlgs
	}
	in, uerr := Unpack(r.Header, wire.Open(), &opts)
	if in != nil {
		defer in.Close()
	}
	reply, err := h.Backend.Receive(ctx, req, wire, in, uerr)
	if err != nil {
		textReply(w, http.StatusServiceUnavailable, "the message could not be stored; send it again later")
		return
	}
	if reply == nil || len(reply.Body) == 0 {
		for k, v := range replyHeader(reply) {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return
	}
	for k, v := range reply.Header {
		w.Header()[k] = v
	}
	// QUIRK: libas2 cannot read a chunked MDN: always give the length.
	w.Header().Set("Content-Length", strconv.Itoa(len(reply.Body)))
	w.WriteHeader(http.StatusOK)
	w.Write(reply.Body)
}

func replyHeader(r *Reply) http.Header {
	if r == nil {
		return nil
	}
	return r.Header
}

func textReply(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(msg)+1))
	w.WriteHeader(status)
	io.WriteString(w, msg+"\n")
}

// NewMDN returns the MDN that answers req with disposition d: Final-Recipient the AS2-To,
// Original-Message-ID the request's, and the MIC of in when the message could be read.
func NewMDN(req *Request, in *Incoming, d Disposition, reportingUA string) *MDN {
	m := &MDN{
		ReportingUA:       reportingUA,
		OriginalRecipient: req.To,
		FinalRecipient:    req.To,
		OriginalMessageID: req.MessageID,
		Disposition:       d,
	}
	if in != nil && !in.MIC.IsZero() {
		mic := in.MIC
		m.ReceivedMIC = &mic
	}
	return m
}

// MDNSigner signs MDNs: the station's signing identity.
type MDNSigner struct {
	Certificate *x509.Certificate
	Key         crypto.Signer
	PSS         bool
	Now         func() time.Time // nil: time.Now
	Rand        io.Reader        // nil: crypto/rand
}

// EncodeMDN writes m as the HTTP headers and body of a receipt, signed when req asked for a
// signed receipt and s is given. from is our AS2 name (the MDN's AS2-From), to the sender's.
// The signature uses the first MIC algorithm the sender offered, else SHA-256.
func EncodeMDN(m *MDN, req *Request, s *MDNSigner, from string) (http.Header, []byte, error) {
	e, err := BuildMDN(m, "")
	if err != nil {
		return nil, nil, err
	}
	h := http.Header{}
	h.Set(HeaderAS2Version, AS2Version)
	h.Set(HeaderAS2From, QuoteID(from))
	h.Set(HeaderAS2To, QuoteID(req.From))
	h.Set(HeaderMessageID, NewMessageID(messageIDDomain(from)))
	h.Set(HeaderMIMEVersion, "1.0")
	h.Set(HeaderSubject, "Message Disposition Notification")
	if !req.MDN.Signed || s == nil {
		h.Set(HeaderContentType, e.Header.Get(HeaderContentType))
		return h, e.Body(), nil
	}
	alg := MICAlgSHA256
	if len(req.MDN.MICAlgs) > 0 && req.MDN.MICAlgs[0].Valid() {
		alg = req.MDN.MICAlgs[0]
	}
	now := s.Now
	if now == nil {
		now = time.Now
	}
	rnd := s.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	body := NewSpool("", maxSignaturePart)
	defer body.Close()
	ct, _, err := writeSigned(body, SpoolBytes(e.Raw), &signer{alg: alg, pss: s.PSS, cert: s.Certificate, key: s.Key, now: now, rand: rnd})
	if err != nil {
		return nil, nil, err
	}
	b, _ := body.Bytes()
	h.Set(HeaderContentType, ct)
	return h, append([]byte(nil), b...), nil
}

// messageIDDomain makes a Message-ID domain from an AS2 name.
func messageIDDomain(id string) string {
	d := strings.Map(func(r rune) rune {
		if r < 0x80 && (r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return r
		}
		return -1
	}, id)
	if d == "" {
		return "as2gate"
	}
	return d
}
