package notify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// How an EmailConfig talks TLS to the SMTP server.
const (
	// EmailSTARTTLS upgrades the connection with STARTTLS (RFC 3207) and refuses to send
	// when the server does not offer it. Default port 587.
	EmailSTARTTLS = "starttls"
	// EmailImplicitTLS speaks TLS from the first byte (SMTPS, RFC 8314). Default port 465.
	EmailImplicitTLS = "implicit"
	// EmailNoTLS sends in clear: only for a relay on the same host or network. Default
	// port 25.
	EmailNoTLS = "none"
)

// DefaultEmailTimeout bounds one SMTP attempt: connecting, the whole exchange, and each
// read or write in it.
const DefaultEmailTimeout = 30 * time.Second

// EmailConfig is where and how notification emails are sent.
type EmailConfig struct {
	// Host is the SMTP server's name or address (required). With TLS its certificate
	// must be valid for this name.
	Host string
	// Port defaults by TLS mode: 587 for starttls, 465 for implicit, 25 for none.
	Port int
	// TLS is EmailSTARTTLS (default), EmailImplicitTLS or EmailNoTLS.
	TLS string
	// RootCAs verifies the server's certificate; nil: the system's roots.
	RootCAs *x509.CertPool
	// Username turns on SMTP authentication (RFC 4954) with the strongest mechanism the
	// server offers; empty: no authentication. Not allowed without TLS, which would send
	// the password in clear.
	Username string
	// Password goes with Username. The configuration reads it from a file.
	Password string
	// From is the sender address (required), e.g. "as2gate <as2gate@example.com>".
	From string
	// To lists the recipients (at least one).
	To []string
	// Timeout bounds one attempt. Default DefaultEmailTimeout.
	Timeout time.Duration
}

// Validate reports the first invalid setting, naming it.
func (c *EmailConfig) Validate() error {
	switch c.TLS {
	case "", EmailSTARTTLS, EmailImplicitTLS, EmailNoTLS:
	default:
		return fmt.Errorf("notify: email.tls is %q: allowed are %s, %s and %s", c.TLS, EmailSTARTTLS, EmailImplicitTLS, EmailNoTLS)
	}
	switch {
	case c.Host == "" || strings.ContainsAny(c.Host, " \t\r\n/"):
		return fmt.Errorf("notify: email.host is %q: a host name or address is required", c.Host)
	case c.Port < 0 || c.Port > 65535:
		return fmt.Errorf("notify: email.port is %d: it must be between 1 and 65535 (0 for the default of the TLS mode)", c.Port)
	case c.Timeout < 0:
		return fmt.Errorf("notify: email.timeout is %s: it must be positive (0 for the default %s)", c.Timeout, DefaultEmailTimeout)
	case c.Username != "" && c.TLS == EmailNoTLS:
		return errors.New("notify: email.username is set with email.tls: none: the password would cross the network in clear; use starttls or implicit")
	case c.Username == "" && c.Password != "":
		return errors.New("notify: email.password is set without email.username")
	}
	if _, err := mail.ParseAddress(c.From); err != nil {
		return fmt.Errorf("notify: email.from is %q: not an email address: %w", c.From, err)
	}
	if len(c.To) == 0 {
		return errors.New("notify: email.to: at least one recipient is required")
	}
	for i, to := range c.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return fmt.Errorf("notify: email.to[%d] is %q: not an email address: %w", i, to, err)
		}
	}
	return nil
}

type emailSender struct {
	cfg  EmailConfig
	opts []gomail.Option
	now  func() time.Time
}

func newEmailSender(cfg EmailConfig, now func() time.Time) (*emailSender, error) {
	if cfg.TLS == "" {
		cfg.TLS = EmailSTARTTLS
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultEmailTimeout
	}
	if cfg.Port == 0 {
		switch cfg.TLS {
		case EmailSTARTTLS:
			cfg.Port = 587 // submission, RFC 6409
		case EmailImplicitTLS:
			cfg.Port = 465 // submissions, RFC 8314
		case EmailNoTLS:
			cfg.Port = 25
		}
	}
	opts := []gomail.Option{
		gomail.WithPort(cfg.Port),
		gomail.WithTimeout(cfg.Timeout),
		gomail.WithTLSConfig(&tls.Config{
			ServerName: cfg.Host,
			RootCAs:    cfg.RootCAs,
			MinVersion: tls.VersionTLS12,
		}),
	}
	switch cfg.TLS {
	case EmailSTARTTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case EmailImplicitTLS:
		opts = append(opts, gomail.WithSSL())
	case EmailNoTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if cfg.Username != "" {
		opts = append(opts,
			gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(cfg.Username),
			gomail.WithPassword(cfg.Password))
	}
	// A client is made for each attempt (it holds the connection); making one here checks
	// the options once, at start.
	if _, err := gomail.NewClient(cfg.Host, opts...); err != nil {
		return nil, fmt.Errorf("notify: email: %w", err)
	}
	return &emailSender{cfg: cfg, opts: opts, now: now}, nil
}

func (s *emailSender) name() string { return "email" }

func (s *emailSender) send(ctx context.Context, ev Event, delivery string) error {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(s.cfg.From); err != nil {
		return permanent(fmt.Errorf("email.from: %w", err))
	}
	if err := msg.To(s.cfg.To...); err != nil {
		return permanent(fmt.Errorf("email.to: %w", err))
	}
	msg.Subject("as2gate: " + ev.summary())
	msg.SetDateWithValue(s.now())
	// The same Message-ID on every retry lets mail systems drop a copy that got through
	// although the server's answer was lost.
	msg.SetMessageIDWithValue(delivery + "@as2gate")
	msg.SetUserAgent("as2gate")
	// RFC 3834: tells vacation responders and ticket systems not to answer.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, emailBody(ev))

	client, err := gomail.NewClient(s.cfg.Host, s.opts...)
	if err != nil {
		return permanent(err)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		err = fmt.Errorf("smtp %s: %w", net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port)), err)
		if smtpPermanent(err) {
			return permanent(err)
		}
		return err
	}
	return nil
}

// smtpPermanent reports whether the server refused with a 5yz reply, which RFC 5321
// §4.2.1 defines as permanent: a bad password, an unknown recipient, a sender the relay
// does not accept. Sending the same thing again would only be refused again. Network and
// TLS failures and 4yz replies are worth retrying.
func smtpPermanent(err error) bool {
	var se *gomail.SendError
	if errors.As(err, &se) {
		return se.ErrorCode() >= 500 && se.ErrorCode() < 600
	}
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500 && te.Code < 600
}

// emailBody renders the plain-text body: what happened, the facts an operator looks for,
// and what to do.
func emailBody(ev Event) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	field := func(name, value string) {
		if value != "" {
			w("  %-12s %s\n", name+":", value)
		}
	}

	switch ev.Type {
	case MessageFailed:
		w("The gateway stopped trying to send %s to partner %s. It is in the Failed mailbox.\n", ev.messageRef(), ev.Partner)
	case MessageSuspended:
		w("The gateway received %s from partner %s and suspended it: the message is kept, "+
			"but it was not delivered.\n", ev.messageRef(), ev.Partner)
	case CertificateExpiring:
		w("A certificate of %s %s.\n", ev.Partner, ev.Certificate.expiry())
	default:
		w("The gateway reports %s for %s.\n", ev.Type, ev.Partner)
	}
	w("\n")

	if ev.ID != 0 {
		field("Message", fmt.Sprint(ev.ID))
	}
	field("Message-ID", ev.MessageID)
	field("Partner", ev.Partner)
	field("Station", ev.Station)
	switch ev.Direction {
	case "out":
		field("Direction", "outbound")
	case "in":
		field("Direction", "inbound")
	default:
		field("Direction", ev.Direction)
	}
	field("Class", ev.Class)
	field("Code", ev.Code)
	if ev.Attempts != 0 {
		field("Attempts", fmt.Sprint(ev.Attempts))
	}
	if c := ev.Certificate; c != nil {
		field("Subject", c.Subject)
		field("Issuer", c.Issuer)
		field("Serial", c.Serial)
		field("SHA-256", c.SHA256)
		field("Not after", c.NotAfter.UTC().Format(time.RFC3339))
	}
	field("Time", ev.At.UTC().Format(time.RFC3339))
	if ev.Error != "" {
		w("\nError:\n  %s\n", strings.ReplaceAll(ev.Error, "\n", "\n  "))
	}
	w("\nWhat to do:\n  %s\n", ev.Action)
	w("\n-- \nSent by as2gate. The gateway's console and log have the full history of the message.\n")
	return b.String()
}
