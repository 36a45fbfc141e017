package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// Page sizes of the lists.
const (
	defaultPage = 50
	maxPage     = 500
)

// page is the paging and time window of a list: limit, before, from and to.
type page struct {
	limit    int
	before   int64
	from, to time.Time
}

// parse reads the page parameters of q; cursor names what before counts ("message",
// "attempt", "event") for the error.
func (p *page) parse(q url.Values, cursor string) error {
	p.limit = defaultPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > maxPage {
			return fmt.Errorf("limit %q must be a number from 1 to %d", v, maxPage)
		}
		p.limit = n
	}
	if v := q.Get("before"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("before %q must be %s id (a positive number)", v, article(cursor))
		}
		p.before = n
	}
	var err error
	if p.from, err = parseTime(q, "from", false); err != nil {
		return err
	}
	if p.to, err = parseTime(q, "to", true); err != nil {
		return err
	}
	if !p.from.IsZero() && !p.to.IsZero() && !p.from.Before(p.to) {
		return fmt.Errorf("from %s is not before to %s", q.Get("from"), q.Get("to"))
	}
	return nil
}

func article(noun string) string {
	if noun != "" && (noun[0] == 'a' || noun[0] == 'e') {
		return "an " + noun
	}
	return "a " + noun
}

// parseTime reads parameter name as an RFC 3339 time (2026-11-22T09:30:00Z) or a date
// (2026-11-22, midnight UTC). A date given as the end of a window includes that whole day,
// since "to=2026-11-22" reads as "up to and including the 22nd".
func parseTime(q url.Values, name string, end bool) (time.Time, error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	d, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is not an RFC 3339 time (2026-11-22T09:30:00Z) or a date (2026-11-22)", name, v)
	}
	if end {
		d = d.AddDate(0, 0, 1)
	}
	return d, nil
}

// oneOf checks that parameter name of q is empty or one of allowed.
func oneOf(q url.Values, name string, allowed ...string) (string, error) {
	v := q.Get(name)
	if v == "" {
		return "", nil
	}
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", fmt.Errorf("%s %q is not one of %v", name, v, allowed)
}

// failureJSON is one row of the failure log: a failed attempt and its message.
type failureJSON struct {
	AttemptID   int64     `json:"attempt_id"`
	ID          int64     `json:"id"` // the message's
	MessageID   string    `json:"message_id"`
	Partner     string    `json:"partner"`
	Direction   string    `json:"direction"`
	At          time.Time `json:"at"`
	Class       string    `json:"class"`
	Code        string    `json:"code"`
	HTTPStatus  int       `json:"http_status"`
	Error       string    `json:"error"`
	Action      string    `json:"action"`
	BodyExcerpt string    `json:"body_excerpt"`
}

// failures serves the failure log: every failed attempt, newest first.
func (a *API) failures(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.FailureFilter{Partner: q.Get("partner"), Code: q.Get("code")}
	var p page
	err := p.parse(q, "attempt")
	if err == nil {
		f.Class, err = oneOf(q, "class", store.ClassTransient, store.ClassIncomplete, store.ClassPermanent)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f.Limit, f.Before, f.From, f.To = p.limit, p.before, p.from, p.to
	rows, err := a.cfg.Store.Failures(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := make([]failureJSON, 0, len(rows))
	for _, fl := range rows {
		out = append(out, failureJSON{
			AttemptID: fl.ID, ID: fl.MessageRow, MessageID: fl.MessageID, Partner: fl.Partner,
			Direction: fl.Direction, At: fl.At, Class: fl.Class, Code: fl.Code,
			HTTPStatus: fl.HTTPStatus, Error: fl.Error, Action: fl.Action, BodyExcerpt: fl.BodyExcerpt,
		})
	}
	answer := map[string]any{"failures": out}
	if len(rows) == p.limit {
		answer["next_before"] = rows[len(rows)-1].ID
	}
	writeJSON(w, http.StatusOK, answer)
}

// eventJSON is one line of the timeline.
type eventJSON struct {
	ID         int64     `json:"id"`
	At         time.Time `json:"at"`
	MessageRow int64     `json:"message_row,omitempty"` // the message's id; absent for events about none
	Direction  string    `json:"direction,omitempty"`
	Partner    string    `json:"partner,omitempty"`
	Tag        string    `json:"tag,omitempty"`
	Type       string    `json:"type"`
	Detail     string    `json:"detail,omitempty"`
}

var states = []string{store.StateQueued, store.StateSending, store.StateAwaitingMDN, store.StateSent,
	store.StateFailed, store.StateReceived, store.StateSuspended}

// timeline serves every event, newest first.
func (a *API) timeline(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.EventFilter{Partner: q.Get("partner"), Tag: q.Get("tag")}
	var p page
	err := p.parse(q, "event")
	if err == nil {
		f.Direction, err = oneOf(q, "direction", store.Outbound, store.Inbound)
	}
	if err == nil {
		f.State, err = oneOf(q, "state", states...)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f.Limit, f.Before, f.From, f.To = p.limit, p.before, p.from, p.to
	evs, err := a.cfg.Store.Timeline(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := make([]eventJSON, 0, len(evs))
	for _, ev := range evs {
		out = append(out, eventJSON{ID: ev.ID, At: ev.At, MessageRow: ev.MessageRow, Direction: ev.Direction,
			Partner: ev.Partner, Tag: ev.Tag, Type: ev.Type, Detail: ev.Detail})
	}
	answer := map[string]any{"events": out}
	if len(evs) == p.limit {
		answer["next_before"] = evs[len(evs)-1].ID
	}
	writeJSON(w, http.StatusOK, answer)
}
