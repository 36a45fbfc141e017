package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// testListSearch: Q finds text in the subject, a file name or the Message-ID, and only
// there; From and To bound the creation time.
func testListSearch(t *testing.T, s store.Store) {
	now := base()
	mk := func(edit func(m *store.Message)) *store.Message {
		m := outbound("SEARCH", now)
		edit(m)
		return create(t, s, m)
	}
	bySubject := mk(func(m *store.Message) { m.Subject = "Weekly ORDERS batch" })
	byFile := mk(func(m *store.Message) {
		m.Subject = ""
		m.Files = append(m.Files, store.File{Name: "orders_2026.edi", ContentType: "application/edi-x12", Size: 1, SHA256: sha("b")})
	})
	byID := mk(func(m *store.Message) { m.Subject = ""; m.MessageID = "<orders-77@partner.test>" })
	wildcard := mk(func(m *store.Message) { m.Subject = "100% paid_in full" })
	received := create(t, s, func() *store.Message {
		m := inbound("GATEWAY", "SEARCH", "<in-1@x>")
		m.Subject = "orders back"
		return m
	}())

	tests := []struct {
		name   string
		filter store.Filter
		want   []*store.Message
	}{
		{"subject, file name and Message-ID, any case", store.Filter{Q: "orders"}, []*store.Message{received, byID, byFile, bySubject}},
		{"with other filters", store.Filter{Q: "orders", Direction: store.Outbound, Limit: 2}, []*store.Message{byID, byFile}},
		{"with a cursor", store.Filter{Q: "orders", Before: byFile.ID}, []*store.Message{bySubject}},
		{"percent is literal", store.Filter{Partner: "SEARCH", Q: "100%"}, []*store.Message{wildcard}},
		{"underscore is literal", store.Filter{Partner: "SEARCH", Q: "d_i"}, []*store.Message{wildcard}},
		{"not the content type", store.Filter{Partner: "SEARCH", Q: "edi-x12"}, nil},
		{"not the digest", store.Filter{Partner: "SEARCH", Q: sha("a")[:12]}, nil},
		{"no match", store.Filter{Q: "nothing like it"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListMessages(t.Context(), tc.filter)
			if err != nil {
				t.Fatalf("ListMessages(%+v): %v", tc.filter, err)
			}
			sameIDs(t, fmt.Sprintf("ListMessages(%+v)", tc.filter), got, tc.want...)
		})
	}

	// The store sets CreatedAt from its own clock: bound the list around the stored value.
	created := get(t, s, byID.ID).CreatedAt
	const tick = time.Microsecond // the finest time every driver keeps
	dates := []struct {
		name     string
		from, to time.Time
		want     []*store.Message
	}{
		{"from its creation", created, time.Time{}, []*store.Message{byID}},
		{"from after its creation", created.Add(tick), time.Time{}, nil},
		{"to its creation", time.Time{}, created, nil},
		{"to after its creation", time.Time{}, created.Add(tick), []*store.Message{byID}},
		{"a window around it", created.Add(-time.Hour), created.Add(time.Hour), []*store.Message{byID}},
	}
	for _, tc := range dates {
		t.Run(tc.name, func(t *testing.T) {
			f := store.Filter{Q: "orders-77", From: tc.from, To: tc.to}
			got, err := s.ListMessages(t.Context(), f)
			if err != nil {
				t.Fatalf("ListMessages(%+v): %v", f, err)
			}
			sameIDs(t, fmt.Sprintf("ListMessages(%+v)", f), got, tc.want...)
		})
	}
}

// fail records a failed attempt on outbound row m at at, leaving it queued and due at next.
func fail(t testing.TB, s store.Store, m *store.Message, at, next time.Time, class, code string) *store.Attempt {
	t.Helper()
	claimOne(t, s, "w1", at, m.ID)
	a := &store.Attempt{At: at, Class: class, Code: code, HTTPStatus: 503, Header: header,
		BodyExcerpt: "busy", Error: "attempt " + code, Action: "wait"}
	if err := s.Finish(t.Context(), m.ID, "w1", store.Outcome{State: store.StateQueued, NextAttemptAt: next, Attempt: a}); err != nil {
		t.Fatalf("Finish(%d, %s): %v", m.ID, code, err)
	}
	return a
}

func testFailures(t *testing.T, s store.Store) {
	now := base()
	minute := func(n int) time.Time { return now.Add(time.Duration(n) * time.Minute) }
	never := now.Add(24 * time.Hour)
	// x and y fail in turn, each due again when its next failure comes.
	x := create(t, s, outbound("PARTNERX", now))
	y := create(t, s, outbound("PARTNERY", minute(1)))
	a1 := fail(t, s, x, now, minute(2), store.ClassTransient, "connect_refused")
	a2 := fail(t, s, y, minute(1), minute(3), store.ClassIncomplete, "read_timeout")
	a3 := fail(t, s, x, minute(2), never, store.ClassTransient, "http_503")
	a4 := fail(t, s, y, minute(3), never, store.ClassTransient, "connect_refused")
	// A message without failures is in no row.
	create(t, s, outbound("PARTNERX", never))

	tests := []struct {
		name   string
		filter store.FailureFilter
		want   []*store.Attempt
	}{
		{"all", store.FailureFilter{}, []*store.Attempt{a4, a3, a2, a1}},
		{"partner", store.FailureFilter{Partner: "PARTNERX"}, []*store.Attempt{a3, a1}},
		{"class", store.FailureFilter{Class: store.ClassIncomplete}, []*store.Attempt{a2}},
		{"code", store.FailureFilter{Code: "connect_refused"}, []*store.Attempt{a4, a1}},
		{"partner and code", store.FailureFilter{Partner: "PARTNERY", Code: "connect_refused"}, []*store.Attempt{a4}},
		{"from", store.FailureFilter{From: now.Add(2 * time.Minute)}, []*store.Attempt{a4, a3}},
		{"to", store.FailureFilter{To: now.Add(2 * time.Minute)}, []*store.Attempt{a2, a1}},
		{"from and to", store.FailureFilter{From: now.Add(time.Minute), To: now.Add(3 * time.Minute)}, []*store.Attempt{a3, a2}},
		{"limit", store.FailureFilter{Limit: 1}, []*store.Attempt{a4}},
		{"before", store.FailureFilter{Before: a3.ID, Limit: 1}, []*store.Attempt{a2}},
		{"before the first", store.FailureFilter{Before: a1.ID}, nil},
		{"unknown partner", store.FailureFilter{Partner: "NOBODY"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Failures(t.Context(), tc.filter)
			if err != nil {
				t.Fatalf("Failures(%+v): %v", tc.filter, err)
			}
			var g, w []int64
			for _, f := range got {
				g = append(g, f.ID)
			}
			for _, a := range tc.want {
				w = append(w, a.ID)
			}
			if !slices.Equal(g, w) {
				t.Errorf("Failures(%+v) = attempts %v, want %v", tc.filter, g, w)
			}
		})
	}
	t.Run("full rows", func(t *testing.T) {
		got, err := s.Failures(t.Context(), store.FailureFilter{Code: "read_timeout"})
		if err != nil || len(got) != 1 {
			t.Fatalf("Failures(read_timeout) = %d rows, %v; want one", len(got), err)
		}
		f := got[0]
		sameAttempt(t, &f.Attempt, a2)
		if f.MessageID != y.MessageID || f.Partner != "PARTNERY" || f.Direction != store.Outbound {
			t.Errorf("failure's message = %s %s %s, want %s PARTNERY out", f.MessageID, f.Partner, f.Direction, y.MessageID)
		}
	})
}

func testTimeline(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	queued := create(t, s, outbound("PARTNERX", now))
	failed := outbound("PARTNERY", now)
	failed.State = store.StateFailed
	failed.Tag = "batch"
	create(t, s, failed)
	add := func(ev *store.Event) *store.Event {
		t.Helper()
		if err := s.AddEvent(ctx, ev); err != nil {
			t.Fatalf("AddEvent(%+v): %v", ev, err)
		}
		return ev
	}
	e1 := add(&store.Event{At: now, MessageRow: queued.ID, Direction: store.Outbound, Partner: "PARTNERX", Type: "submitted"})
	e2 := add(&store.Event{At: now.Add(time.Minute), MessageRow: failed.ID, Direction: store.Outbound, Partner: "PARTNERY", Tag: "batch", Type: "submitted"})
	e3 := add(&store.Event{At: now.Add(2 * time.Minute), Type: "certificate_expiring"})
	e4 := add(&store.Event{At: now.Add(3 * time.Minute), MessageRow: failed.ID, Direction: store.Outbound, Partner: "PARTNERY", Tag: "batch", Type: "failed"})
	e5 := add(&store.Event{At: now.Add(4 * time.Minute), Direction: store.Inbound, Partner: "PARTNERX", Type: "received"})

	tests := []struct {
		name   string
		filter store.EventFilter
		want   []*store.Event
	}{
		{"all", store.EventFilter{}, []*store.Event{e5, e4, e3, e2, e1}},
		{"partner", store.EventFilter{Partner: "PARTNERX"}, []*store.Event{e5, e1}},
		{"direction", store.EventFilter{Direction: store.Outbound}, []*store.Event{e4, e2, e1}},
		{"the message's state", store.EventFilter{State: store.StateFailed}, []*store.Event{e4, e2}},
		{"state and partner", store.EventFilter{State: store.StateQueued, Partner: "PARTNERX"}, []*store.Event{e1}},
		{"tag", store.EventFilter{Tag: "batch"}, []*store.Event{e4, e2}},
		{"from", store.EventFilter{From: now.Add(3 * time.Minute)}, []*store.Event{e5, e4}},
		{"to", store.EventFilter{To: now.Add(time.Minute)}, []*store.Event{e1}},
		{"from and to", store.EventFilter{From: now.Add(time.Minute), To: now.Add(3 * time.Minute)}, []*store.Event{e3, e2}},
		{"limit and cursor", store.EventFilter{Before: e4.ID, Limit: 2}, []*store.Event{e3, e2}},
		{"state of no message", store.EventFilter{State: store.StateReceived}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Timeline(ctx, tc.filter)
			if err != nil {
				t.Fatalf("Timeline(%+v): %v", tc.filter, err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Timeline(%+v) = %d events, want %d", tc.filter, len(got), len(tc.want))
			}
			for i := range got {
				if g, w := normalizeEvent(*got[i]), normalizeEvent(*tc.want[i]); g != w {
					t.Errorf("event %d:\n got %+v\nwant %+v", i, g, w)
				}
			}
		})
	}
}
