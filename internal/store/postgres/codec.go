package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// Times are stored as BIGINT nanoseconds since the Unix epoch, as in the SQLite store, so
// that both keep the same precision and compare as plain numbers. The zero time.Time is
// stored as 0, and 0 reads back as the zero time.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// unixNano is t as stored, clamped to the int64 range so that a "never" far in the future
// still sorts last.
func unixNano(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// fromNano is the time stored as n, in UTC.
func fromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// nullID maps the 0 of a Go record ("none") to SQL NULL, so that foreign keys hold.
func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// jsonText is v encoded for a JSONB column; nil slices, maps and pointers become "null" and
// read back as nil.
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// fromJSON decodes a JSONB column into v, naming the column when it does not decode.
func fromJSON(column, text string, v any) error {
	if err := json.Unmarshal([]byte(text), v); err != nil {
		return fmt.Errorf("column %s: %w", column, err)
	}
	return nil
}

// checkMessage refuses a record that the queue could not handle, before the database's
// CHECK constraints would with a less helpful message.
func checkMessage(m *store.Message) error {
	switch m.Direction {
	case store.Outbound:
		switch m.Kind {
		case store.KindMessage, store.KindMDN:
		default:
			return fmt.Errorf("outbound kind %q is not %q or %q", m.Kind, store.KindMessage, store.KindMDN)
		}
		switch m.State {
		case store.StateQueued, store.StateSending, store.StateAwaitingMDN, store.StateSent, store.StateFailed:
		default:
			return fmt.Errorf("state %q is not an outbound state", m.State)
		}
	case store.Inbound:
		switch m.State {
		case store.StateReceived, store.StateSuspended:
		default:
			return fmt.Errorf("state %q is not an inbound state", m.State)
		}
	default:
		return fmt.Errorf("direction %q is not %q or %q", m.Direction, store.Outbound, store.Inbound)
	}
	if m.MessageID == "" {
		return errors.New("no Message-ID")
	}
	return nil
}

// checkOutcome refuses an outcome with a state outside states or an incomplete attempt or
// event.
func checkOutcome(o store.Outcome, states ...string) error {
	if !slices.Contains(states, o.State) {
		return fmt.Errorf("outcome state %q is not one of %s", o.State, strings.Join(states, ", "))
	}
	if a := o.Attempt; a != nil {
		switch a.Class {
		case store.ClassTransient, store.ClassIncomplete, store.ClassPermanent:
		default:
			return fmt.Errorf("attempt class %q is not %s, %s or %s",
				a.Class, store.ClassTransient, store.ClassIncomplete, store.ClassPermanent)
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

// where collects the conditions of a list query and their arguments, numbering the
// placeholders.
type where struct {
	conds []string
	args  []any
}

// arg adds an argument and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return fmt.Sprintf("$%d", len(w.args))
}

// equal adds column = value when value is set.
func (w *where) equal(column, value string) {
	if value != "" {
		w.conds = append(w.conds, column+" = "+w.arg(value))
	}
}

// between bounds a time column to [from, to), each side only when set.
func (w *where) between(column string, from, to time.Time) {
	if !from.IsZero() {
		w.conds = append(w.conds, column+" >= "+w.arg(unixNano(from)))
	}
	if !to.IsZero() {
		w.conds = append(w.conds, column+" < "+w.arg(unixNano(to)))
	}
}

// before adds the cursor condition when id is set.
func (w *where) before(column string, id int64) {
	if id != 0 {
		w.conds = append(w.conds, column+" < "+w.arg(id))
	}
}

// String is the WHERE clause, or "" without conditions.
func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// likePattern is a LIKE pattern that matches text anywhere, with LIKE's wildcards in text
// taken literally (used with ESCAPE '\').
func likePattern(text string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(text) + "%"
}
