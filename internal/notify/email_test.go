package notify

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/as2gate/as2gate/cms/cmstest"
)

// mailServer is a real SMTP server (go-smtp) on loopback that keeps what it receives.
type mailServer struct {
	host, port string
	roots      *x509.CertPool // trusts the server's certificate
	user, pass string         // required credentials; "" accepts mail without AUTH

	mu       sync.Mutex
	received []receivedMail
	tempFail int // answer 451 to this many DATA commands first
}

type receivedMail struct {
	from   string
	to     []string
	data   []byte
	tls    bool
	authed string
}

// newMailServer starts a server offering STARTTLS with a certificate for 127.0.0.1, and
// AUTH PLAIN over TLS when user is set.
func newMailServer(t testing.TB, user, pass string) *mailServer {
	t.Helper()
	id := cmstest.New(t, "smtp.test", &cmstest.Options{
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	ms := &mailServer{roots: x509.NewCertPool(), user: user, pass: pass}
	ms.roots.AddCert(id.Certificate)

	srv := smtp.NewServer(ms)
	srv.Domain = "smtp.test"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{{
		Certificate: [][]byte{id.Certificate.Raw}, PrivateKey: id.Key, Leaf: id.Certificate,
	}}}
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ms.host, ms.port, _ = net.SplitHostPort(ln.Addr().String())
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ms
}

func (ms *mailServer) config(t testing.TB) *EmailConfig {
	port, err := strconv.Atoi(ms.port)
	if err != nil {
		t.Fatal(err)
	}
	return &EmailConfig{
		Host:     ms.host,
		Port:     port,
		RootCAs:  ms.roots,
		Username: ms.user,
		Password: ms.pass,
		From:     "as2gate <as2gate@gateway.example>",
		To:       []string{"ops@gateway.example", "Night Shift <oncall@gateway.example>"},
		Timeout:  10 * time.Second,
	}
}

func (ms *mailServer) mails() []receivedMail {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return slices.Clone(ms.received)
}

// NewSession implements smtp.Backend.
func (ms *mailServer) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &mailSession{ms: ms, conn: c}, nil
}

type mailSession struct {
	ms     *mailServer
	conn   *smtp.Conn
	authed string
	from   string
	to     []string
}

func (s *mailSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *mailSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.ms.user || password != s.ms.pass {
			return smtp.ErrAuthFailed
		}
		s.authed = username
		return nil
	}), nil
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.ms.user != "" && s.authed == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.ms.mu.Lock()
	defer s.ms.mu.Unlock()
	if s.ms.tempFail > 0 {
		s.ms.tempFail--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.ms.received = append(s.ms.received, receivedMail{from: s.from, to: s.to, data: data, tls: isTLS, authed: s.authed})
	return nil
}

func (s *mailSession) Reset()        { s.from, s.to = "", nil }
func (s *mailSession) Logout() error { return nil }

// parsedMail is a received mail with its subject and body decoded.
type parsedMail struct {
	header  mail.Header
	subject string
	body    string
}

func parseMail(t testing.TB, data []byte) parsedMail {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("received mail does not parse: %v\n%s", err, data)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("subject: %v", err)
	}
	var body io.Reader = m.Body
	switch cte := strings.ToLower(m.Header.Get("Content-Transfer-Encoding")); cte {
	case "quoted-printable":
		body = quotedprintable.NewReader(m.Body)
	case "", "7bit", "8bit":
	default:
		t.Fatalf("unexpected Content-Transfer-Encoding %q", cte)
	}
	text, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	return parsedMail{header: m.Header, subject: subject, body: strings.ReplaceAll(string(text), "\r\n", "\n")}
}

func TestEmailDelivers(t *testing.T) {
	t.Parallel()
	ms := newMailServer(t, "gateway", "s3cret-from-a-file")
	c := newClock()
	log, buf := newLog()
	n, err := New(Config{Email: ms.config(t), Now: c.Now, Sleep: c.Sleep}, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer n.Close(t.Context())

	ev := failedEvent()
	if err := n.Deliver(t.Context(), ev); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	got := ms.mails()
	if len(got) != 1 {
		t.Fatalf("server received %d mails, want 1", len(got))
	}
	m := got[0]
	if !m.tls || m.authed != "gateway" {
		t.Errorf("mail went over TLS=%v authenticated as %q, want STARTTLS and AUTH as gateway", m.tls, m.authed)
	}
	if m.from != "as2gate@gateway.example" {
		t.Errorf("MAIL FROM %q", m.from)
	}
	if want := []string{"ops@gateway.example", "oncall@gateway.example"}; !slices.Equal(m.to, want) {
		t.Errorf("RCPT TO %v, want %v", m.to, want)
	}

	p := parseMail(t, m.data)
	if want := "as2gate: message 42 to PARTNERX failed (http_503)"; p.subject != want {
		t.Errorf("Subject %q, want %q", p.subject, want)
	}
	if to := p.header.Get("To"); !strings.Contains(to, "ops@gateway.example") || !strings.Contains(to, "oncall@gateway.example") {
		t.Errorf("To header %q", to)
	}
	if got := p.header.Get("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("Auto-Submitted %q, want auto-generated", got)
	}
	if date, err := p.header.Date(); err != nil || !date.Equal(t0) {
		t.Errorf("Date %v (%v), want %v", date, err, t0)
	}
	if ct := p.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want text/plain", ct)
	}
	for _, want := range []string{
		"The gateway stopped trying to send message 42 to partner PARTNERX.",
		"Message-ID:  <20260310.1@gateway.example>",
		"Direction:   outbound",
		"Class:       transient",
		"Code:        http_503",
		"Attempts:    10",
		"Time:        2026-03-10T11:59:00Z",
		"partner answered 503 Service Unavailable",
		"What to do:\n  The partner's server is overloaded",
	} {
		if !strings.Contains(p.body, want) {
			t.Errorf("body lacks %q:\n%s", want, p.body)
		}
	}
	if strings.Contains(p.body, ms.pass) {
		t.Error("the body contains the SMTP password")
	}
	if rec := buf.records(t, "notify: notification delivered"); len(rec) != 1 || rec[0]["channel"] != "email" {
		t.Errorf("delivery logged as %v", rec)
	}
}

func TestEmailRetriesTemporaryRefusal(t *testing.T) {
	t.Parallel()
	ms := newMailServer(t, "", "")
	ms.mu.Lock()
	ms.tempFail = 2
	ms.mu.Unlock()
	c := newClock()
	n, err := New(Config{Email: ms.config(t), Now: c.Now, Sleep: c.Sleep, Rand: func() float64 { return 0.5 }}, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer n.Close(t.Context())
	if err := n.Deliver(t.Context(), failedEvent()); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got, want := c.Waits(), []time.Duration{2 * time.Second, 4 * time.Second}; !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
	got := ms.mails()
	if len(got) != 1 || !got[0].tls {
		t.Fatalf("server kept %d mails (%v), want 1 over STARTTLS", len(got), got)
	}
}

func TestEmailRefusalsThatStop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		mutate   func(*EmailConfig)
		mention  string
		attempts int // of 3 allowed
	}{
		// A 5yz reply is final: the same password would be refused again.
		{"wrong password", func(c *EmailConfig) { c.Password = "wrong" }, "535", 1},
		// TLS and network failures are retried: they are often passing.
		{"untrusted certificate", func(c *EmailConfig) { c.RootCAs = x509.NewCertPool() }, "certificate", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ms := newMailServer(t, "gateway", "s3cret")
			cfg := ms.config(t)
			tt.mutate(cfg)
			c := newClock()
			log, buf := newLog()
			n, err := New(Config{Email: cfg, Retry: RetryPolicy{Attempts: 3}, Now: c.Now, Sleep: c.Sleep}, log)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer n.Close(t.Context())
			err = n.Deliver(t.Context(), failedEvent())
			if err == nil || !strings.Contains(err.Error(), tt.mention) {
				t.Fatalf("Deliver error = %v, want one mentioning %q", err, tt.mention)
			}
			if len(ms.mails()) != 0 {
				t.Error("the server kept a mail")
			}
			gaveUp := buf.records(t, "notify: notification given up")
			if len(gaveUp) != 1 || gaveUp[0]["attempt"] != float64(tt.attempts) {
				t.Errorf("give-up logged as %v, want one after attempt %d:\n%s", gaveUp, tt.attempts, buf)
			}
			if got := len(c.Waits()); got != tt.attempts-1 {
				t.Errorf("waited %d times, want %d", got, tt.attempts-1)
			}
		})
	}
}

func TestEmailPlainRelay(t *testing.T) {
	t.Parallel()
	ms := newMailServer(t, "", "")
	cfg := ms.config(t)
	cfg.TLS = EmailNoTLS
	cfg.RootCAs = nil
	n, err := New(Config{Email: cfg}, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer n.Close(t.Context())
	if err := n.Deliver(t.Context(), failedEvent()); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	if got := ms.mails(); len(got) != 1 || got[0].tls {
		t.Fatalf("server kept %v, want one mail without TLS", got)
	}
}

func TestEmailValidate(t *testing.T) {
	t.Parallel()
	valid := func() EmailConfig {
		return EmailConfig{Host: "smtp.example.com", From: "as2gate@example.com", To: []string{"ops@example.com"}}
	}
	tests := []struct {
		name    string
		mutate  func(*EmailConfig)
		mention string // "" for a valid config
	}{
		{"minimal", func(*EmailConfig) {}, ""},
		{"implicit TLS with auth", func(c *EmailConfig) { c.TLS, c.Username, c.Password = EmailImplicitTLS, "u", "p" }, ""},
		{"no host", func(c *EmailConfig) { c.Host = "" }, "email.host"},
		{"host with a path", func(c *EmailConfig) { c.Host = "smtp.example.com/x" }, "email.host"},
		{"port out of range", func(c *EmailConfig) { c.Port = 70000 }, "email.port"},
		{"unknown TLS mode", func(c *EmailConfig) { c.TLS = "ssl" }, "email.tls"},
		{"auth in clear", func(c *EmailConfig) { c.TLS, c.Username, c.Password = EmailNoTLS, "u", "p" }, "in clear"},
		{"password without user", func(c *EmailConfig) { c.Password = "p" }, "email.password"},
		{"bad from", func(c *EmailConfig) { c.From = "not an address" }, "email.from"},
		{"no recipient", func(c *EmailConfig) { c.To = nil }, "email.to"},
		{"bad recipient", func(c *EmailConfig) { c.To = []string{"ops@example.com", "nobody"} }, "email.to[1]"},
		{"negative timeout", func(c *EmailConfig) { c.Timeout = -time.Second }, "email.timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := valid()
			tt.mutate(&c)
			err := c.Validate()
			if tt.mention == "" {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("Validate = %v, want an error naming %q", err, tt.mention)
			}
		})
	}
}

func TestSMTPPermanent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"535 authentication failed", &textproto.Error{Code: 535, Msg: "5.7.8 Authentication failed"}, true},
		{"550 wrapped", fmt.Errorf("dial failed: %w", &textproto.Error{Code: 550, Msg: "no such user"}), true},
		{"451 try later", &textproto.Error{Code: 451, Msg: "4.3.0 try again later"}, false},
		{"connection refused", errors.New("dial tcp 127.0.0.1:25: connect: connection refused"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := smtpPermanent(tt.err); got != tt.want {
				t.Errorf("smtpPermanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
