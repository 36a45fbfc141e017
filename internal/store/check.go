package store

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// CheckMessage refuses a record that the queue could not handle, before a database's
// constraints would with a less helpful message. Every driver calls it on insert.
func CheckMessage(m *Message) error {
	switch m.Direction {
	case Outbound:
		switch m.Kind {
		case KindMessage, KindMDN:
		default:
			return fmt.Errorf("outbound kind %q is not %q or %q", m.Kind, KindMessage, KindMDN)
		}
		switch m.State {
		case StateQueued, StateSending, StateAwaitingMDN, StateSent, StateFailed:
		default:
			return fmt.Errorf("state %q is not an outbound state", m.State)
		}
	case Inbound:
		switch m.State {
		case StateReceived, StateSuspended:
		default:
			return fmt.Errorf("state %q is not an inbound state", m.State)
		}
	default:
		return fmt.Errorf("direction %q is not %q or %q", m.Direction, Outbound, Inbound)
	}
	if m.MessageID == "" {
		return errors.New("no Message-ID")
	}
	return nil
}

// CheckOutcome refuses an outcome with a state outside states or an incomplete attempt or
// event (the rules of Outcome).
func CheckOutcome(o Outcome, states ...string) error {
	if !slices.Contains(states, o.State) {
		return fmt.Errorf("outcome state %q is not one of %s", o.State, strings.Join(states, ", "))
	}
	if a := o.Attempt; a != nil {
		switch a.Class {
		case ClassTransient, ClassIncomplete, ClassPermanent:
		default:
			return fmt.Errorf("attempt class %q is not %s, %s or %s", a.Class, ClassTransient, ClassIncomplete, ClassPermanent)
		}
		if a.Code == "" {
			return errors.New("attempt without a code")
		}
	}
	if o.Event != nil && o.Event.Type == "" {
		return errors.New("event without a type")
	}
	return nil
}

// The drivers store times as integer nanoseconds since the Unix epoch, which both databases
// compare and index as plain numbers, with the same precision. The zero time.Time is stored
// as 0, and 0 reads back as the zero time: the epoch instant itself does not occur in the
// gateway's records.
var (
	minNano = time.Unix(0, math.MinInt64)
	maxNano = time.Unix(0, math.MaxInt64)
)

// UnixNano is t as the drivers store it, clamped to the int64 range (about years 1677 to
// 2262) so that a "never" far in the future still sorts last.
func UnixNano(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minNano):
		return math.MinInt64
	case t.After(maxNano):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// FromNano is the time stored as n, in UTC.
func FromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// CheckConfigEntry refuses an entry without a known kind, a name or a document, or whose
// material names a file with a folder: every driver calls it before a write.
func CheckConfigEntry(e *ConfigEntry) error {
	switch {
	case e.Kind != EntryPartner && e.Kind != EntryStation && e.Kind != EntryProfile:
		return fmt.Errorf("config entry kind %q is not partner, station or profile", e.Kind)
	case strings.TrimSpace(e.Name) == "":
		return errors.New("a config entry needs a name")
	case strings.TrimSpace(e.Document) == "":
		return fmt.Errorf("config entry %s %q has no document", e.Kind, e.Name)
	}
	for f := range e.Material {
		if f == "" || strings.ContainsAny(f, `/\`) || f == "." || f == ".." {
			return fmt.Errorf("config entry %s %q: material file name %q is not a plain file name", e.Kind, e.Name, f)
		}
	}
	return nil
}

// CheckUser refuses a user without a name, a known role or a password hash.
func CheckUser(u *User) error {
	switch {
	case strings.TrimSpace(u.Name) == "":
		return errors.New("a user needs a name")
	case !ValidRole(u.Role):
		return fmt.Errorf("user %q has role %q; want one of %s", u.Name, u.Role, strings.Join(Roles, ", "))
	case len(u.PasswordHash) == 0:
		return fmt.Errorf("user %q has no password hash", u.Name)
	}
	return nil
}

// CheckSession refuses a session without a token hash or its times.
func CheckSession(s *Session) error {
	switch {
	case s.TokenHash == "":
		return errors.New("a session needs a token hash")
	case s.CreatedAt.IsZero() || s.ExpiresAt.IsZero():
		return fmt.Errorf("session of %q needs its creation and expiry times", s.User)
	}
	return nil
}
