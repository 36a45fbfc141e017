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
