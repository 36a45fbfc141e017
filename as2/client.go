package as2

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
)

// DefaultMaxMDNSize bounds the body of a synchronous MDN a Client reads.
const DefaultMaxMDNSize = 1 << 20

// Client sends AS2 messages over HTTP or HTTPS. The seam is the *http.Client: its Transport
// carries TLS trust, client certificates, proxies, source addresses and timeouts.
type Client struct {
	// HTTP sends the requests; nil means http.DefaultClient. Redirects are never
	// followed, whatever its CheckRedirect says: a redirect is reported as an *HTTPError.
	HTTP *http.Client
	// MaxMDNSize bounds a synchronous MDN body; 0 means DefaultMaxMDNSize.
	MaxMDNSize int64
}

// SendOptions say how to check the answer to a message.
type SendOptions struct {
	// Header holds request headers added last (authorization, for example), replacing any of
	// the same name in the message's headers.
	Header http.Header
	// Trusted are the partner's certificates that may sign its MDNs.
	Trusted []*x509.Certificate
}

// Response is what the partner answered to a message.
type Response struct {
	StatusCode int
	Header     http.Header
	// Body is the synchronous MDN exactly as received (for the archive), or nil.
	Body []byte
	// Receipt is the synchronous MDN, read and checked; nil when none was asked for.
	Receipt *Receipt
}

// Send POSTs msg to url. When msg asks for a synchronous MDN, Send reads it, verifies its
// signature against opts.Trusted, and checks it answers msg: same Original-Message-ID, a
// positive disposition, and the Received-Content-MIC of msg.
//
// A failure is one of the typed errors of this package: *TransportError (nothing or not all
// was answered), *HTTPError, ErrMDNMissing, *MDNError, *SignatureError, *DispositionError or
// *MICMismatchError. The Response is returned along with the error whenever the partner
// answered at all, so that the caller can archive what came back.
func (c *Client) Send(ctx context.Context, url string, msg *Message, opts *SendOptions) (*Response, error) {
	if opts == nil {
		opts = &SendOptions{}
	}
	hc := http.DefaultClient
	if c.HTTP != nil {
		hc = c.HTTP
	}
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	var stage atomic.Value // the step under way, for TransportError.Op
	stage.Store("connect")
	var sent atomic.Bool
	trace := &httptrace.ClientTrace{
		DNSStart:          func(httptrace.DNSStartInfo) { stage.Store("dns lookup") },
		ConnectStart:      func(string, string) { stage.Store("connect") },
		TLSHandshakeStart: func() { stage.Store("tls handshake") },
		GotConn:           func(httptrace.GotConnInfo) { stage.Store("write request") },
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				sent.Store(true)
				stage.Store("read response")
			}
		},
	}
	ctx, certReq := withCertRequest(ctx)
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, url, msg.Body.Open())
	if err != nil {
		return nil, fmt.Errorf("as2: partner URL %q: %w", url, err)
	}
	req.ContentLength = msg.Body.Size()
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(msg.Body.Open()), nil }
	for name, values := range msg.Header {
		req.Header[name] = values
	}
	for name, values := range opts.Header {
		req.Header[http.CanonicalHeaderKey(name)] = values
	}

	resp, err := noRedirect.Do(req)
	if err != nil {
		return nil, &TransportError{Op: stage.Load().(string), Sent: sent.Load(), ClientCertificateMissing: certReq.missing(), Err: err}
	}
	defer resp.Body.Close()
	out := &Response{StatusCode: resp.StatusCode, Header: resp.Header}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return out, NewHTTPError(resp)
	}
	if msg.MDN.Mode != MDNSync {
		io.Copy(io.Discard, io.LimitReader(resp.Body, DefaultMaxMDNSize))
		return out, nil
	}
	max := c.MaxMDNSize
	if max <= 0 {
		max = DefaultMaxMDNSize
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return out, &TransportError{Op: "read MDN", Sent: true, Err: err}
	}
	if int64(len(body)) > max {
		return out, &MDNError{Reason: fmt.Sprintf("the MDN is larger than %d bytes", max)}
	}
	out.Body = body
	if len(bytes.TrimSpace(body)) == 0 {
		return out, ErrMDNMissing
	}
	rc, err := ReadReceipt(resp.Header, body, opts.Trusted)
	if err != nil {
		return out, err
	}
	out.Receipt = rc
	return out, msg.Check(rc)
}

// ErrMDNUnsigned reports an unsigned MDN where a signed one was asked for. It comes wrapped
// in a *SignatureError.
var ErrMDNUnsigned = errors.New("as2: the MDN is not signed although a signed MDN was requested")

// Check tells whether a receipt answers msg: signed if a signed receipt was asked for, for
// the same Message-ID, positive (a positive disposition and no Failure or Error field), and
// with the MIC msg expects. A positive MDN without a readable MIC is accepted only when
// unsigned receipts were asked for (some products omit it there).
func (msg *Message) Check(rc *Receipt) error {
	if msg.MDN.Signed && rc.Signer == nil {
		return &SignatureError{Err: ErrMDNUnsigned}
	}
	m := rc.MDN
	if m.OriginalMessageID != "" && NormalizeMessageID(m.OriginalMessageID) != NormalizeMessageID(msg.MessageID) {
		return &MDNError{Reason: fmt.Sprintf("the MDN answers message %s, not %s", m.OriginalMessageID, msg.MessageID)}
	}
	// A "processed" disposition with a Failure or Error field is not a success either.
	if !m.Positive() {
		return &DispositionError{Disposition: m.Disposition, MDN: m}
	}
	if m.ReceivedMIC == nil {
		if !msg.MDN.Signed {
			return nil
		}
		if m.rawMIC != "" {
			_, err := ParseMIC(m.rawMIC)
			return &MDNError{Reason: "unreadable Received-Content-MIC", Err: err}
		}
		return &MICMismatchError{Want: msg.MIC}
	}
	if want, ok := msg.micFor(m.ReceivedMIC.Alg); ok && want.Equal(*m.ReceivedMIC) {
		return nil
	}
	return &MICMismatchError{Want: msg.MIC, Got: *m.ReceivedMIC}
}

// micFor returns the message's MIC in algorithm alg, if it has one.
func (msg *Message) micFor(alg crypto.Hash) (MIC, bool) {
	if msg.MIC.Alg == alg {
		return msg.MIC, true
	}
	for _, m := range msg.MICs {
		if m.Alg == alg {
			return m, true
		}
	}
	return MIC{}, false
}
