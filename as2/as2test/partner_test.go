package as2test_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/as2gate/as2gate/as2/as2test"
)

// post sends body to the partner's URL as an AS2 sender would, and returns the response
// with its body read, or the error.
func post(t *testing.T, c *http.Client, u string, body io.Reader) (*http.Response, []byte, error) {
	t.Helper()
	return postContext(t, context.Background(), c, u, body)
}

func postContext(t *testing.T, ctx context.Context, c *http.Client, u string, body io.Reader) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("AS2-From", "STATION")
	req.Header.Set("AS2-To", "PARTNER")
	req.Header.Set("Content-Type", "application/pkcs7-mime; smime-type=enveloped-data")
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func TestPartnerRespond(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
	}{
		{"ok with an MDN-like body", 200, http.Header{"Content-Type": {"message/disposition-notification"}}, "Disposition: automatic-action/MDN-sent-automatically; processed\r\n"},
		{"server fault", 500, nil, "internal error"},
		{"bad gateway", 502, nil, ""},
		{"unavailable with Retry-After", 503, http.Header{"Retry-After": {"120"}}, "come back later"},
		{"gateway timeout", 504, nil, ""},
		{"too many requests", 429, http.Header{"Retry-After": {"Wed, 21 Oct 2026 07:28:00 GMT"}}, ""},
		{"bad request", 400, nil, "no AS2-To"},
		{"unauthorized", 401, http.Header{"WWW-Authenticate": {`Basic realm="as2"`}}, ""},
		{"forbidden", 403, nil, "unknown AS2-From"},
		{"not found", 404, nil, ""},
		{"too large", 413, nil, ""},
		{"unprocessable", 422, nil, ""},
		{"moved permanently", 301, http.Header{"Location": {"https://partner.example/as2"}}, ""},
		{"temporary redirect", 307, http.Header{"Location": {"https://partner.example/as2-new"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := as2test.NewPartner(t, as2test.WithBehavior(as2test.Respond(tc.status, tc.header, []byte(tc.body))))
			resp, body, err := post(t, p.Client(), p.URL, strings.NewReader("message"))
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			for k, v := range tc.header {
				if got, want := resp.Header.Get(k), v[0]; got != want {
					t.Errorf("%s %q, want %q", k, got, want)
				}
			}
			if string(body) != tc.body {
				t.Errorf("body %q, want %q", body, tc.body)
			}
			if resp.ContentLength != int64(len(tc.body)) {
				t.Errorf("Content-Length %d, want %d: answers must not be chunked", resp.ContentLength, len(tc.body))
			}
			if reqs := p.Requests(); len(reqs) != 1 || string(reqs[0].Body) != "message" || !reqs[0].Complete {
				t.Errorf("recorded %+v, want the one complete message", reqs)
			}
		})
	}
}

func TestPartnerRetryAfter(t *testing.T) {
	t.Parallel()
	p := as2test.NewPartner(t, as2test.WithBehavior(as2test.Respond(http.StatusServiceUnavailable,
		http.Header{"Retry-After": {"3600"}}, nil)))
	resp, _, err := post(t, p.Client(), p.URL, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "3600" {
		t.Fatalf("got %d Retry-After %q, want 503 with Retry-After 3600", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// The partner recovers: the retry of the same message succeeds.
	p.SetBehavior(nil)
	if resp, _, err = post(t, p.Client(), p.URL, strings.NewReader("x")); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("after SetBehavior(nil): %v, %v; want 200", resp, err)
	}
}

func TestPartnerRequestsRecordWhatArrived(t *testing.T) {
	t.Parallel()
	p := as2test.NewPartner(t)
	// An io.Reader of unknown length makes the client send the body chunked, as libas2 does.
	body := bytes.Repeat([]byte("ISA*00*~"), 1000)
	resp, _, err := post(t, p.Client(), p.URL, io.MultiReader(bytes.NewReader(body)))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST: %v %v", resp, err)
	}
	reqs := p.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests recorded, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != as2test.Path {
		t.Errorf("request %s %s, want POST %s", r.Method, r.Path, as2test.Path)
	}
	if r.Header.Get("AS2-From") != "STATION" || r.Header.Get("AS2-To") != "PARTNER" {
		t.Errorf("AS2 headers %v", r.Header)
	}
	if r.ContentLength != -1 || len(r.TransferEncoding) != 1 || r.TransferEncoding[0] != "chunked" {
		t.Errorf("Content-Length %d, Transfer-Encoding %v; want a chunked body", r.ContentLength, r.TransferEncoding)
	}
	if !bytes.Equal(r.Body, body) || !r.Complete {
		t.Errorf("body of %d bytes (complete %v), want the %d bytes sent", len(r.Body), r.Complete, len(body))
	}
	if r.Time.IsZero() || len(r.ClientCertificates) != 0 {
		t.Errorf("time %v, client certificates %d", r.Time, len(r.ClientCertificates))
	}
}

// TestPartnerConnectionFailures checks that each misbehaviour reaches a stock http.Client
// as the error a real network produces, read the way a failure classifier reads it.
func TestPartnerConnectionFailures(t *testing.T) {
	t.Parallel()
	small := bytes.Repeat([]byte("a"), 1000)
	tests := []struct {
		name     string
		behavior as2test.Behavior
		body     []byte
		timeout  time.Duration
		check    func(t *testing.T, err error)
		// recorded is the body the partner must have recorded, and whether it is complete.
		recorded []byte
		complete bool
	}{
		{
			name:     "reset mid-body after the request was written",
			behavior: as2test.ResetMidBody(10),
			body:     small,
			check: func(t *testing.T, err error) {
				var op *net.OpError
				if !errors.As(err, &op) || !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("got %v, want a *net.OpError wrapping ECONNRESET", err)
				}
			},
			recorded: small[:10],
		},
		{
			name:     "reset while the client is still writing",
			behavior: as2test.ResetMidBody(100),
			body:     bytes.Repeat([]byte("b"), 8<<20),
			check: func(t *testing.T, err error) {
				// Which of these the client reports depends on whether its write or its
				// read notices the reset first: net/http closes the connection on a failed
				// read, and the write still in progress then reports net.ErrClosed.
				var op *net.OpError
				if !errors.As(err, &op) ||
					!(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)) {
					t.Errorf("got %v, want a *net.OpError wrapping ECONNRESET, EPIPE or net.ErrClosed", err)
				}
			},
			recorded: bytes.Repeat([]byte("b"), 100),
		},
		{
			name:     "closed after the body without an answer",
			behavior: as2test.CloseAfterBody(),
			body:     small,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("got %v, want end of file", err)
				}
			},
			recorded: small,
			complete: true,
		},
		{
			name:     "answer that is not HTTP",
			behavior: as2test.Garbage([]byte("\x16\x03\x01 this is not HTTP\r\n\r\n")),
			body:     small,
			check: func(t *testing.T, err error) {
				var op *net.OpError
				var ue *url.Error
				if !errors.As(err, &ue) || errors.As(err, &op) || ue.Timeout() {
					t.Errorf("got %v, want a protocol error that is neither a network error nor a timeout", err)
				}
			},
			recorded: small,
			complete: true,
		},
		{
			name:     "stall after reading the body",
			behavior: as2test.Stall(),
			body:     small,
			timeout:  100 * time.Millisecond,
			check:    checkClientTimeout,
			recorded: small,
			complete: true,
		},
		{
			name:     "stall before reading anything",
			behavior: as2test.StallBeforeRead(),
			body:     small,
			timeout:  100 * time.Millisecond,
			check:    checkClientTimeout,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := as2test.NewPartner(t, as2test.WithBehavior(tc.behavior))
			c := p.Client()
			c.Timeout = tc.timeout
			resp, _, err := post(t, c, p.URL, bytes.NewReader(tc.body))
			if err == nil {
				t.Fatalf("POST answered %d, want an error", resp.StatusCode)
			}
			tc.check(t, err)
			reqs := p.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests recorded, want 1", len(reqs))
			}
			if !bytes.Equal(reqs[0].Body, tc.recorded) || reqs[0].Complete != tc.complete {
				t.Errorf("recorded %d bytes (complete %v), want %d (complete %v)",
					len(reqs[0].Body), reqs[0].Complete, len(tc.recorded), tc.complete)
			}
		})
	}
}

func checkClientTimeout(t *testing.T, err error) {
	t.Helper()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want a client timeout", err)
	}
}

func TestPartnerConnectionRefused(t *testing.T) {
	t.Parallel()
	_, _, err := post(t, http.DefaultClient, as2test.RefusedURL(t), strings.NewReader("x"))
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("got %v, want a dial *net.OpError wrapping ECONNREFUSED", err)
	}
}

// TestPartnerStallReleasedByCancel shows the test observing the stall through Await, with
// no timer, and the client giving up by cancelling its context.
func TestPartnerStallReleasedByCancel(t *testing.T) {
	t.Parallel()
	p := as2test.NewPartner(t, as2test.WithBehavior(as2test.Stall()))
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := postContext(t, ctx, p.Client(), p.URL, strings.NewReader("held"))
		errc <- err
	}()
	if _, err := p.Await(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// TestPartnerStallReleasedByClose shows that closing the partner ends a stalled exchange
// (the client sees the connection dropped) instead of waiting for the client forever.
func TestPartnerStallReleasedByClose(t *testing.T) {
	t.Parallel()
	for _, b := range []struct {
		name     string
		behavior as2test.Behavior
	}{{"stall", as2test.Stall()}, {"stall before read", as2test.StallBeforeRead()}} {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			p := as2test.NewPartner(t, as2test.WithBehavior(b.behavior))
			errc := make(chan error, 1)
			go func() {
				_, _, err := post(t, p.Client(), p.URL, strings.NewReader("held"))
				errc <- err
			}()
			if _, err := p.Await(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			p.Close()
			if err := <-errc; !errors.Is(err, io.EOF) {
				t.Fatalf("got %v, want EOF from the dropped connection", err)
			}
		})
	}
}

func TestPartnerAwait(t *testing.T) {
	t.Parallel()
	p := as2test.NewPartner(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Await(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Await with nothing arrived: %v, want context.Canceled", err)
	}
	if _, _, err := post(t, p.Client(), p.URL, strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if reqs, err := p.Await(ctx, 1); err != nil || len(reqs) != 1 {
		t.Errorf("Await after one request: %d, %v", len(reqs), err)
	}
	p.Close()
	if _, err := p.Await(context.Background(), 2); err == nil {
		t.Error("Await on a closed partner succeeded")
	}
}

func TestPartnerSequence(t *testing.T) {
	t.Parallel()
	busy := as2test.Respond(http.StatusServiceUnavailable, http.Header{"Retry-After": {"1"}}, nil)
	p := as2test.NewPartner(t, as2test.WithBehavior(as2test.Sequence(busy, as2test.ResetMidBody(0), as2test.Respond(http.StatusOK, nil, []byte("mdn")))))
	want := []string{"503", "reset", "200 mdn", "200 mdn"}
	for i, w := range want {
		resp, body, err := post(t, p.Client(), p.URL, strings.NewReader("same message"))
		got := "reset"
		if err == nil {
			got = strings.TrimSpace(resp.Status[:3] + " " + string(body))
		} else if !errors.Is(err, syscall.ECONNRESET) {
			got = err.Error()
		}
		if got != w {
			t.Errorf("attempt %d: %s, want %s", i+1, got, w)
		}
	}
	if n := len(p.Requests()); n != len(want) {
		t.Errorf("%d requests recorded, want %d", n, len(want))
	}
}

func TestPartnerHandler(t *testing.T) {
	t.Parallel()
	seen := make(chan []byte, 1)
	p := as2test.NewPartner(t, as2test.WithBehavior(as2test.Handler(func(w http.ResponseWriter, r *http.Request, body []byte) {
		again, err := io.ReadAll(r.Body)
		if err != nil || !bytes.Equal(again, body) {
			t.Errorf("r.Body gave %q, %v; want the body again", again, err)
		}
		seen <- body
		w.Header().Set("Content-Type", `multipart/report; report-type=disposition-notification; boundary="b"`)
		_, _ = io.WriteString(w, "--b--\r\n")
	})))
	resp, body, err := post(t, p.Client(), p.URL, strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	if got := <-seen; string(got) != "payload" || string(body) != "--b--\r\n" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/report") {
		t.Errorf("handler saw %q and answered %q (%s)", got, body, resp.Header.Get("Content-Type"))
	}
}

func TestPartnerTLS(t *testing.T) {
	t.Parallel()
	station := as2test.NewClientCert(t, "STATION")
	tests := []struct {
		name   string
		opts   []as2test.Option
		client func(p *as2test.Partner) *http.Client
		check  func(t *testing.T, err error)
	}{
		{
			name:   "pinned certificate",
			opts:   []as2test.Option{as2test.WithTLS()},
			client: (*as2test.Partner).Client,
			check:  checkOK,
		},
		{
			name:   "untrusted certificate",
			opts:   []as2test.Option{as2test.WithTLS()},
			client: func(*as2test.Partner) *http.Client { return &http.Client{} },
			check: func(t *testing.T, err error) {
				var ve *tls.CertificateVerificationError
				var ua x509.UnknownAuthorityError
				if !errors.As(err, &ve) || !errors.As(err, &ua) {
					t.Errorf("got %v, want x509.UnknownAuthorityError in a *tls.CertificateVerificationError", err)
				}
			},
		},
		{
			name:   "certificate for another host",
			opts:   []as2test.Option{as2test.WithTLSFor("partner.example")},
			client: (*as2test.Partner).Client,
			check: func(t *testing.T, err error) {
				var he x509.HostnameError
				if !errors.As(err, &he) || he.Host != "127.0.0.1" {
					t.Errorf("got %v, want x509.HostnameError for 127.0.0.1", err)
				}
			},
		},
		{
			name:   "client certificate required, TLS 1.3",
			opts:   []as2test.Option{as2test.WithClientCertRequired(station.Pool())},
			client: (*as2test.Partner).Client,
			check:  checkRemoteAlert(116), // certificate_required
		},
		{
			name:   "client certificate required, TLS 1.2",
			opts:   []as2test.Option{as2test.WithClientCertRequired(station.Pool()), as2test.WithTLSVersion(0, tls.VersionTLS12)},
			client: (*as2test.Partner).Client,
			check:  checkRemoteAlert(40), // handshake_failure
		},
		{
			name: "client certificate presented",
			opts: []as2test.Option{as2test.WithClientCertRequired(station.Pool())},
			client: func(p *as2test.Partner) *http.Client {
				c := p.Client()
				c.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{station.Certificate}
				return c
			},
			check: checkOK,
		},
		{
			name:   "partner only speaks TLS 1.0 and 1.1",
			opts:   []as2test.Option{as2test.WithTLSVersion(tls.VersionTLS10, tls.VersionTLS11)},
			client: (*as2test.Partner).Client,
			check:  checkRemoteAlert(70), // protocol_version
		},
		{
			name: "partner only speaks TLS 1.3, client at most 1.2",
			opts: []as2test.Option{as2test.WithTLSVersion(tls.VersionTLS13, 0)},
			client: func(p *as2test.Partner) *http.Client {
				c := p.Client()
				c.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS12
				return c
			},
			check: checkRemoteAlert(70),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := as2test.NewPartner(t, tc.opts...)
			if !strings.HasPrefix(p.URL, "https://127.0.0.1:") || p.Certificate() == nil || p.CertPool() == nil {
				t.Fatalf("URL %s, certificate %v: want HTTPS on 127.0.0.1", p.URL, p.Certificate())
			}
			resp, _, err := post(t, tc.client(p), p.URL, strings.NewReader("message"))
			if err == nil && resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			tc.check(t, err)
			reqs := p.Requests()
			if err != nil {
				if len(reqs) != 0 {
					t.Errorf("%d requests recorded after a failed handshake", len(reqs))
				}
				return
			}
			if len(reqs) != 1 {
				t.Fatalf("%d requests recorded, want 1", len(reqs))
			}
			for _, c := range reqs[0].ClientCertificates {
				if !c.Equal(station.Identity.Certificate) {
					t.Errorf("unexpected client certificate %s", c.Subject)
				}
			}
		})
	}
}

func checkOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("got %v, want success", err)
	}
}

// checkRemoteAlert wants the TLS alert the partner sent. crypto/tls reports a received
// alert as a *net.OpError with Op "remote error" whose Err is an unexported alert type; its
// text is the same as tls.AlertError's for the same number.
func checkRemoteAlert(alert uint8) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "remote error" || op.Err.Error() != tls.AlertError(alert).Error() {
			t.Errorf("got %v, want remote alert %d (%v)", err, alert, tls.AlertError(alert))
		}
	}
}

func TestPartnerRefusedURLIsLoopback(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(as2test.RefusedURL(t))
	if err != nil || u.Hostname() != "127.0.0.1" || u.Path != as2test.Path {
		t.Fatalf("RefusedURL %v (%v), want http://127.0.0.1:port%s", u, err, as2test.Path)
	}
}
