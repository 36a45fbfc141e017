package as2

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The errors below report facts about an exchange with a partner. Deciding what a fact means
// (retry now, later, never) belongs to the caller: read them with errors.As and errors.Is,
// never by matching their text.

// MaxErrorBody is how much of an HTTP error response body an HTTPError keeps.
const MaxErrorBody = 4 << 10

// ErrMDNMissing reports a 2xx response without the synchronous MDN that the request asked for.
// The partner may hold the message.
var ErrMDNMissing = errors.New("as2: the response carries no MDN although a synchronous MDN was requested")

// HTTPError reports an HTTP response whose status is not a success.
type HTTPError struct {
	StatusCode int         // e.g. 503
	Status     string      // the status line as received, e.g. "503 Service Unavailable"
	Header     http.Header // the response headers (Retry-After, WWW-Authenticate, ...)
	Body       []byte      // at most MaxErrorBody bytes of the response body
	Location   string      // the Location header of a redirect, resolved against the request URL
}

// NewHTTPError builds an HTTPError from resp, reading at most MaxErrorBody bytes of its body.
// It does not close the body. A body that fails to read midway keeps what was read.
func NewHTTPError(resp *http.Response) *HTTPError {
	e := &HTTPError{StatusCode: resp.StatusCode, Status: resp.Status, Header: resp.Header}
	if resp.Body != nil {
		e.Body, _ = io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody))
	}
	if loc, err := resp.Location(); err == nil {
		e.Location = loc.String()
	}
	return e
}

func (e *HTTPError) Error() string {
	var b strings.Builder
	status := e.Status
	if status == "" {
		status = strconv.Itoa(e.StatusCode) + " " + http.StatusText(e.StatusCode)
	}
	fmt.Fprintf(&b, "as2: partner answered HTTP %s", strings.TrimSpace(status))
	if e.Location != "" {
		fmt.Fprintf(&b, " (Location: %s)", e.Location)
	}
	if s := excerpt(e.Body, 200); s != "" {
		fmt.Fprintf(&b, ": %s", s)
	}
	return b.String()
}

// RetryAfter returns the wait the partner asked for in a Retry-After header, in seconds or as
// an HTTP date relative to now. It reports false when there is no usable header.
func (e *HTTPError) RetryAfter(now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(e.Header.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		const maxSeconds = int64(365 * 24 * time.Hour / time.Second)
		return time.Duration(min(n, maxSeconds)) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

// BodyExcerpt returns the start of the response body as one printable line of at most n
// characters, for logs and operator screens.
func (e *HTTPError) BodyExcerpt(n int) string { return excerpt(e.Body, n) }

// excerpt returns the start of b as one printable line of at most n runes.
func excerpt(b []byte, n int) string {
	var sb strings.Builder
	space := false
	for len(b) > 0 && n > 0 {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		switch {
		case r == utf8.RuneError && size <= 1, r < 0x20, r == 0x7f:
			if r == '\n' || r == '\r' || r == '\t' {
				space = true
				continue
			}
			r = '?'
		case r == ' ':
			space = true
			continue
		}
		if space && sb.Len() > 0 {
			sb.WriteByte(' ')
			n--
		}
		space = false
		sb.WriteRune(r)
		n--
	}
	if len(b) > 0 {
		sb.WriteString("…")
	}
	return sb.String()
}

// DispositionError reports an MDN whose disposition is not a success: the partner received
// the message and refused it, or failed to process it.
type DispositionError struct {
	Disposition Disposition
	MDN         *MDN // the whole MDN, for its text and fields; may be nil
}

func (e *DispositionError) Error() string {
	s := "as2: negative MDN: " + e.Disposition.String()
	if e.MDN != nil {
		for _, v := range e.MDN.Failures {
			s += "; Failure: " + v
		}
		for _, v := range e.MDN.Errors {
			s += "; Error: " + v
		}
	}
	return s
}

// MICMismatchError reports an MDN whose Received-Content-MIC differs from the MIC of the
// message sent. A zero Got means the MDN carried no MIC.
type MICMismatchError struct {
	Want MIC // computed when the message was sent
	Got  MIC // returned in the MDN
}

func (e *MICMismatchError) Error() string {
	if e.Got.Digest == nil {
		return fmt.Sprintf("as2: MIC mismatch: sent %s, the MDN returned no MIC", e.Want)
	}
	return fmt.Sprintf("as2: MIC mismatch: sent %s, the MDN returned %s", e.Want, e.Got)
}

// MDNError reports an MDN that could not be read or does not answer the message it should.
type MDNError struct {
	Reason string // what is wrong, in words
	Err    error  // the underlying error, if any
}

func (e *MDNError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("as2: unreadable MDN: %s: %v", e.Reason, e.Err)
	}
	return "as2: unreadable MDN: " + e.Reason
}

func (e *MDNError) Unwrap() error { return e.Err }

// SignatureError reports a signature on a message or an MDN that does not verify. Err is the
// verification error from package cms.
type SignatureError struct {
	Err error
}

func (e *SignatureError) Error() string {
	return fmt.Sprintf("as2: signature verification failed: %v", e.Err)
}

func (e *SignatureError) Unwrap() error { return e.Err }

// TransportError reports a failure below HTTP: DNS, connect, TLS, or the connection breaking
// while the request was written or the response read. Sent tells whether the whole request
// had been written: if so, the partner may hold the message.
type TransportError struct {
	Op   string // what was under way: "dial", "write request", "read response", ...
	Sent bool   // the request was fully written before the failure
	// ClientCertificateMissing: the server asked for a TLS client certificate and none was
	// given (see ObserveClientCertificateRequests). A failure then is most likely the
	// server refusing the connection for it, however it shows.
	ClientCertificateMissing bool
	Err                      error // the net, tls, x509 or url error
}

func (e *TransportError) Error() string {
	sent := "request not fully sent"
	if e.Sent {
		sent = "request fully sent"
	}
	return fmt.Sprintf("as2: %s: %v (%s)", e.Op, e.Err, sent)
}

func (e *TransportError) Unwrap() error { return e.Err }

// UnpackError reports an inbound message that could not be unpacked. Description is the
// disposition modifier text to answer with in a negative MDN, e.g. "decryption-failed".
type UnpackError struct {
	Layer       string // the layer that failed: "decrypt", "decompress", "verify", "mime", ...
	Description string // e.g. DecryptionFailed
	Err         error
}

func (e *UnpackError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("as2: %s: %s", e.Layer, e.Description)
	}
	return fmt.Sprintf("as2: %s: %s: %v", e.Layer, e.Description, e.Err)
}

func (e *UnpackError) Unwrap() error { return e.Err }

// UnsupportedMICAlgError reports a MIC algorithm name that is known but not supported (md5)
// or not known at all. A receiver answers it with "failed/failure: unsupported MIC-algorithms"
// (RFC 4130 §7.5.3).
type UnsupportedMICAlgError struct {
	Name string // as written by the partner
}

func (e *UnsupportedMICAlgError) Error() string {
	if strings.EqualFold(strings.TrimSpace(e.Name), "md5") {
		return `as2: MIC algorithm "md5" is not supported: MD5 is obsolete (use sha-256)`
	}
	return fmt.Sprintf("as2: unknown MIC algorithm %q (supported: sha-1, sha-256, sha-384, sha-512)", e.Name)
}
