// Package as2test provides a programmable fake AS2 trading partner for tests, in the spirit
// of net/http/httptest.
//
// A [Partner] is a real HTTP or HTTPS server on 127.0.0.1. It records every request it
// receives and answers it with the current [Behavior]: any HTTP status, a response built by
// the test (a good, garbled, unsigned or negative MDN, or one with a wrong MIC), or one of the
// ways a real partner fails below HTTP: stalling, resetting the connection part-way through
// the body, hanging up without an answer, or answering with bytes that are not HTTP. TLS
// options make the handshake fail the ways real partners make it fail: an untrusted
// certificate, a certificate for another host, a required client certificate, no common
// protocol version. [RefusedURL] gives an address where nothing listens.
//
// Each failure reaches the client as the error a real network produces (a *net.OpError
// wrapping syscall.ECONNRESET, a *tls.CertificateVerificationError, a client timeout, ...),
// so a sender's failure classification (RFC 4130 gives none; see the gateway's failure
// table) can be tested against the genuine article rather than against constructed errors.
package as2test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Path is the request path of a Partner's URL. The partner answers on every path and
// records the one used, so a test can check that a sender posts where it was told to.
const Path = "/as2"

// Partner is a fake AS2 trading partner listening on 127.0.0.1. Its methods are safe for
// concurrent use.
type Partner struct {
	// URL is the partner's AS2 endpoint: http://127.0.0.1:port/as2, or https:// with a
	// TLS option.
	URL string

	tb   testing.TB
	srv  *httptest.Server
	cert *x509.Certificate // nil without TLS

	// done is closed by Close. It cancels the context of every exchange in progress, which
	// releases the stalling behaviours before the server waits for its connections.
	done      chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	behavior Behavior
	requests []Request
	arrived  chan struct{} // closed and replaced each time a request is recorded
	closed   bool          // set once Close has returned: tb must not be used any more

	transports []*http.Transport // handed out by Client
}

// Request is what the partner received in one HTTP request.
type Request struct {
	Time             time.Time   // when the request's header had arrived
	Method           string      // POST for AS2 messages and asynchronous MDNs
	Path             string      // the request URI's path
	Host             string      // the Host header
	Header           http.Header // the request header, without Host and Transfer-Encoding
	ContentLength    int64       // the Content-Length header; -1 when absent (chunked)
	TransferEncoding []string    // "chunked" when the body came in chunks
	// Body holds the bytes of the body the partner read: all of it, or as much as the
	// behaviour read before it stopped (none for StallBeforeRead, n for ResetMidBody).
	Body []byte
	// Complete reports whether Body is the whole body, that is whether the partner read
	// it to its end without error.
	Complete bool
	// ClientCertificates are the certificates the client presented in the TLS
	// handshake, leaf first; empty over plain HTTP.
	ClientCertificates []*x509.Certificate
	// AS2 is what the AS2 behaviour read from the request; nil for other behaviours.
	AS2 *Received
}

// Option configures a Partner made by NewPartner.
type Option func(*config)

type config struct {
	behavior Behavior
	tls      *tlsConfig // nil for plain HTTP
}

// WithBehavior sets the partner's first behaviour. Without it the partner answers every
// request with an empty 200 OK, as Respond(http.StatusOK, nil, nil).
func WithBehavior(b Behavior) Option {
	return func(c *config) { c.behavior = b }
}

// NewPartner starts a fake partner on 127.0.0.1 and closes it when the test and its
// subtests have finished.
func NewPartner(tb testing.TB, opts ...Option) *Partner {
	tb.Helper()
	c := config{}
	for _, o := range opts {
		o(&c)
	}
	p := &Partner{
		tb:       tb,
		done:     make(chan struct{}),
		behavior: c.behavior,
		arrived:  make(chan struct{}),
	}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	// The server reports handshake failures and the like through ErrorLog: show them in
	// the test's log, where they explain a failing case, rather than on standard error.
	p.srv.Config.ErrorLog = log.New(logWriter{p}, "as2test: partner: ", 0)
	if c.tls != nil {
		p.cert = c.tls.apply(tb, p.srv)
		p.srv.StartTLS()
	} else {
		p.srv.Start()
	}
	p.URL = p.srv.URL + Path
	tb.Cleanup(p.Close)
	return p
}

// Close stops the partner: exchanges still stalling are dropped without an answer, and
// Close returns once every connection has ended. It is called by the test's cleanup and
// may be called earlier, more than once.
func (p *Partner) Close() {
	p.closeOnce.Do(func() {
		close(p.done)
		p.srv.Close()
		p.mu.Lock()
		p.closed = true
		transports := p.transports
		p.mu.Unlock()
		for _, tr := range transports {
			tr.CloseIdleConnections()
		}
	})
}

// SetBehavior sets what the partner does with the requests that arrive from now on. A
// request already being served keeps the behaviour it started with. A nil b restores the
// default, an empty 200 OK.
func (p *Partner) SetBehavior(b Behavior) {
	p.mu.Lock()
	p.behavior = b
	p.mu.Unlock()
}

// Requests returns the requests received so far, in the order they were recorded. Each
// request is recorded before the partner answers it or drops its connection, so once a
// client call has returned its request is in the list. The returned slice is the caller's;
// the bodies it refers to must not be modified.
func (p *Partner) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Request(nil), p.requests...)
}

// Await waits until at least n requests have been recorded and returns them. It lets a
// test act at the moment a request arrives (cancel a stalled client, change behaviour)
// without sleeping. It fails when ctx ends or the partner is closed first.
func (p *Partner) Await(ctx context.Context, n int) ([]Request, error) {
	for {
		p.mu.Lock()
		got, arrived := len(p.requests), p.arrived
		if got >= n {
			r := append([]Request(nil), p.requests...)
			p.mu.Unlock()
			return r, nil
		}
		p.mu.Unlock()
		select {
		case <-arrived:
		case <-ctx.Done():
			return nil, fmt.Errorf("as2test: %d of %d requests arrived: %w", got, n, context.Cause(ctx))
		case <-p.done:
			return nil, fmt.Errorf("as2test: partner closed after %d of %d requests", got, n)
		}
	}
}

// Certificate returns the partner's TLS server certificate, or nil when it speaks plain
// HTTP.
func (p *Partner) Certificate() *x509.Certificate { return p.cert }

// CertPool returns a pool holding the partner's TLS server certificate, for a client that
// pins it; nil when the partner speaks plain HTTP.
func (p *Partner) CertPool() *x509.CertPool {
	if p.cert == nil {
		return nil
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.cert)
	return pool
}

// Client returns a new HTTP client that trusts the partner's TLS certificate (and nothing
// else), presents no client certificate, and does not follow redirects, so that a 3xx
// answer reaches the caller as an AS2 sender must see it. Its transport is an
// *http.Transport of its own, which the test may adjust (a client certificate, TLS
// versions); its idle connections are closed with the partner.
func (p *Partner) Client() *http.Client {
	// No proxy from the environment: the partner is on loopback, as the sender under test
	// would reach it.
	tr := &http.Transport{}
	if p.cert != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: p.CertPool()}
	}
	p.mu.Lock()
	p.transports = append(p.transports, tr)
	p.mu.Unlock()
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// RefusedURL returns an AS2 URL on 127.0.0.1 where nothing listens, so that connecting to
// it is refused (syscall.ECONNREFUSED). It binds a free port and closes it again; another
// program on the machine could take the port in between, which is as unlikely as it is
// for httptest.
func RefusedURL(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("as2test: finding a free port: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		tb.Fatalf("as2test: closing port %s: %v", addr, err)
	}
	return "http://" + addr + Path
}

// serve runs one request through the behaviour current when it arrived.
func (p *Partner) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	b := p.behavior
	p.mu.Unlock()
	if b == nil {
		b = defaultBehavior
	}

	// The exchange's context ends when the client goes away (as far as net/http can tell)
	// or when the partner closes, whichever comes first.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()

	x := &exchange{p: p, w: w, r: r.WithContext(ctx)}
	x.req = Request{
		Time:             time.Now(),
		Method:           r.Method,
		Path:             r.URL.Path,
		Host:             r.Host,
		Header:           r.Header.Clone(),
		ContentLength:    r.ContentLength,
		TransferEncoding: append([]string(nil), r.TransferEncoding...),
	}
	if r.TLS != nil {
		x.req.ClientCertificates = append([]*x509.Certificate(nil), r.TLS.PeerCertificates...)
	}
	b.serve(x)
	x.record() // in case the behaviour returned early
}

// record appends a request and wakes Await callers.
func (p *Partner) record(r Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = append(p.requests, r)
	close(p.arrived)
	p.arrived = make(chan struct{})
}

// errorf reports a fault of the partner itself (never of the client under test) to the
// test, unless the test is over.
func (p *Partner) errorf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.tb.Errorf("as2test: "+format, args...)
	}
}

type logWriter struct{ p *Partner }

func (w logWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if !w.p.closed {
		w.p.tb.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}

// exchange is one request in progress, as seen by a behaviour.
type exchange struct {
	p        *Partner
	w        http.ResponseWriter
	r        *http.Request
	req      Request
	recorded bool
}

// readBody reads the request body, all of it when n < 0, else at most n bytes, into the
// request record.
func (x *exchange) readBody(n int64) {
	var buf bytes.Buffer
	var err error
	if n < 0 {
		_, err = buf.ReadFrom(x.r.Body)
		x.req.Complete = err == nil
	} else {
		_, err = io.CopyN(&buf, x.r.Body, n)
		// Fewer than n bytes means the body ended (io.EOF) or the read failed.
		x.req.Complete = err == io.EOF
	}
	x.req.Body = buf.Bytes()
}

// record files the request once.
func (x *exchange) record() {
	if !x.recorded {
		x.recorded = true
		x.p.record(x.req)
	}
}

// hold blocks until the client goes away or the partner closes.
func (x *exchange) hold() { <-x.r.Context().Done() }

// hijack takes the connection away from net/http. It returns nil (and reports a fault)
// when that is impossible.
func (x *exchange) hijack() net.Conn {
	conn, _, err := http.NewResponseController(x.w).Hijack()
	if err != nil {
		x.p.errorf("taking over the connection: %v", err)
		return nil
	}
	return conn
}

// drop ends the connection without an HTTP answer. With reset, it aborts it with a TCP RST
// (SO_LINGER 0), as a crashing process or a firewall does; without, it closes it with a
// FIN. TLS connections are cut below TLS, without close_notify, as a failing peer would.
func (x *exchange) drop(reset bool) {
	conn := x.hijack()
	if conn == nil {
		return
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if reset {
		tcp, ok := raw.(*net.TCPConn)
		if !ok {
			x.p.errorf("resetting a %T: not a TCP connection", raw)
		} else if err := tcp.SetLinger(0); err != nil {
			x.p.errorf("setting SO_LINGER 0: %v", err)
		}
	}
	// The client sees the close; an error closing our end tells the test nothing.
	_ = raw.Close()
}
