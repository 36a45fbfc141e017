package outbound

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/as2/as2test"
	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
	"github.com/as2gate/as2gate/internal/payload"
	"github.com/as2gate/as2gate/internal/retry"
	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/sqlite"
)

// These tests drive the real send worker (claim, pack once, POST, read the MDN, classify,
// record, reschedule) on a real SQLite store and payload folder, against fake partners
// that fail in each way the failure table names. The worker's clock is the test's: a
// schedule is checked to the nanosecond by moving the clock, never by waiting for it.

const (
	rigStation = "STATION"
	rigPartner = "PARTNER"
	// rigAsyncMDNTimeout is the partner's async_mdn deadline.
	rigAsyncMDNTimeout = time.Hour
)

// The rig partner's retry policies. The schedules they give are written out by hand in
// wantRetry, so that a test compares the worker with numbers, not with package retry.
var (
	rigFailed     = retry.Policy{Enabled: true, Strategy: retry.Exponential, Attempts: 3, Initial: 30 * time.Second}
	rigIncomplete = retry.Policy{Enabled: true, Strategy: retry.Fixed, Interval: 15 * time.Minute, Duration: 40 * time.Minute}
)

// rigEpoch is where the rig's clock starts; whole seconds, as HTTP dates are.
var rigEpoch = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// rigPayload is the document every rig message carries: an X12 interchange of 4 KiB, so
// that the request is written in several pieces.
var rigPayload = bytes.Repeat([]byte("ISA*00*          *00*          *ZZ*STATION        *ZZ*PARTNER        *260302*0900~\n"), 48)

// wantRetry is the rig's retry schedule: when attempt n of class, failed at now, is tried
// again (first is when the first attempt of that class failed). Failed: exponential,
// 30 s, 1 m, 2 m, then the row fails. Incomplete: not retried unless enabled, then every
// 15 minutes for as long as the retry starts within 40 minutes of the first failure.
// Permanent: never. A Retry-After from the partner pushes a retry that much later, never
// earlier.
func wantRetry(class string, incompleteOn bool, n int, first, now time.Time, retryAfter time.Duration) (time.Time, bool) {
	switch class {
	case store.ClassTransient:
		waits := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute}
		if n > len(waits) {
			return time.Time{}, false
		}
		return now.Add(max(waits[n-1], retryAfter)), true
	case store.ClassIncomplete:
		next := now.Add(15 * time.Minute)
		if !incompleteOn || next.After(first.Add(40*time.Minute)) {
			return time.Time{}, false
		}
		return next, true
	}
	return time.Time{}, false
}

// fakeClock is the clock of the worker and the store; the test moves it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// rigPartners implements Partners and Router for the partners of station STATION.
type rigPartners struct {
	mu   sync.Mutex
	ps   map[string]*Partner
	urls map[string]string
	// err, when set, is what Partner answers, as the gateway's Partners does for a partner
	// it cannot send to as configured.
	err error
}

func (p *rigPartners) Partner(_ context.Context, station, partner string) (*Partner, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pt, ok := p.ps[partner]
	switch {
	case station != rigStation || !ok:
		return nil, fmt.Errorf("no partner %q of station %q", partner, station)
	case p.err != nil:
		return nil, p.err
	}
	c := *pt
	return &c, nil
}

// MDNClient gives the partner's own client: the address policy is the gateway's concern.
func (p *rigPartners) MDNClient(ctx context.Context, station, partner string) (*http.Client, error) {
	pt, err := p.Partner(ctx, station, partner)
	if err != nil {
		return nil, err
	}
	return pt.Client, nil
}

func (p *rigPartners) Route(_ context.Context, partner string) (*Route, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, ok := p.urls[partner]
	if !ok {
		return nil, fmt.Errorf("no partner %q", partner)
	}
	return &Route{Station: rigStation, URL: u, MessageIDDomain: "station.example"}, nil
}

// set points partner at url through hc.
func (p *rigPartners) set(partner, url string, hc *http.Client) {
	p.edit(partner, func(pt *Partner) { pt.Client = hc })
	p.mu.Lock()
	p.urls[partner] = url
	p.mu.Unlock()
}

func (p *rigPartners) edit(partner string, f func(*Partner)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p.ps[partner])
}

// rig is a send worker on a fresh store, with station STATION and partner PARTNER: the
// message is signed, encrypted and asks for a signed synchronous MDN; retries follow
// rigFailed, and the incomplete policy is off until a test enables it.
type rig struct {
	clock    *fakeClock
	store    *sqlite.Store
	payloads *payload.Dir
	partners *rigPartners
	cfg      Config
	w        *Worker

	station, partner *cmstest.Identity

	mu     sync.Mutex
	failed []failedCall
}

// failedCall is one call of Config.OnFailed.
type failedCall struct {
	id    int64
	state string
	code  string
}

func newRig(t *testing.T, edit func(*Config)) *rig {
	t.Helper()
	dir := t.TempDir()
	clock := &fakeClock{now: rigEpoch}
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "as2gate.db"), sqlite.WithNow(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	payloads, err := payload.OpenDir(filepath.Join(dir, "payloads"))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{
		clock: clock, store: st, payloads: payloads,
		partners: &rigPartners{ps: map[string]*Partner{}, urls: map[string]string{}},
		station:  cmstest.New(t, rigStation, nil),
		partner:  cmstest.New(t, rigPartner, nil),
	}
	off := rigIncomplete
	off.Enabled = false
	r.partners.ps[rigPartner] = &Partner{
		Pack: as2.PackOptions{
			From: rigStation, To: rigPartner,
			Sign: as2.MICAlgSHA256, Certificate: r.station.Certificate, Key: r.station.Key,
			Encrypt: cms.AES256CBC, Recipients: []*x509.Certificate{r.partner.Certificate},
			MDN: as2.MDNRequest{Mode: as2.MDNSync, Signed: true, MICAlgs: []as2.MICAlg{as2.MICAlgSHA256}},
		},
		Send:   as2.SendOptions{Trusted: []*x509.Certificate{r.partner.Certificate}},
		Failed: rigFailed, Incomplete: off,
		AsyncMDNTimeout: rigAsyncMDNTimeout,
	}
	r.partners.urls[rigPartner] = "http://127.0.0.1:1/as2"
	r.cfg = Config{
		Store: st, Payloads: payloads, Partners: r.partners, Owner: "node-a",
		Lease: 10 * time.Minute, Poll: time.Hour, SpoolDir: dir, Now: clock.Now,
		OnFailed: func(_ context.Context, m *store.Message, f Failure) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.failed = append(r.failed, failedCall{id: m.ID, state: m.State, code: f.Code})
		},
		Log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError})),
	}
	if edit != nil {
		edit(&r.cfg)
	}
	if r.w, err = New(r.cfg); err != nil {
		t.Fatal(err)
	}
	return r
}

// as2Config is a correct AS2 partner for the rig: it decrypts and verifies the station's
// messages and signs its MDNs.
func (r *rig) as2Config() as2test.AS2Config {
	return as2test.AS2Config{
		ID: rigPartner, Certificate: r.partner.Certificate, Key: r.partner.Key,
		Trusted: []*x509.Certificate{r.station.Certificate},
	}
}

// fake starts a fake partner with behaviour b and points the rig's partner at it, through
// the fake's own client.
func (r *rig) fake(t *testing.T, b as2test.Behavior, opts ...as2test.Option) *as2test.Partner {
	t.Helper()
	p := as2test.NewPartner(t, append(opts, as2test.WithBehavior(b))...)
	r.partners.set(rigPartner, p.URL, p.Client())
	return p
}

// submit queues the rig payload for partner as the API does.
func (r *rig) submit(t *testing.T, partner string) *store.Message {
	t.Helper()
	m, err := r.w.Submit(t.Context(), r.partners, Submission{
		Partner: partner, Subject: "order 4711",
		Files: []SubmitFile{{Name: "order.x12", Body: bytes.NewReader(rigPayload)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// claim claims what is due at the clock's time (or at the given time), as Run does.
func (r *rig) claim(t *testing.T, at ...time.Time) []*store.Message {
	t.Helper()
	now := r.clock.Now()
	if len(at) > 0 {
		now = at[0]
	}
	rows, err := r.store.Claim(t.Context(), store.ClaimRequest{
		Now: now, Owner: r.w.cfg.Owner, Lease: r.w.cfg.Lease, Limit: 8, PerPartner: r.w.cfg.PerPartner,
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// step claims the one row due at the clock's time, which must be id, and processes it as
// Run does.
func (r *rig) step(t *testing.T, id int64) {
	t.Helper()
	rows := r.claim(t)
	if len(rows) != 1 || rows[0].ID != id {
		t.Fatalf("at %s claimed %v, want message %d", r.clock.Now().Format(time.TimeOnly), ids(rows), id)
	}
	r.w.process(t.Context(), rows[0])
}

// notDueBefore checks that nothing can be claimed a moment before due.
func (r *rig) notDueBefore(t *testing.T, due time.Time) {
	t.Helper()
	if rows := r.claim(t, due.Add(-time.Nanosecond)); len(rows) != 0 {
		t.Fatalf("claimed %v before %s, when it is due", ids(rows), due.Format(time.TimeOnly))
	}
}

func (r *rig) get(t *testing.T, id int64) *store.Message {
	t.Helper()
	m, err := r.store.GetMessage(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (r *rig) attempts(t *testing.T, id int64) []*store.Attempt {
	t.Helper()
	as, err := r.store.Attempts(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// wire returns the stored wire body of a message.
func (r *rig) wire(t *testing.T, m *store.Message) []byte {
	t.Helper()
	if m.Wire == "" {
		t.Fatalf("message %d has no stored wire message", m.ID)
	}
	b, err := r.payloads.Open(t.Context(), m.Wire)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	body, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// failedCalls returns the OnFailed calls for message id.
func (r *rig) failedCalls(id int64) []failedCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []failedCall
	for _, c := range r.failed {
		if c.id == id {
			out = append(out, c)
		}
	}
	return out
}

// checkSameWire checks that every request the partner recorded carried message m: its
// Message-ID and its stored wire bytes (the part read, for a request cut short).
func (r *rig) checkSameWire(t *testing.T, m *store.Message, reqs []as2test.Request) {
	t.Helper()
	wire := r.wire(t, m)
	for i, req := range reqs {
		if got := req.Header.Get(as2.HeaderMessageID); got != m.MessageID {
			t.Errorf("request %d: Message-ID %s, want %s", i+1, got, m.MessageID)
		}
		if !bytes.HasPrefix(wire, req.Body) || (req.Complete && len(req.Body) != len(wire)) {
			t.Errorf("request %d: the body (%d bytes, complete %v) is not the stored wire message (%d bytes)",
				i+1, len(req.Body), req.Complete, len(wire))
		}
	}
}

func ids(ms []*store.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// faultCase is one way a partner (or the way to it) fails.
type faultCase struct {
	name   string
	class  string
	code   string
	status int // the HTTP status the attempt keeps; 0 without an answer
	// setup makes the rig's partner fail this way and returns the fake partner involved,
	// or nil.
	setup func(t *testing.T, r *rig) *as2test.Partner
	// reaches says the request reaches the fake partner, which then records one request per
	// attempt; otherwise it must record none.
	reaches bool
	// constructed says the failure is made by a DialContext or connection of the test's,
	// not by the network: the errno is one loopback cannot be made to give on demand.
	constructed bool
	async       bool          // the message asks for an asynchronous MDN
	retryAfter  time.Duration // the wait the partner asks for
	excerpt     string        // the body excerpt the attempt keeps
	mentions    []string      // facts the corrective action names
}

// respond is a setup whose partner answers every request with status, header and body.
func respond(status int, header http.Header, body string) func(t *testing.T, r *rig) *as2test.Partner {
	return func(t *testing.T, r *rig) *as2test.Partner {
		return r.fake(t, as2test.Respond(status, header, []byte(body)))
	}
}

// misbehave is a setup whose partner is a working AS2 receiver but for edit.
func misbehave(edit func(c *as2test.AS2Config)) func(t *testing.T, r *rig) *as2test.Partner {
	return func(t *testing.T, r *rig) *as2test.Partner {
		c := r.as2Config()
		edit(&c)
		return r.fake(t, as2test.AS2(c))
	}
}

// dialing is a setup that reaches url through a client whose connections come from dial.
func dialing(url string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(t *testing.T, r *rig) *as2test.Partner {
	return func(t *testing.T, r *rig) *as2test.Partner {
		r.partners.set(rigPartner, url, &http.Client{Transport: &http.Transport{DialContext: dial}})
		return nil
	}
}

// hangUp listens on loopback and closes each connection as soon as it is accepted, as a
// firewall or load balancer in front of a partner does when it drops the connection.
func hangUp(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().String()
}

// pipeBreaker is a connection that fails with EPIPE, the way the kernel reports a write
// after the peer closed, once limit bytes have gone out: the partner hung up while the
// message was being written. Only the transport's writer goroutine writes to it.
type pipeBreaker struct {
	net.Conn
	limit, written int
}

func (c *pipeBreaker) Write(b []byte) (int, error) {
	if c.written+len(b) <= c.limit {
		n, err := c.Conn.Write(b)
		c.written += n
		return n, err
	}
	n, err := c.Conn.Write(b[:c.limit-c.written])
	c.written += n
	if err != nil {
		return n, err
	}
	return n, &net.OpError{Op: "write", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(),
		Err: os.NewSyscallError("write", syscall.EPIPE)}
}

// faultCases is the fault matrix: every code of Codes, each produced by a fake partner on
// loopback where one can produce it, and through a connection that fails as the network
// would where loopback cannot (constructed).
func faultCases() []faultCase {
	const location = "https://as2.partner.example/as2/inbound"
	return []faultCase{
		// Transient: the partner did not get the message.
		{
			name: "connection refused", class: store.ClassTransient, code: CodeConnectRefused,
			setup: func(t *testing.T, r *rig) *as2test.Partner {
				r.partners.set(rigPartner, as2test.RefusedURL(t), &http.Client{Transport: &http.Transport{}})
				return nil
			},
			mentions: []string{"127.0.0.1:", "loopback"},
		},
		{
			name: "connect timeout", class: store.ClassTransient, code: CodeConnectTimeout,
			setup: func(t *testing.T, r *rig) *as2test.Partner {
				p := r.fake(t, as2test.AS2(r.as2Config()))
				hc := p.Client()
				// The dialer's own timeout, so short that it has passed when the dial starts.
				hc.Transport.(*http.Transport).DialContext = (&net.Dialer{Timeout: time.Nanosecond}).DialContext
				r.partners.set(rigPartner, p.URL, hc)
				return p
			},
		},
		{
			name: "no route to the host", class: store.ClassTransient, code: CodeConnectUnreachable, constructed: true,
			setup: dialing("http://as2.partner.example:4080/as2", func(_ context.Context, network, addr string) (net.Conn, error) {
				return nil, &net.OpError{Op: "dial", Net: network, Addr: &net.TCPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 4080},
					Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}
			}),
			mentions: []string{"as2.partner.example:4080"},
		},
		{
			name: "connection dropped before the request", class: store.ClassTransient, code: CodeConnectReset,
			setup: func(t *testing.T, r *rig) *as2test.Partner {
				r.partners.set(rigPartner, "https://"+hangUp(t)+"/as2", &http.Client{Transport: &http.Transport{}})
				return nil
			},
			mentions: []string{"TLS"},
		},
		{
			name: "DNS server failure", class: store.ClassTransient, code: CodeDNSTemporary,
			setup: func(t *testing.T, r *rig) *as2test.Partner {
				d := &net.Dialer{Resolver: fakeDNS(t, 2)}
				r.partners.set(rigPartner, "http://as2.partner.invalid:4080/as2", &http.Client{Transport: &http.Transport{DialContext: d.DialContext}})
				return nil
			},
			mentions: []string{"as2.partner.invalid"},
		},
		{name: "408", class: store.ClassTransient, code: CodeHTTP408, status: 408, reaches: true, setup: respond(408, nil, "")},
		{
			name: "429 with a Retry-After date", class: store.ClassTransient, code: CodeHTTP429, status: 429, reaches: true,
			retryAfter: 90 * time.Second, mentions: []string{"1m30s"},
			setup: func(t *testing.T, r *rig) *as2test.Partner {
				return r.fake(t, as2test.Handler(func(w http.ResponseWriter, _ *http.Request, _ []byte) {
					// A date on the worker's clock: the worker must read it with that clock.
					w.Header().Set("Retry-After", r.clock.Now().Add(90*time.Second).Format(http.TimeFormat))
					w.WriteHeader(http.StatusTooManyRequests)
				}))
			},
		},
		{
			name: "500", class: store.ClassTransient, code: CodeHTTP500, status: 500, reaches: true,
			setup:   respond(500, nil, "java.lang.NullPointerException\n\tat com.partner.as2.Receiver"),
			excerpt: "java.lang.NullPointerException at com.partner.as2.Receiver", mentions: []string{"NullPointerException"},
		},
		{name: "502", class: store.ClassTransient, code: CodeHTTP502, status: 502, reaches: true, setup: respond(502, nil, "")},
		{
			name: "503 with Retry-After longer than the schedule", class: store.ClassTransient, code: CodeHTTP503, status: 503, reaches: true,
			setup:      respond(503, http.Header{"Retry-After": {"120"}}, "maintenance"),
			retryAfter: 2 * time.Minute, excerpt: "maintenance", mentions: []string{"2m0s"},
		},
		{
			name: "503 with Retry-After shorter than the schedule", class: store.ClassTransient, code: CodeHTTP503, status: 503, reaches: true,
			setup: respond(503, http.Header{"Retry-After": {"10"}}, ""), retryAfter: 10 * time.Second,
		},
		{name: "504", class: store.ClassTransient, code: CodeHTTP504, status: 504, reaches: true, setup: respond(504, nil, "")},
		{
			name: "unknown failure before sending", class: store.ClassTransient, code: CodeUnknownNotSent, constructed: true,
			setup: dialing("http://as2.partner.example:4080/as2", func(context.Context, string, string) (net.Conn, error) {
				return nil, errors.New("proxy: tunnel to as2.partner.example:4080 refused")
			}),
			mentions: []string{"before any of the message"},
		},

		// Incomplete: the partner may hold the message.
		{
			name: "no answer within the transmission timeout", class: store.ClassIncomplete, code: CodeReadTimeout, reaches: true,
			setup: func(t *testing.T, r *rig) *as2test.Partner {
				p := r.fake(t, as2test.Stall())
				hc := p.Client()
				// The partner's transmission timeout; the partner never answers, so each
				// attempt takes this long.
				hc.Timeout = 150 * time.Millisecond
				r.partners.set(rigPartner, p.URL, hc)
				return p
			},
			mentions: []string{"transmission timeout"},
		},
		{
			name: "reset after the request", class: store.ClassIncomplete, code: CodeConnectionReset, reaches: true,
			// The whole body is read first, so that the reset meets the client reading the
			// answer, not still writing.
			setup: func(t *testing.T, r *rig) *as2test.Partner { return r.fake(t, as2test.ResetMidBody(1<<20)) },
		},
		{
			name: "closed without an answer", class: store.ClassIncomplete, code: CodeConnectionClosed, reaches: true,
			setup: func(t *testing.T, r *rig) *as2test.Partner { return r.fake(t, as2test.CloseAfterBody()) },
		},
		{
			name: "broken pipe while writing", class: store.ClassIncomplete, code: CodeBrokenPipe, reaches: true, constructed: true,
			setup: func(t *testing.T, r *rig) *as2test.Partner {
				p := r.fake(t, as2test.AS2(r.as2Config()))
				hc := p.Client()
				hc.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
					c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
					if err != nil {
						return nil, err
					}
					return &pipeBreaker{Conn: c, limit: 2048}, nil
				}
				r.partners.set(rigPartner, p.URL, hc)
				return p
			},
		},
		{
			name: "success without the synchronous MDN", class: store.ClassIncomplete, code: CodeMDNMissing, status: 200, reaches: true,
			setup: respond(200, nil, ""),
		},
		{
			name: "garbled MDN", class: store.ClassIncomplete, code: CodeMDNUnreadable, status: 200, reaches: true,
			setup: misbehave(func(c *as2test.AS2Config) { c.GarbledMDN = true }),
		},
		{
			name: "no asynchronous MDN before the deadline", class: store.ClassIncomplete, code: CodeAsyncMDNTimeout, reaches: true, async: true,
			// The partner takes the message and never sends the MDN.
			setup: respond(200, nil, ""), mentions: []string{"public_url"},
		},
		{
			name: "an answer that is not HTTP", class: store.ClassIncomplete, code: CodeUnknown, reaches: true,
			setup: func(t *testing.T, r *rig) *as2test.Partner {
				return r.fake(t, as2test.Garbage([]byte("220 ftp.partner.example ready\r\n")))
			},
		},

		// Permanent: sending again cannot help.
		{
			name: "unknown host", class: store.ClassPermanent, code: CodeDNSNotFound,
			setup: func(t *testing.T, r *rig) *as2test.Partner {
				d := &net.Dialer{Resolver: fakeDNS(t, 3)}
				r.partners.set(rigPartner, "http://as2.partner.invalid:4080/as2", &http.Client{Transport: &http.Transport{DialContext: d.DialContext}})
				return nil
			},
			mentions: []string{"as2.partner.invalid", "192.168.0.0/16"},
		},
		{
			name: "untrusted server certificate", class: store.ClassPermanent, code: CodeTLSUntrusted,
			setup: func(t *testing.T, r *rig) *as2test.Partner {
				p := r.fake(t, as2test.AS2(r.as2Config()), as2test.WithTLS())
				r.partners.set(rigPartner, p.URL, &http.Client{Transport: &http.Transport{}})
				return p
			},
			mentions: []string{"tls.ca"},
		},
		{
			name: "certificate for another host", class: store.ClassPermanent, code: CodeTLSHostname,
			setup: func(t *testing.T, r *rig) *as2test.Partner {
				return r.fake(t, as2test.AS2(r.as2Config()), as2test.WithTLSFor("as2.partner.example"))
			},
			mentions: []string{"as2.partner.example"},
		},
		{
			name: "no common TLS version", class: store.ClassPermanent, code: CodeTLSProtocol,
			setup: func(t *testing.T, r *rig) *as2test.Partner {
				return r.fake(t, as2test.AS2(r.as2Config()), as2test.WithTLSVersion(tls.VersionTLS10, tls.VersionTLS11))
			},
			mentions: []string{"protocol version"},
		},
		{
			name: "client certificate not accepted", class: store.ClassPermanent, code: CodeTLSClientCertRequired,
			// The station presents a certificate the partner does not trust. Under TLS 1.2
			// the partner's unknown_ca alert ends the handshake, before any of the
			// request is written. (Under TLS 1.3 the refusal comes after the client's side of
			// the handshake, and races the request being written: net/http then reports the
			// write's broken pipe, not the alert.)
			setup: func(t *testing.T, r *rig) *as2test.Partner {
				trusted, presented := as2test.NewClientCert(t, "TRUSTED"), as2test.NewClientCert(t, rigStation)
				p := r.fake(t, as2test.AS2(r.as2Config()),
					as2test.WithClientCertRequired(trusted.Pool()), as2test.WithTLSVersion(0, tls.VersionTLS12))
				hc := p.Client()
				// Presented whatever CAs the partner asks for, so that the partner judges it.
				hc.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
					return &presented.Certificate, nil
				}
				r.partners.set(rigPartner, p.URL, hc)
				return p
			},
			mentions: []string{"unknown certificate authority", "tls_cert"},
		},
		{name: "301", class: store.ClassPermanent, code: CodeHTTP301, status: 301, reaches: true, setup: respond(301, http.Header{"Location": {location}}, ""), mentions: []string{location}},
		{name: "302", class: store.ClassPermanent, code: CodeHTTP302, status: 302, reaches: true, setup: respond(302, http.Header{"Location": {location}}, ""), mentions: []string{location}},
		{name: "303", class: store.ClassPermanent, code: CodeHTTP303, status: 303, reaches: true, setup: respond(303, http.Header{"Location": {location}}, ""), mentions: []string{location}},
		{name: "307", class: store.ClassPermanent, code: CodeHTTP307, status: 307, reaches: true, setup: respond(307, http.Header{"Location": {location}}, ""), mentions: []string{location}},
		{name: "308", class: store.ClassPermanent, code: CodeHTTP308, status: 308, reaches: true, setup: respond(308, http.Header{"Location": {location}}, ""), mentions: []string{location}},
		{
			name: "400", class: store.ClassPermanent, code: CodeHTTP400, status: 400, reaches: true,
			setup: respond(400, nil, "missing AS2-To"), excerpt: "missing AS2-To", mentions: []string{"missing AS2-To"},
		},
		{
			name: "401", class: store.ClassPermanent, code: CodeHTTP401, status: 401, reaches: true,
			setup: respond(401, http.Header{"WWW-Authenticate": {`Basic realm="as2"`}}, ""), mentions: []string{`Basic realm="as2"`},
		},
		{name: "403", class: store.ClassPermanent, code: CodeHTTP403, status: 403, reaches: true, setup: respond(403, nil, "")},
		{name: "404", class: store.ClassPermanent, code: CodeHTTP404, status: 404, reaches: true, setup: respond(404, nil, "")},
		{name: "413", class: store.ClassPermanent, code: CodeHTTP413, status: 413, reaches: true, setup: respond(413, nil, "")},
		{name: "422", class: store.ClassPermanent, code: CodeHTTP422, status: 422, reaches: true, setup: respond(422, nil, "")},
		{
			name: "negative MDN", class: store.ClassPermanent, code: CodeMDNNegative, status: 200, reaches: true,
			setup: misbehave(func(c *as2test.AS2Config) {
				d := as2.ProcessedWithError(as2.DecryptionFailed)
				c.Disposition = &d
			}),
			mentions: []string{"decryption-failed"},
		},
		{
			name: "unsigned MDN when a signed one was asked for", class: store.ClassPermanent, code: CodeMDNUnsigned, status: 200, reaches: true,
			setup: misbehave(func(c *as2test.AS2Config) { c.UnsignedMDN = true }),
		},
		{
			name: "MDN signature invalid", class: store.ClassPermanent, code: CodeMDNSignatureInvalid, status: 200, reaches: true,
			setup: misbehave(func(c *as2test.AS2Config) { c.TamperSignature = true }),
		},
		{
			name: "MIC mismatch", class: store.ClassPermanent, code: CodeMICMismatch, status: 200, reaches: true,
			setup: misbehave(func(c *as2test.AS2Config) { c.WrongMIC = true }),
		},
		{
			name: "encryption without a certificate", class: store.ClassPermanent, code: CodeConfig,
			setup: func(t *testing.T, r *rig) *as2test.Partner {
				p := r.fake(t, as2test.AS2(r.as2Config()))
				r.partners.edit(rigPartner, func(pt *Partner) { pt.Pack.Recipients = nil })
				return p
			},
			mentions: []string{"packing the message", "encryption needs the partner's certificate"},
		},
		{
			name: "partner configuration unusable", class: store.ClassPermanent, code: CodeConfig,
			setup: func(t *testing.T, r *rig) *as2test.Partner {
				p := r.fake(t, as2test.AS2(r.as2Config()))
				// What the gateway's Partners says when every certificate of the partner has
				// expired.
				r.partners.err = &ConfigError{What: "encryption certificate", Err: errors.New(`partner "PARTNER" has no certificate valid now to encrypt to`)}
				return p
			},
			mentions: []string{"no certificate valid now"},
		},
	}
}

func TestFaultMatrixCoversEveryCode(t *testing.T) {
	t.Parallel()
	covered := map[string]bool{}
	for _, tc := range faultCases() {
		covered[tc.code] = true
		if class, _ := Describe(tc.code); class != tc.class {
			t.Errorf("%s: the case expects %s/%s, the failure table says %s", tc.name, tc.class, tc.code, class)
		}
	}
	for _, code := range Codes() {
		if !covered[code] {
			t.Errorf("no fault case produces %s", code)
		}
	}
}

// TestFaultMatrix sends one message into each failure and follows it to its end: every
// attempt's row, the time of every retry, the final state, the failure notification, and
// that every retry carried the same Message-ID and bytes. An incomplete failure is run
// twice: with the partner's incomplete policy off (the default: the row fails at once),
// and on.
func TestFaultMatrix(t *testing.T) {
	t.Parallel()
	for _, tc := range faultCases() {
		variants := []bool{false}
		if tc.class == store.ClassIncomplete {
			variants = []bool{false, true}
		}
		for _, incompleteOn := range variants {
			name := tc.name
			if tc.class == store.ClassIncomplete {
				name += map[bool]string{false: "/incomplete policy off", true: "/incomplete policy on"}[incompleteOn]
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				runFault(t, tc, incompleteOn)
			})
		}
	}
}

func runFault(t *testing.T, tc faultCase, incompleteOn bool) {
	r := newRig(t, nil)
	p := tc.setup(t, r)
	r.partners.edit(rigPartner, func(pt *Partner) {
		pt.Incomplete.Enabled = incompleteOn
		if tc.async {
			pt.Pack.MDN.Mode, pt.Pack.MDN.URL = as2.MDNAsync, "https://gateway.station.example/as2"
		}
	})
	m := r.submit(t, rigPartner)

	var first time.Time
	sends := 0
	for n := 1; ; n++ {
		if tc.async {
			// The message goes out and waits for its MDN until the deadline.
			r.step(t, m.ID)
			sends++
			got := r.get(t, m.ID)
			deadline := r.clock.Now().Add(rigAsyncMDNTimeout)
			if got.State != store.StateAwaitingMDN || !got.NextAttemptAt.Equal(deadline) {
				t.Fatalf("after sending: %s until %s, want %s until %s", got.State, got.NextAttemptAt, store.StateAwaitingMDN, deadline)
			}
			r.notDueBefore(t, deadline)
			r.clock.Set(deadline)
		}
		at := r.clock.Now()
		r.step(t, m.ID)
		if !tc.async {
			sends++
		}
		got := r.get(t, m.ID)
		as := r.attempts(t, m.ID)
		if len(as) != n {
			t.Fatalf("attempt %d: %d attempt rows (state %s, last error %q)", n, len(as), got.State, got.LastError)
		}
		a := as[n-1]
		if a.Class != tc.class || a.Code != tc.code || a.HTTPStatus != tc.status {
			t.Fatalf("attempt %d: %s/%s HTTP %d, want %s/%s HTTP %d; error: %s", n, a.Class, a.Code, a.HTTPStatus, tc.class, tc.code, tc.status, a.Error)
		}
		if n == 1 {
			t.Logf("%s/%s: %s", a.Class, a.Code, a.Action)
		}
		checkAttempt(t, n, a, at, tc)
		if got.Attempts != n || got.LastCode != tc.code || got.LastError != a.Error {
			t.Errorf("attempt %d: row has %d attempts, last %s %q", n, got.Attempts, got.LastCode, got.LastError)
		}
		if n == 1 {
			first = at
		}
		next, retried := wantRetry(tc.class, incompleteOn, n, first, at, tc.retryAfter)
		if !retried {
			if got.State != store.StateFailed {
				t.Fatalf("attempt %d: state %s, want %s", n, got.State, store.StateFailed)
			}
			break
		}
		if got.State != store.StateQueued || !got.NextAttemptAt.Equal(next) {
			t.Fatalf("attempt %d: %s, next attempt at %s; want %s at %s (+%s)", n, got.State,
				got.NextAttemptAt.Format(time.TimeOnly), store.StateQueued, next.Format(time.TimeOnly), next.Sub(at))
		}
		r.notDueBefore(t, next)
		r.clock.Set(next)
	}

	if calls := r.failedCalls(m.ID); len(calls) != 1 || calls[0].code != tc.code || calls[0].state != store.StateFailed {
		t.Errorf("OnFailed calls %+v, want one with %s", calls, tc.code)
	}
	if p == nil {
		return
	}
	want := 0
	if tc.reaches {
		want = sends
		// A constructed failure reaches the worker before the partner has noticed the
		// connection end and recorded the request.
		await(t, p, want)
	}
	reqs := p.Requests()
	if len(reqs) != want {
		t.Fatalf("the partner received %d requests in %d sends, want %d", len(reqs), sends, want)
	}
	if got := r.get(t, m.ID); got.Wire != "" {
		r.checkSameWire(t, got, reqs)
	} else if tc.code != CodeConfig {
		t.Error("no wire message was stored")
	}
}

// checkAttempt checks what an attempt row keeps besides its class and code.
func checkAttempt(t *testing.T, n int, a *store.Attempt, at time.Time, tc faultCase) {
	t.Helper()
	if !a.At.Equal(at) {
		t.Errorf("attempt %d at %s, want %s", n, a.At, at)
	}
	if a.Error == "" || a.Action == "" {
		t.Errorf("attempt %d: error %q, action %q: both must be given", n, a.Error, a.Action)
	}
	if strings.Contains(a.Error, ": :") {
		t.Errorf("attempt %d: error %q has an empty part", n, a.Error)
	}
	for _, s := range tc.mentions {
		if !strings.Contains(a.Action, s) && !strings.Contains(a.Error, s) {
			t.Errorf("attempt %d: neither the action nor the error mentions %q:\n%s\n%s", n, s, a.Action, a.Error)
		}
	}
	if tc.status != 0 && len(a.Header) == 0 {
		t.Errorf("attempt %d: the response headers are not kept", n)
	}
	if a.BodyExcerpt != tc.excerpt {
		t.Errorf("attempt %d: body excerpt %q, want %q", n, a.BodyExcerpt, tc.excerpt)
	}
}

// A message that fails for a while and then goes through ends sent, with its receipt; each
// class counts its own attempts, and the row's failures stay on record.
func TestWorkerRetriesUntilSent(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	r.partners.edit(rigPartner, func(pt *Partner) { pt.Incomplete = rigIncomplete })
	p := r.fake(t, as2test.Sequence(
		as2test.Respond(http.StatusServiceUnavailable, nil, nil),
		as2test.CloseAfterBody(),
		as2test.Respond(http.StatusInternalServerError, nil, nil),
		as2test.AS2(r.as2Config()),
	))
	m := r.submit(t, rigPartner)
	steps := []struct {
		class, code string
		wait        time.Duration // until the next attempt
	}{
		{store.ClassTransient, CodeHTTP503, 30 * time.Second},           // 1st transient
		{store.ClassIncomplete, CodeConnectionClosed, 15 * time.Minute}, // 1st incomplete
		{store.ClassTransient, CodeHTTP500, time.Minute},                // 2nd transient
	}
	for i, s := range steps {
		at := r.clock.Now()
		r.step(t, m.ID)
		got, as := r.get(t, m.ID), r.attempts(t, m.ID)
		if len(as) != i+1 || as[i].Class != s.class || as[i].Code != s.code {
			t.Fatalf("attempt %d: %d rows, last %+v; want %s/%s", i+1, len(as), as[len(as)-1], s.class, s.code)
		}
		if got.State != store.StateQueued || !got.NextAttemptAt.Equal(at.Add(s.wait)) {
			t.Fatalf("attempt %d: %s at %s, want queued at +%s", i+1, got.State, got.NextAttemptAt, s.wait)
		}
		r.clock.Set(got.NextAttemptAt)
	}
	r.step(t, m.ID)
	got := r.get(t, m.ID)
	if got.State != store.StateSent || got.Attempts != len(steps) || got.LastCode != CodeHTTP500 {
		t.Fatalf("finally %s after %d failed attempts (last %s), want sent after %d", got.State, got.Attempts, got.LastCode, len(steps))
	}
	if got.MDN == nil || !got.MDN.Positive || !got.MDN.Signed || !got.MDN.MICOK || got.MDN.MIC == "" {
		t.Errorf("receipt %+v, want a positive, signed MDN with the MIC checked", got.MDN)
	}
	if n := len(r.attempts(t, m.ID)); n != len(steps) {
		t.Errorf("%d attempt rows after success, want %d", n, len(steps))
	}
	if calls := r.failedCalls(m.ID); len(calls) != 0 {
		t.Errorf("OnFailed called for a message that was sent: %+v", calls)
	}
	reqs := p.Requests()
	if len(reqs) != len(steps)+1 {
		t.Fatalf("the partner received %d requests, want %d", len(reqs), len(steps)+1)
	}
	r.checkSameWire(t, got, reqs)
	last := reqs[len(reqs)-1].AS2
	if last == nil || last.Err != nil || len(last.Attachments) != 1 || !bytes.Equal(last.Attachments[0].Body, rigPayload) {
		t.Errorf("the partner did not read the payload from the last request: %+v", last)
	}
}

// owedMDN queues, as the receiving side does, the signed asynchronous MDN the station owes
// the partner for a message the partner sent, to be delivered to url.
func (r *rig) owedMDN(t *testing.T, url string) *store.Message {
	t.Helper()
	msg, err := as2.Pack([]as2.Payload{{Filename: "invoice.x12", Body: bytes.NewReader(rigPayload)}}, &as2.PackOptions{
		From: rigPartner, To: rigStation, Sign: as2.MICAlgSHA256, Certificate: r.partner.Certificate, Key: r.partner.Key,
		MDN: as2.MDNRequest{Mode: as2.MDNAsync, Signed: true, MICAlgs: []as2.MICAlg{as2.MICAlgSHA256}, URL: url},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer msg.Close()
	body, err := io.ReadAll(msg.Body.Open())
	if err != nil {
		t.Fatal(err)
	}
	hr := httptest.NewRequest(http.MethodPost, "/as2", bytes.NewReader(body))
	for k, v := range msg.Header {
		hr.Header[k] = v
	}
	req, err := as2.ParseRequest(hr)
	if err != nil {
		t.Fatal(err)
	}
	in, err := as2.Unpack(hr.Header, io.NewSectionReader(bytes.NewReader(body), 0, int64(len(body))),
		&as2.UnpackOptions{Trusted: []*x509.Certificate{r.partner.Certificate}})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	h, mdn, err := as2.EncodeMDN(as2.NewMDN(req, in, as2.Processed(), "as2gate"), req,
		&as2.MDNSigner{Certificate: r.station.Certificate, Key: r.station.Key}, rigStation)
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := r.payloads.Put(t.Context(), bytes.NewReader(mdn))
	if err != nil {
		t.Fatal(err)
	}
	received := &store.Message{
		Direction: store.Inbound, MessageID: msg.MessageID, Station: rigStation, Partner: rigPartner, State: store.StateReceived,
	}
	job := &store.Message{
		Direction: store.Outbound, Kind: store.KindMDN, MessageID: h.Get(as2.HeaderMessageID), Station: rigStation,
		Partner: rigPartner, State: store.StateQueued, Wire: key, WireHeader: h, URL: url,
		MDNMode: as2.MDNNone.String(), NextAttemptAt: r.clock.Now(),
	}
	if err := r.store.CreateInbound(t.Context(), received, job, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	return job
}

// Asynchronous MDNs we owe go through the same queue: delivered once, or retried on the
// failed policy until delivered or given up.
func TestWorkerDeliversAsyncMDN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		behavior func(r *rig) as2test.Behavior
		failures []string // the codes of the failed attempts, in order
		state    string
	}{
		{
			name:     "delivered",
			behavior: func(r *rig) as2test.Behavior { return as2test.AS2(r.as2Config()) },
			state:    store.StateSent,
		},
		{
			name: "delivered after failures",
			behavior: func(r *rig) as2test.Behavior {
				return as2test.Sequence(as2test.Respond(http.StatusServiceUnavailable, nil, nil),
					as2test.Respond(http.StatusBadGateway, nil, nil), as2test.AS2(r.as2Config()))
			},
			failures: []string{CodeHTTP503, CodeHTTP502},
			state:    store.StateSent,
		},
		{
			name:     "given up",
			behavior: func(*rig) as2test.Behavior { return as2test.Respond(http.StatusInternalServerError, nil, nil) },
			failures: []string{CodeHTTP500, CodeHTTP500, CodeHTTP500, CodeHTTP500},
			state:    store.StateFailed,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, nil)
			p := r.fake(t, tc.behavior(r))
			job := r.owedMDN(t, p.URL)
			for n := 1; ; n++ {
				at := r.clock.Now()
				r.step(t, job.ID)
				got := r.get(t, job.ID)
				if n > len(tc.failures) {
					if got.State != tc.state {
						t.Fatalf("after %d sends: %s, want %s", n, got.State, tc.state)
					}
					break
				}
				as := r.attempts(t, job.ID)
				if len(as) != n || as[n-1].Code != tc.failures[n-1] || as[n-1].Class != store.ClassTransient || as[n-1].Action == "" {
					t.Fatalf("send %d: attempts %+v, want %s", n, as, tc.failures[n-1])
				}
				next, retried := wantRetry(store.ClassTransient, false, n, time.Time{}, at, 0)
				if !retried {
					if got.State != store.StateFailed {
						t.Fatalf("send %d: %s, want failed", n, got.State)
					}
					break
				}
				if got.State != store.StateQueued || !got.NextAttemptAt.Equal(next) {
					t.Fatalf("send %d: %s at %s, want queued at %s", n, got.State, got.NextAttemptAt, next)
				}
				r.notDueBefore(t, next)
				r.clock.Set(next)
			}
			reqs := p.Requests()
			if len(reqs) != len(tc.failures)+btoi(tc.state == store.StateSent) {
				t.Fatalf("the partner received %d requests", len(reqs))
			}
			stored := r.wire(t, job)
			for i, req := range reqs {
				if !bytes.Equal(req.Body, stored) {
					t.Errorf("request %d is not the stored MDN", i+1)
				}
			}
			if tc.state == store.StateSent {
				last := reqs[len(reqs)-1].AS2
				if last == nil || last.MDN == nil || last.Signer == nil || !last.MDN.Positive() {
					t.Errorf("the partner did not read a signed, positive MDN: %+v", last)
				}
			}
			if calls := r.failedCalls(job.ID); len(calls) != btoi(tc.state == store.StateFailed) {
				t.Errorf("OnFailed calls %+v", calls)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// runWorker runs w until the returned stop is called (or the test ends); stop waits for Run
// to return.
func runWorker(t *testing.T, w *Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return within 10 s of being stopped")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// eventually polls cond, for state another goroutine changes, for at most 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
	}
}

func await(t *testing.T, p *as2test.Partner, n int) []as2test.Request {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	reqs, err := p.Await(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	return reqs
}

func (r *rig) inState(t *testing.T, id int64, state string) func() bool {
	return func() bool { return r.get(t, id).State == state }
}

// A worker stopped while the partner stalls returns the row to the queue as it was: no
// attempt spent or recorded. The next run sends the same bytes.
func TestWorkerStopReturnsStalledSend(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	p := r.fake(t, as2test.Stall())
	m := r.submit(t, rigPartner)
	stop := runWorker(t, r.w)
	await(t, p, 1)
	if got := r.get(t, m.ID); got.State != store.StateSending || got.LeaseOwner != r.cfg.Owner {
		t.Fatalf("while the partner stalls: %s, leased to %q", got.State, got.LeaseOwner)
	}
	stop()

	got := r.get(t, m.ID)
	if got.State != store.StateQueued || got.Attempts != 0 || got.LeaseOwner != "" || !got.NextAttemptAt.Equal(r.clock.Now()) {
		t.Fatalf("after the stop: %s, %d attempts, leased to %q, due %s; want queued, 0, nobody, now",
			got.State, got.Attempts, got.LeaseOwner, got.NextAttemptAt)
	}
	if as := r.attempts(t, m.ID); len(as) != 0 {
		t.Fatalf("the stop was recorded as an attempt: %+v", as[0])
	}
	if calls := r.failedCalls(m.ID); len(calls) != 0 {
		t.Errorf("OnFailed called: %+v", calls)
	}

	// The gateway starts again.
	p.SetBehavior(as2test.AS2(r.as2Config()))
	restarted, err := New(r.cfg)
	if err != nil {
		t.Fatal(err)
	}
	runWorker(t, restarted)
	eventually(t, "the message is sent after the restart", r.inState(t, m.ID, store.StateSent))
	got = r.get(t, m.ID)
	if got.Attempts != 0 {
		t.Errorf("%d attempts counted", got.Attempts)
	}
	reqs := p.Requests()
	if len(reqs) != 2 {
		t.Fatalf("the partner received %d requests, want 2", len(reqs))
	}
	r.checkSameWire(t, got, reqs)
}

// cutAfterAnswer reads the partner's whole answer and then calls stop: a graceful stop that
// begins at the instant the partner has answered, before the worker has recorded it.
type cutAfterAnswer struct {
	http.RoundTripper
	stop func()
}

func (c cutAfterAnswer) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.RoundTripper.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	c.stop()
	return resp, nil
}

// A stop that comes after the partner has answered must not put the message back in the
// queue: it would be sent twice. The outcome is recorded.
func TestWorkerStopAfterAnswerRecordsIt(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	p := r.fake(t, as2test.AS2(r.as2Config()))
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	hc := p.Client()
	hc.Transport = cutAfterAnswer{RoundTripper: hc.Transport, stop: func() { cancel(errShutdown) }}
	r.partners.set(rigPartner, p.URL, hc)
	m := r.submit(t, rigPartner)
	rows := r.claim(t)
	if len(rows) != 1 {
		t.Fatalf("claimed %v", ids(rows))
	}
	r.w.process(ctx, rows[0])
	if context.Cause(ctx) != errShutdown {
		t.Fatal("the stop did not happen")
	}
	got := r.get(t, m.ID)
	if got.State != store.StateSent || got.MDN == nil || !got.MDN.Positive {
		t.Fatalf("after the answer and the stop: %s, MDN %+v; want sent with the receipt", got.State, got.MDN)
	}
	if n := len(p.Requests()); n != 1 {
		t.Errorf("the partner received %d requests", n)
	}
}

// A worker that dies holding a lease (kill -9) leaves its row in sending; once the lease
// has run out another worker takes the row and sends it once, with the bytes the first one
// packed. The dead worker's late outcome is refused.
func TestWorkerReclaimsExpiredLease(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	p := r.fake(t, as2test.AS2(r.as2Config()))
	m := r.submit(t, rigPartner)

	crashed := r.cfg
	crashed.Owner = "node-x"
	x, err := New(crashed)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := r.store.Claim(t.Context(), store.ClaimRequest{Now: r.clock.Now(), Owner: "node-x", Lease: 10 * time.Minute, Limit: 1})
	if err != nil || len(rows) != 1 {
		t.Fatalf("claim by node-x: %v, %v", ids(rows), err)
	}
	// node-x packs the message, then dies before the request leaves.
	pt, err := r.partners.Partner(t.Context(), rigStation, rigPartner)
	if err != nil {
		t.Fatal(err)
	}
	_, release, err := x.packed(t.Context(), rows[0], pt)
	if err != nil {
		t.Fatal(err)
	}
	release()
	packedWire := r.get(t, m.ID).Wire

	r.clock.Set(rigEpoch.Add(10*time.Minute - time.Second))
	if rows := r.claim(t); len(rows) != 0 {
		t.Fatalf("claimed %v while node-x's lease holds", ids(rows))
	}
	r.clock.Set(rigEpoch.Add(10 * time.Minute))
	r.step(t, m.ID)

	got := r.get(t, m.ID)
	if got.State != store.StateSent || got.Attempts != 0 || got.Wire != packedWire {
		t.Fatalf("after the takeover: %s, %d attempts, wire %s (node-x packed %s)", got.State, got.Attempts, got.Wire, packedWire)
	}
	reqs := p.Requests()
	if len(reqs) != 1 {
		t.Fatalf("the partner received %d requests, want 1", len(reqs))
	}
	r.checkSameWire(t, got, reqs)
	err = r.store.Finish(t.Context(), m.ID, "node-x", store.Outcome{State: store.StateQueued, NextAttemptAt: r.clock.Now()})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("node-x's late outcome: %v, want %v", err, store.ErrConflict)
	}
}

// At most PerPartner rows of one partner are in flight, while other partners' rows go out.
func TestWorkerPerPartnerLimit(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *Config) { c.Concurrency, c.PerPartner = 4, 2 })
	gate := make(chan struct{})
	var inFlight, peak atomic.Int32
	slow := as2test.NewPartner(t, as2test.WithBehavior(as2test.Handler(func(w http.ResponseWriter, req *http.Request, _ []byte) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		select {
		case <-gate:
			w.WriteHeader(http.StatusOK)
		case <-req.Context().Done():
		}
	})))
	r.partners.mu.Lock()
	sp := *r.partners.ps[rigPartner]
	sp.Pack.To, sp.Pack.MDN, sp.Client = "SLOW", as2.MDNRequest{Mode: as2.MDNNone}, slow.Client()
	r.partners.ps["SLOW"], r.partners.urls["SLOW"] = &sp, slow.URL
	r.partners.mu.Unlock()
	fast := r.fake(t, as2test.AS2(r.as2Config()))

	var slowRows []*store.Message
	for range 5 {
		slowRows = append(slowRows, r.submit(t, "SLOW"))
	}
	fastRow := r.submit(t, rigPartner)
	stop := runWorker(t, r.w)

	await(t, slow, 2)
	await(t, fast, 1)
	eventually(t, "the other partner's message is sent", r.inState(t, fastRow.ID, store.StateSent))
	states := map[string]int{}
	for _, m := range slowRows {
		states[r.get(t, m.ID).State]++
	}
	if states[store.StateSending] != 2 || states[store.StateQueued] != 3 {
		t.Fatalf("with the partner holding two: states %v, want 2 sending and 3 queued", states)
	}
	close(gate)
	for _, m := range slowRows {
		eventually(t, "every message is sent", r.inState(t, m.ID, store.StateSent))
	}
	stop()
	if got := peak.Load(); got != 2 {
		t.Errorf("at most %d requests were in flight at the partner at once, want 2", got)
	}
	if n := len(slow.Requests()); n != len(slowRows) {
		t.Errorf("the partner received %d requests for %d messages", n, len(slowRows))
	}
}

// Run waits for the next due row, but not for rows that are due and held back by the
// per-partner limit: those wait for a send to finish, which wakes Run.
func TestWorkerUntilDue(t *testing.T) {
	t.Parallel()
	var seq atomic.Int64
	queue := func(t *testing.T, r *rig, partner string, due time.Time) {
		t.Helper()
		m := &store.Message{Direction: store.Outbound, Kind: store.KindMessage, MessageID: fmt.Sprintf("<%d@station.example>", seq.Add(1)),
			Station: rigStation, Partner: partner, State: store.StateQueued, NextAttemptAt: due}
		if err := r.store.CreateMessage(t.Context(), m, nil); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, r *rig)
		now   time.Time // the clock when Run decides, after its claim at rigEpoch
		want  time.Duration
	}{
		{name: "nothing queued", setup: func(*testing.T, *rig) {}, now: rigEpoch, want: time.Hour},
		{
			name:  "a retry later",
			setup: func(t *testing.T, r *rig) { queue(t, r, rigPartner, rigEpoch.Add(30*time.Second)) },
			now:   rigEpoch, want: 30 * time.Second,
		},
		{
			name:  "a retry beyond the poll",
			setup: func(t *testing.T, r *rig) { queue(t, r, rigPartner, rigEpoch.Add(2*time.Hour)) },
			now:   rigEpoch, want: time.Hour,
		},
		{
			name:  "a row due since the claim",
			setup: func(t *testing.T, r *rig) { queue(t, r, rigPartner, rigEpoch.Add(time.Second)) },
			now:   rigEpoch.Add(2 * time.Second), want: 0,
		},
		{
			name: "due rows held back by the per-partner limit",
			setup: func(t *testing.T, r *rig) {
				queue(t, r, rigPartner, rigEpoch)
				queue(t, r, rigPartner, rigEpoch)
				if rows := r.claim(t, rigEpoch); len(rows) != 1 {
					t.Fatalf("claimed %v, want one row (PerPartner 1)", ids(rows))
				}
			},
			now: rigEpoch.Add(time.Millisecond), want: time.Hour,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, func(c *Config) { c.PerPartner = 1 })
			tc.setup(t, r)
			r.clock.Set(tc.now)
			if got := r.w.untilDue(t.Context(), rigEpoch); got != tc.want {
				t.Errorf("untilDue = %s, want %s", got, tc.want)
			}
		})
	}
}
