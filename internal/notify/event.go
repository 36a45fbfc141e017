package notify

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/as2gate/as2gate/internal/store"
)

// EventType says what happened. Its values are part of the webhook contract.
type EventType string

// The events the gateway reports (R-RETRY-3).
const (
	// MessageFailed: an outbound message reached the Failed mailbox, after a permanent
	// failure or when its retries ran out.
	MessageFailed EventType = "message_failed"
	// MessageSuspended: an inbound message was kept but not delivered, because it could not
	// be unpacked or was weaker than the agreement with the partner.
	MessageSuspended EventType = "message_suspended"
	// CertificateExpiring: a station or partner certificate expires within 30 days, or has
	// expired. See ExpiryEvents.
	CertificateExpiring EventType = "certificate_expiring"
)

// Event is one notification. Its JSON form is the body of the webhook POST; fields that do
// not apply to an event type are left out of the JSON.
type Event struct {
	Type EventType `json:"event"`
	// At is when it happened; Deliver fills in the current time when it is zero.
	At time.Time `json:"at"`

	// ID is the gateway's number for the message (store.Message.ID), as in the API and the
	// console.
	ID int64 `json:"id,omitempty"`
	// MessageID is the AS2 Message-ID, angle brackets included.
	MessageID string `json:"message_id,omitempty"`
	// Partner is the partner's AS2 id; for a certificate event, the AS2 id of the station
	// or partner the certificate belongs to.
	Partner   string `json:"partner"`
	Station   string `json:"station,omitempty"`
	Direction string `json:"direction,omitempty"` // store.Outbound ("out") or store.Inbound ("in")

	// Class is the failure class of the last attempt (store.ClassTransient, ...).
	Class string `json:"class,omitempty"`
	// Code is the stable failure code, e.g. "http_503", "mdn_negative",
	// "insufficient-message-security", "certificate_expiring".
	Code string `json:"code"`
	// Error is the last error as the gateway saw it.
	Error string `json:"error,omitempty"`
	// Action is what the operator can do about it, in plain words. Deliver fills in a
	// general one for the event type when it is empty.
	Action string `json:"action"`
	// Attempts is how many attempts failed (outbound messages).
	Attempts int `json:"attempts,omitempty"`

	// Certificate describes the certificate of a CertificateExpiring event.
	Certificate *Certificate `json:"certificate,omitempty"`
}

// Certificate identifies an expiring certificate in an Event.
type Certificate struct {
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer"`
	Serial   string    `json:"serial"` // hexadecimal
	SHA256   string    `json:"sha256"` // hex SHA-256 of the DER certificate: its fingerprint
	NotAfter time.Time `json:"not_after"`
	// DaysLeft is the number of whole days until NotAfter: 0 on the last day, negative once
	// the certificate has expired.
	DaysLeft int `json:"days_left"`
	// Threshold is the notification step the certificate has reached, in days (30, 14, 7,
	// 1, or 0 once expired); see ExpiryEvents.
	Threshold int `json:"threshold_days"`
}

// MessageEvent builds the event of type t for message m as the store holds it. The class,
// code, error and corrective action come from last, the attempt that ended the message,
// when there is one (outbound), and otherwise from m.LastCode and m.LastError (an inbound
// message the receiver suspended).
func MessageEvent(t EventType, m *store.Message, last *store.Attempt, at time.Time) Event {
	ev := Event{
		Type:      t,
		At:        at,
		ID:        m.ID,
		MessageID: m.MessageID,
		Partner:   m.Partner,
		Station:   m.Station,
		Direction: m.Direction,
		Code:      m.LastCode,
		Error:     m.LastError,
		Attempts:  m.Attempts,
	}
	if last != nil {
		ev.Class = last.Class
		ev.Code = last.Code
		ev.Error = last.Error
		ev.Action = last.Action
	}
	return ev
}

// withDefaults fills in the time (in UTC) and a general corrective action, so that every
// notification says when it happened and what to do.
func (ev Event) withDefaults(now time.Time) Event {
	if ev.At.IsZero() {
		ev.At = now
	}
	ev.At = ev.At.UTC() // one zone in every notification, whatever the host's
	if ev.Action == "" {
		ev.Action = defaultAction(ev)
	}
	return ev
}

func defaultAction(ev Event) string {
	switch ev.Type {
	case MessageFailed:
		return "Look at the attempts of the message in the Failed mailbox for the cause; " +
			"once it is fixed, retry the message from there."
	case MessageSuspended:
		return "The message is kept but was not delivered. Compare what the partner sent with " +
			"the agreement (signing, encryption, certificates); once they match, re-process " +
			"the message from the Received mailbox, or ask the partner to send it again."
	case CertificateExpiring:
		return "Replace the certificate before it expires. For a partner's certificate, ask the " +
			"partner for its new one and add it to the partner's certs, keeping the old one " +
			"until the partner has switched. For a station's certificate, make a new key and " +
			"certificate and send the certificate to every partner before using it."
	}
	return "See the gateway's log and console for details."
}

// summary is the one-line description used as the email subject (after "as2gate: ") and in
// errors, e.g. "message 42 to PARTNERX failed (http_503)".
func (ev Event) summary() string {
	var s string
	switch ev.Type {
	case MessageFailed:
		s = fmt.Sprintf("%s to %s failed", ev.messageRef(), ev.Partner)
	case MessageSuspended:
		s = fmt.Sprintf("%s from %s suspended", ev.messageRef(), ev.Partner)
	case CertificateExpiring:
		s = fmt.Sprintf("certificate of %s %s", ev.Partner, ev.Certificate.expiry())
		return oneLine(s)
	default:
		s = fmt.Sprintf("%s for %s", ev.Type, ev.Partner)
	}
	if ev.Code != "" {
		s += " (" + ev.Code + ")"
	}
	return oneLine(s)
}

func (ev Event) messageRef() string {
	switch {
	case ev.ID != 0:
		return fmt.Sprintf("message %d", ev.ID)
	case ev.MessageID != "":
		return "message " + ev.MessageID
	}
	return "a message"
}

// expiry says when the certificate expires, e.g. "expires in 14 days (2026-06-01)". A nil
// certificate (an event built by hand without one) says so rather than failing.
func (c *Certificate) expiry() string {
	if c == nil {
		return "expires soon"
	}
	date := c.NotAfter.UTC().Format(time.DateOnly)
	switch {
	case c.DaysLeft < 0:
		return "expired on " + date
	case c.DaysLeft == 0:
		return "expires within a day (" + date + ")"
	case c.DaysLeft == 1:
		return "expires in 1 day (" + date + ")"
	}
	return fmt.Sprintf("expires in %d days (%s)", c.DaysLeft, date)
}

// oneLine replaces control characters, line breaks included, by spaces: partner ids and
// codes can come from a partner's headers, and a subject line must stay one header line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}
