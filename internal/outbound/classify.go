package outbound

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/internal/netpolicy"
	"github.com/as2gate/as2gate/internal/store"
)

// Failure codes (R-FAIL-1, DESIGN.md §3). A code is stable: the API, the console, webhooks
// and operators' scripts rely on it. Each code belongs to exactly one class; Describe gives
// both. HTTP statuses without a constant of their own have the code "http_" + the status.
const (
	// transient: the partner did not get the message; retried under the failed policy.
	CodeConnectRefused     = "connect_refused"
	CodeConnectTimeout     = "connect_timeout"
	CodeConnectUnreachable = "connect_unreachable"
	CodeConnectReset       = "connect_reset" // cut before any of the request was written
	CodeDNSTemporary       = "dns_temporary"
	CodeHTTP408            = "http_408"
	CodeHTTP429            = "http_429"
	CodeHTTP500            = "http_500"
	CodeHTTP502            = "http_502"
	CodeHTTP503            = "http_503"
	CodeHTTP504            = "http_504"
	CodeUnknownNotSent     = "unknown_not_sent"

	// incomplete: the partner may hold the message; retried only if the partner's
	// incomplete policy is enabled.
	CodeReadTimeout      = "read_timeout"
	CodeConnectionReset  = "connection_reset"
	CodeConnectionClosed = "connection_closed"
	CodeBrokenPipe       = "broken_pipe"
	CodeMDNMissing       = "mdn_missing"
	CodeMDNUnreadable    = "mdn_unreadable"
	CodeAsyncMDNTimeout  = "async_mdn_timeout"
	CodeUnknown          = "unknown"

	// permanent: never retried.
	CodeDNSNotFound           = "dns_not_found"
	CodeTLSUntrusted          = "tls_untrusted"
	CodeTLSHostname           = "tls_hostname"
	CodeTLSProtocol           = "tls_protocol"
	CodeTLSClientCertRequired = "tls_client_cert_required"
	CodeHTTP301               = "http_301"
	CodeHTTP302               = "http_302"
	CodeHTTP303               = "http_303"
	CodeHTTP307               = "http_307"
	CodeHTTP308               = "http_308"
	CodeHTTP400               = "http_400"
	CodeHTTP401               = "http_401"
	CodeHTTP403               = "http_403"
	CodeHTTP404               = "http_404"
	CodeHTTP413               = "http_413"
	CodeHTTP422               = "http_422"
	CodeMDNNegative           = "mdn_negative"
	CodeMDNUnsigned           = "mdn_unsigned"
	CodeMDNSignatureInvalid   = "mdn_signature_invalid"
	CodeMICMismatch           = "mic_mismatch"
	CodeConfig                = "config"
)

// ErrAsyncMDNTimeout reports that the asynchronous MDN a message asked for did not arrive
// before the partner's async_mdn deadline. Classify makes it incomplete: the partner may
// hold the message and only its receipt is missing.
var ErrAsyncMDNTimeout = errors.New("outbound: no asynchronous MDN arrived before the deadline")

// ConfigError reports a message that cannot be sent as the station and partner are
// configured: no certificate to encrypt for, a key that cannot sign, an algorithm the
// protocol library does not implement. The send worker wraps packing errors in it; Classify
// makes it the permanent code "config", since sending again cannot help until the
// configuration changes.
type ConfigError struct {
	What string // what could not be done, e.g. "encrypting for partner PARTNERX"
	Err  error
}

func (e *ConfigError) Error() string {
	if e.Err == nil {
		return "outbound: " + e.What
	}
	return fmt.Sprintf("outbound: %s: %v", e.What, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// Failure is a failed attempt, classified: what the queue does with it (Class), what the
// operator reads (Code, Action), and the facts it was decided on. It maps onto store.Attempt.
type Failure struct {
	Class       string      // store.ClassTransient, store.ClassIncomplete or store.ClassPermanent
	Code        string      // one of the Code constants, or "http_" + status
	HTTPStatus  int         // the partner's HTTP status; 0 when it gave none
	Header      http.Header // the response headers, when there was a response
	BodyExcerpt string      // the start of an error response body, as one printable line
	Error       string      // the error as the program saw it
	Action      string      // what to do about it, in plain words, naming the facts
	// RetryAfter is the wait the partner asked for (Retry-After on a transient HTTP error);
	// give it to retry.Policy.NextAfter.
	RetryAfter time.Duration
	Location   string // the redirect target of a 3xx answer
}

// maxExcerpt bounds Failure.BodyExcerpt, in runes.
const maxExcerpt = 500

// Classify turns the error of one attempt into a Failure. It reads the typed errors of
// package as2 and the net, tls and x509 errors they wrap with errors.As and errors.Is, never
// by their text; now resolves a Retry-After given as a date.
//
// Shutdown is not a failure: a caller that cancelled its own context must tell that apart
// (context.Cause) before calling Classify, which would report a cancellation as "unknown".
// An error Classify does not recognise gets the safe class: incomplete when the request may
// have reached the partner, transient when it certainly did not. A nil err gives the zero
// Failure.
func Classify(err error, now time.Time) Failure {
	if err == nil {
		return Failure{}
	}
	f := Failure{Error: err.Error()}
	var x facts
	f.Code = classify(err, now, &f, &x)
	f.Class, _ = Describe(f.Code)
	if f.Class != store.ClassTransient {
		f.RetryAfter = 0
	}
	f.Action = action(f.Code, x)
	return f
}

// ClassifyResponse is Classify for the result of as2.Client.Send: when the partner answered
// 2xx but the MDN failed, the response's status and headers are recorded too.
func ClassifyResponse(resp *as2.Response, err error, now time.Time) Failure {
	f := Classify(err, now)
	if err != nil && resp != nil && f.HTTPStatus == 0 {
		f.HTTPStatus = resp.StatusCode
		f.Header = resp.Header.Clone()
	}
	return f
}

// facts are what an action names. Empty fields are left out of the text.
type facts struct {
	host        string // host:port as in the partner URL
	addr        string // the address dialled, when it differs from host
	private     string // why addr is not reachable from the internet, if it is not
	status      string // the HTTP status line
	statusCode  int
	location    string
	retryAfter  time.Duration
	realm       string // WWW-Authenticate challenge
	excerpt     string
	alert       string // the TLS alert received
	alertCode   uint8
	recordError bool // the server did not speak TLS
	certNames   string
	certDetail  string
	disposition as2.Disposition
	detail      string
	wantMIC     string
	gotMIC      string
}

// classify returns the code for err and fills in f's HTTP fields and the facts.
func classify(err error, now time.Time, f *Failure, x *facts) string {
	x.host, x.addr = remoteOf(err)
	if errors.Is(err, ErrAsyncMDNTimeout) {
		return CodeAsyncMDNTimeout
	}
	if de, ok := errors.AsType[*as2.DispositionError](err); ok {
		x.disposition = de.Disposition
		return CodeMDNNegative
	}
	if me, ok := errors.AsType[*as2.MICMismatchError](err); ok {
		x.wantMIC = me.Want.String()
		if me.Got.Digest != nil {
			x.gotMIC = me.Got.String()
		}
		return CodeMICMismatch
	}
	if se, ok := errors.AsType[*as2.SignatureError](err); ok {
		if errors.Is(se, as2.ErrMDNUnsigned) {
			return CodeMDNUnsigned
		}
		if ue, ok := errors.AsType[*cms.UntrustedSignerError](se); ok && ue.Certificate != nil {
			c := ue.Certificate
			x.detail = fmt.Sprintf("the MDN is signed with %q (serial %s, valid until %s)",
				c.Subject.String(), c.SerialNumber.Text(16), c.NotAfter.UTC().Format(time.DateOnly))
		} else if ve, ok := errors.AsType[*cms.VerifyError](se); ok {
			x.detail = ve.Reason
		}
		return CodeMDNSignatureInvalid
	}
	if errors.Is(err, as2.ErrMDNMissing) {
		return CodeMDNMissing
	}
	if me, ok := errors.AsType[*as2.MDNError](err); ok {
		x.detail = me.Reason
		return CodeMDNUnreadable
	}
	if he, ok := errors.AsType[*as2.HTTPError](err); ok {
		return classifyHTTP(he, now, f, x)
	}
	if ce, ok := errors.AsType[*ConfigError](err); ok {
		x.detail = ce.Error()
		return CodeConfig
	}
	if ae, ok := errors.AsType[*netpolicy.AddressError](err); ok {
		// A Receipt-Delivery-Option into a private network: retrying cannot change that.
		x.detail = ae.Error()
		return CodeConfig
	}
	if _, ok := errors.AsType[*cms.UnsupportedAlgorithmError](err); ok {
		x.detail = err.Error()
		return CodeConfig
	}
	if _, ok := errors.AsType[*as2.UnsupportedMICAlgError](err); ok {
		x.detail = err.Error()
		return CodeConfig
	}
	if ue, ok := errors.AsType[*url.Error](err); ok && ue.Op == "parse" {
		x.detail = err.Error()
		return CodeConfig
	}
	return classifyTransport(err, x)
}

func classifyHTTP(he *as2.HTTPError, now time.Time, f *Failure, x *facts) string {
	f.HTTPStatus = he.StatusCode
	f.Header = he.Header.Clone()
	f.BodyExcerpt = he.BodyExcerpt(maxExcerpt)
	f.Location = he.Location
	if d, ok := he.RetryAfter(now); ok {
		f.RetryAfter = d
	}
	x.statusCode = he.StatusCode
	x.status = strings.TrimSpace(he.Status)
	if x.status == "" {
		x.status = strings.TrimSpace(strconv.Itoa(he.StatusCode) + " " + http.StatusText(he.StatusCode))
	}
	x.location = he.Location
	x.retryAfter = f.RetryAfter
	x.realm = he.Header.Get("WWW-Authenticate")
	x.excerpt = he.BodyExcerpt(120)
	return httpCode(he.StatusCode)
}

// httpCode returns the code of an HTTP status; statuses outside 300–599 (a 1xx or 2xx
// cannot be an error) are not HTTP failures Classify knows.
func httpCode(status int) string {
	if status < 300 || status > 599 {
		return CodeUnknown
	}
	return "http_" + strconv.Itoa(status)
}

// classifyTransport handles failures below HTTP: DNS, connect, TLS, and the connection
// breaking.
func classifyTransport(err error, x *facts) string {
	started := requestStarted(err)

	// TLS first: a certificate_required alert arrives after the request was written under
	// TLS 1.3, yet the server never accepted the connection, let alone the message.
	if he, ok := errors.AsType[x509.HostnameError](err); ok {
		x.certNames = certNames(he.Certificate)
		return CodeTLSHostname
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		x.certDetail = "is signed by an authority this gateway does not trust (self-signed, or a private CA)"
		return CodeTLSUntrusted
	}
	if ce, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		switch ce.Reason {
		case x509.Expired:
			x.certDetail = "has expired or is not valid yet"
			if ce.Cert != nil {
				x.certDetail = fmt.Sprintf("is valid from %s to %s only", ce.Cert.NotBefore.UTC().Format(time.DateOnly), ce.Cert.NotAfter.UTC().Format(time.DateOnly))
			}
		default:
			x.certDetail = "was rejected: " + ce.Detail
			if ce.Detail == "" {
				x.certDetail = "cannot be used for a server"
			}
		}
		return CodeTLSUntrusted
	}
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		x.certDetail = "did not verify"
		return CodeTLSUntrusted
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok || errors.Is(err, http.ErrSchemeMismatch) {
		x.recordError = true
		return CodeTLSProtocol
	}
	if te, ok := errors.AsType[*as2.TransportError](err); ok && te.ClientCertificateMissing {
		// The server asked for a client certificate and we had none to give: whatever the
		// error looks like (under TLS 1.3 often a broken pipe while writing), that is why.
		return CodeTLSClientCertRequired
	}
	if a, ok := tlsAlert(err); ok {
		x.alertCode, x.alert = a, tls.AlertError(a).Error()
		if clientCertAlert(a) {
			return CodeTLSClientCertRequired
		}
		return CodeTLSProtocol
	}

	if de, ok := errors.AsType[*net.DNSError](err); ok {
		if de.Name != "" {
			x.host = de.Name
		}
		if de.IsNotFound {
			return CodeDNSNotFound
		}
		return CodeDNSTemporary
	}

	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return CodeConnectRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EHOSTDOWN), errors.Is(err, syscall.ENETDOWN):
		return CodeConnectUnreachable
	case isTimeout(err), errors.Is(err, errLeaseEnding):
		// errLeaseEnding: the worker cut the send off before its claim ran out.
		if started {
			return CodeReadTimeout
		}
		return CodeConnectTimeout
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNABORTED):
		if started {
			return CodeConnectionReset
		}
		return CodeConnectReset
	case errors.Is(err, syscall.EPIPE):
		if started {
			return CodeBrokenPipe
		}
		return CodeConnectReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		if started {
			return CodeConnectionClosed
		}
		return CodeConnectReset
	}
	if started {
		return CodeUnknown
	}
	return CodeUnknownNotSent
}

// requestStarted tells whether any of the request may have left: then the partner may hold
// the message. Without evidence either way it answers yes, the safe side.
func requestStarted(err error) bool {
	// A failed dial is proof, whatever stage the caller reports (as2.Client.SendMDN reports
	// every failure as "send MDN").
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
		return false
	}
	if te, ok := errors.AsType[*as2.TransportError](err); ok {
		if te.Sent {
			return true
		}
		// The stages of as2.Client.Send before the connection is handed over for the
		// request. Any other stage (writing the request, "send MDN", a future one) may
		// have put bytes on the wire.
		switch te.Op {
		case "connect", "dns lookup", "tls handshake":
			return false
		}
		return true
	}
	return true
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	ne, ok := errors.AsType[net.Error](err)
	return ok && ne.Timeout()
}

// tlsAlert returns the TLS alert the partner sent to end the connection.
//
// QUIRK: crypto/tls (Go 1.26) reports a received alert as a *net.OpError with Op
// "remote error" whose Err is an unexported alert type, not a tls.AlertError (that one is
// only for QUIC), so errors.As cannot reach it. The unexported type is a uint8 numbered as
// on the wire (RFC 8446 §6); its number is read by reflection, and checked against the text
// tls.AlertError gives the same number, so that a change in crypto/tls makes this answer
// "no alert" rather than a wrong one.
func tlsAlert(err error) (uint8, bool) {
	if a, ok := errors.AsType[tls.AlertError](err); ok {
		return uint8(a), true
	}
	op, ok := errors.AsType[*net.OpError](err)
	if !ok || op.Op != "remote error" || op.Err == nil {
		return 0, false
	}
	v := reflect.ValueOf(op.Err)
	if v.Kind() != reflect.Uint8 || v.Type().PkgPath() != "crypto/tls" {
		return 0, false
	}
	a := uint8(v.Uint())
	if op.Err.Error() != tls.AlertError(a).Error() {
		return 0, false
	}
	return a, true
}

// TLS alerts (RFC 8446 §6.2, RFC 5246 §7.2). All but handshake_failure concern the client's
// certificate when a server sends them: the server is the only side that judges one.
const (
	alertHandshakeFailure       = 40
	alertNoCertificate          = 41 // SSL 3.0, still sent by some old stacks
	alertBadCertificate         = 42
	alertUnsupportedCertificate = 43
	alertCertificateRevoked     = 44
	alertCertificateExpired     = 45
	alertCertificateUnknown     = 46
	alertUnknownCA              = 48
	alertAccessDenied           = 49
	alertCertificateRequired    = 116
)

func clientCertAlert(a uint8) bool {
	switch a {
	case alertNoCertificate, alertBadCertificate, alertUnsupportedCertificate, alertCertificateRevoked,
		alertCertificateExpired, alertCertificateUnknown, alertUnknownCA, alertAccessDenied,
		alertCertificateRequired:
		return true
	}
	return false
}

func certNames(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, c.Subject.CommonName)
	}
	return strings.Join(names, ", ")
}

// remoteOf finds where the failed exchange went: the host and port of the URL, and the
// address dialled when the error names one.
func remoteOf(err error) (host, addr string) {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			host = u.Host
			if u.Port() == "" {
				switch u.Scheme {
				case "https":
					host = net.JoinHostPort(u.Hostname(), "443")
				case "http":
					host = net.JoinHostPort(u.Hostname(), "80")
				}
			}
		}
	}
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Addr != nil {
		addr = op.Addr.String()
	}
	if addr == host {
		addr = ""
	}
	if host == "" {
		host, addr = addr, ""
	}
	return host, addr
}

// PrivateAddressHint says why addr cannot be reached from the internet, or returns "" for a
// public address. A partner URL that leads to such an address works only from inside the
// partner's network (or this machine's, for loopback).
func PrivateAddressHint(addr netip.Addr) string {
	addr = addr.Unmap()
	switch {
	case !addr.IsValid():
		return ""
	case addr.IsLoopback():
		return addr.String() + " is a loopback address: it points at this machine, not at the partner"
	case addr.IsPrivate():
		return addr.String() + " is a private address (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7): it is reachable only inside a private network, such as the partner's LAN or a VPN"
	case addr.IsLinkLocalUnicast():
		return addr.String() + " is a link-local address: it is reachable only on the local network segment"
	case cgnat.Contains(addr):
		return addr.String() + " is a carrier-grade NAT address (100.64.0.0/10): it is not reachable from the internet"
	case addr.IsUnspecified():
		return addr.String() + " is the unspecified address and names no host"
	}
	return ""
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// HintPrivateAddress looks host up with resolve (for example net.DefaultResolver.LookupNetIP
// with network "ip", or a resolver inside the partner's VPN) and returns PrivateAddressHint
// for the first address that is not public, or "" when there is none or the lookup fails.
// It completes the action of a dns_not_found or connect failure when the console diagnoses
// a partner URL.
func HintPrivateAddress(ctx context.Context, host string, resolve func(ctx context.Context, host string) ([]netip.Addr, error)) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return PrivateAddressHint(a)
	}
	addrs, err := resolve(ctx, host)
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if s := PrivateAddressHint(a); s != "" {
			return s
		}
	}
	return ""
}
