package as2

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/as2gate/as2gate/cms"
)

// Receipt is an MDN received for one of our messages, read and, when signed, verified.
type Receipt struct {
	MDN *MDN
	// Signer is the verified signature of a signed MDN; nil for an unsigned one.
	Signer *cms.Signer
	// Entity is the multipart/report entity as received (what a signed MDN signs).
	Entity []byte
}

// ReadReceipt reads an MDN from the HTTP headers and body that carry it: a synchronous
// response, or the POST of an asynchronous MDN. A signed MDN must verify with one of trusted.
// Errors are *SignatureError for a signature that does not verify, *MDNError otherwise.
func ReadReceipt(h http.Header, body []byte, trusted []*x509.Certificate) (*Receipt, error) {
	s := SpoolBytes(body)
	in, err := Unpack(h, s.Open(), &UnpackOptions{Trusted: trusted, SpoolMemory: len(body) + 1})
	if err != nil {
		var se *SignatureError
		if errors.As(err, &se) {
			return nil, se
		}
		return nil, &MDNError{Reason: "the response cannot be read as an MDN", Err: err}
	}
	defer in.Close()
	if in.MDN == nil {
		return nil, &MDNError{Reason: fmt.Sprintf("the response is %q, not an MDN (multipart/report)", h.Get(HeaderContentType))}
	}
	return &Receipt{MDN: in.MDN, Signer: in.Signer(), Entity: in.MDNEntity}, nil
}

// SendMDN POSTs an asynchronous MDN (headers and body from EncodeMDN) to the URL the
// sender gave in Receipt-Delivery-Option (RFC 4130 §7.3). Errors are *TransportError or
// *HTTPError, like Send.
func (c *Client) SendMDN(ctx context.Context, url string, h http.Header, body []byte) error {
	hc := http.DefaultClient
	if c.HTTP != nil {
		hc = c.HTTP
	}
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("as2: MDN URL %q: %w", url, err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		return &TransportError{Op: "send MDN", Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return NewHTTPError(resp)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, DefaultMaxMDNSize))
	return nil
}
