package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// inState returns an outbound row to partner in state, packed once (wire, headers and MIC
// set) and, when sent, with its receipt.
func inState(t testing.TB, s store.Store, state string) *store.Message {
	t.Helper()
	m := outbound("PARTNERX", base().Add(time.Hour))
	m.State, m.Wire, m.WireHeader, m.MIC = state, sha("wire"), header, "abc=, sha-256"
	switch state {
	case store.StateSending:
		m.LeaseOwner, m.LeaseUntil, m.ClaimedFrom = "w1", base().Add(time.Hour), store.StateQueued
	case store.StateSent:
		m.MDN = &store.MDN{Disposition: "automatic-action/MDN-sent-automatically; processed", Positive: true, At: base()}
	case store.StateFailed:
		m.Attempts, m.LastError, m.LastCode = 1, "as2: HTTP 500", "http_500"
	}
	return create(t, s, m)
}

func testRequeue(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	queued := []string{store.StateQueued, store.StateAwaitingMDN}
	tests := []struct {
		name  string
		state string
		kind  string
		r     store.RequeueRequest
		// what the row looks like after a successful requeue
		wantWire bool
		newID    string
		url      string
	}{
		{name: "retry now keeps the bytes", state: store.StateQueued,
			r: store.RequeueRequest{From: queued, Due: now, Event: &store.Event{Type: "retry_now"}}, wantWire: true},
		{name: "awaiting an MDN, sent again", state: store.StateAwaitingMDN,
			r: store.RequeueRequest{From: queued}, wantWire: true},
		{name: "refresh the Message-ID", state: store.StateQueued,
			r: store.RequeueRequest{From: queued, ClearWire: true, MessageID: "<new-1@as2gate.test>"}, newID: "<new-1@as2gate.test>"},
		{name: "retry a failed row at a new URL", state: store.StateFailed,
			r: store.RequeueRequest{From: []string{store.StateFailed}, Due: now, URL: "http://127.0.0.1:5080/as2"}, wantWire: true, url: "http://127.0.0.1:5080/as2"},
		{name: "replay a sent row", state: store.StateSent,
			r: store.RequeueRequest{From: []string{store.StateSent}, Event: &store.Event{Type: "replayed"}}, wantWire: true},
		{name: "retry an MDN job", state: store.StateFailed, kind: store.KindMDN,
			r: store.RequeueRequest{From: []string{store.StateFailed}}, wantWire: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := outbound("PARTNERX", now.Add(time.Hour))
			m.State, m.Wire, m.WireHeader, m.MIC = tc.state, sha("wire"), header, "abc=, sha-256"
			m.Attempts, m.MDN = 1, &store.MDN{Disposition: "processed", At: now}
			if tc.kind != "" {
				m.Kind = tc.kind
			}
			create(t, s, m)
			got, err := s.Requeue(ctx, m.ID, tc.r)
			if err != nil {
				t.Fatalf("Requeue: %v", err)
			}
			sameMessage(t, "returned row", get(t, s, m.ID), got)
			due := tc.r.Due
			if due.IsZero() {
				// The store's own now: close to the real time.
				if d := got.NextAttemptAt.Sub(time.Now()); d < -time.Minute || d > time.Minute {
					t.Errorf("due %v, want about now", got.NextAttemptAt)
				}
			} else {
				sameTime(t, "due", got.NextAttemptAt, due)
			}
			if got.State != store.StateQueued || got.MDN != nil || got.Attempts != 1 {
				t.Errorf("state %s, MDN %+v, %d attempts; want queued, no MDN, 1 attempt", got.State, got.MDN, got.Attempts)
			}
			unleased(t, got)
			if hasWire := got.Wire != "" || got.WireHeader != nil || got.MIC != ""; hasWire != tc.wantWire {
				t.Errorf("wire %q, header %v, MIC %q; want kept: %v", got.Wire, got.WireHeader, got.MIC, tc.wantWire)
			}
			wantID, wantURL := m.MessageID, m.URL
			if tc.newID != "" {
				wantID = tc.newID
			}
			if tc.url != "" {
				wantURL = tc.url
			}
			if got.MessageID != wantID || got.URL != wantURL {
				t.Errorf("Message-ID %s, URL %s; want %s, %s", got.MessageID, got.URL, wantID, wantURL)
			}
			if ev := tc.r.Event; ev != nil && (ev.ID == 0 || ev.MessageRow != m.ID || ev.Partner != "PARTNERX") {
				t.Errorf("event %+v, want it written for row %d", *ev, m.ID)
			}
		})
	}
	// Every requeued row is due: a worker claims them all.
	if got := claim(t, s, "w9", now.Add(time.Minute), 100); len(got) != len(tests) {
		t.Errorf("Claim after the requeues took %v, want the %d rows", ids(got), len(tests))
	}
}

func testRequeueConflicts(t *testing.T, s store.Store) {
	ctx := t.Context()
	mdnJob := outbound("PARTNERX", base())
	mdnJob.Kind, mdnJob.State = store.KindMDN, store.StateFailed
	create(t, s, mdnJob)
	in := create(t, s, inbound("GATEWAY", "PARTNERX", messageID()))
	tests := []struct {
		name string
		id   int64
		r    store.RequeueRequest
		want error // nil: an error that is neither conflict nor not found
	}{
		{"leased to a worker", inState(t, s, store.StateSending).ID,
			store.RequeueRequest{From: []string{store.StateQueued, store.StateSending}}, store.ErrConflict},
		{"sent, not failed", inState(t, s, store.StateSent).ID,
			store.RequeueRequest{From: []string{store.StateFailed}}, store.ErrConflict},
		{"failed, not queued", inState(t, s, store.StateFailed).ID,
			store.RequeueRequest{From: []string{store.StateQueued, store.StateAwaitingMDN}}, store.ErrConflict},
		{"inbound", in.ID, store.RequeueRequest{From: []string{store.StateReceived}}, store.ErrConflict},
		{"MDN job packed again", mdnJob.ID,
			store.RequeueRequest{From: []string{store.StateFailed}, ClearWire: true}, store.ErrConflict},
		{"no such row", 1 << 40, store.RequeueRequest{From: []string{store.StateFailed}}, store.ErrNotFound},
		{"new Message-ID over the old bytes", inState(t, s, store.StateFailed).ID,
			store.RequeueRequest{From: []string{store.StateFailed}, MessageID: "<x@y>"}, nil},
		{"event without a type", inState(t, s, store.StateFailed).ID,
			store.RequeueRequest{From: []string{store.StateFailed}, Event: &store.Event{}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var before *store.Message
			if tc.want != store.ErrNotFound {
				before = get(t, s, tc.id)
			}
			_, err := s.Requeue(ctx, tc.id, tc.r)
			switch {
			case err == nil:
				t.Fatal("Requeue succeeded")
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("Requeue: %v, want %v", err, tc.want)
			case tc.want == nil && (errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound)):
				t.Fatalf("Requeue: %v, want a refusal of the request itself", err)
			}
			if before != nil {
				sameMessage(t, "row after a refused requeue", get(t, s, tc.id), before)
			}
		})
	}
}

func testStop(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, state := range []string{store.StateQueued, store.StateAwaitingMDN} {
		t.Run(state, func(t *testing.T) {
			m := inState(t, s, state)
			ev := &store.Event{Type: "stopped", Detail: "stopped by operator"}
			got, err := s.Stop(ctx, m.ID, "stopped by operator", ev)
			if err != nil {
				t.Fatalf("Stop: %v", err)
			}
			sameMessage(t, "returned row", get(t, s, m.ID), got)
			if got.State != store.StateFailed || got.LastError != "stopped by operator" || got.LastCode != "stopped" ||
				got.Attempts != 0 || !got.NextAttemptAt.IsZero() {
				t.Errorf("stopped row: state %s, error %q, code %q, %d attempts, due %v",
					got.State, got.LastError, got.LastCode, got.Attempts, got.NextAttemptAt)
			}
			if got.Wire != m.Wire || got.MessageID != m.MessageID {
				t.Errorf("Stop changed the wire message or Message-ID")
			}
			if a, err := s.Attempts(ctx, m.ID); err != nil || len(a) != 0 {
				t.Errorf("Attempts = %d, %v; a stop is not an attempt", len(a), err)
			}
			if ev.ID == 0 || ev.MessageRow != m.ID {
				t.Errorf("event %+v not written for row %d", *ev, m.ID)
			}
		})
	}
	in := create(t, s, inbound("GATEWAY", "PARTNERX", messageID()))
	for _, tc := range []struct {
		name string
		id   int64
		want error
	}{
		{"sending", inState(t, s, store.StateSending).ID, store.ErrConflict},
		{"sent", inState(t, s, store.StateSent).ID, store.ErrConflict},
		{"failed", inState(t, s, store.StateFailed).ID, store.ErrConflict},
		{"inbound", in.ID, store.ErrConflict},
		{"no such row", 1 << 40, store.ErrNotFound},
	} {
		t.Run("refused "+tc.name, func(t *testing.T) {
			if _, err := s.Stop(ctx, tc.id, "stopped by operator", nil); !errors.Is(err, tc.want) {
				t.Fatalf("Stop: %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := s.Stop(ctx, inState(t, s, store.StateQueued).ID, "", nil); err == nil || errors.Is(err, store.ErrConflict) {
		t.Errorf("Stop without a reason: %v, want a refusal of the request", err)
	}
}

func testDeleteMessage(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	m := create(t, s, outbound("PARTNERX", now))
	if err := s.AddEvent(ctx, &store.Event{MessageRow: m.ID, Partner: "PARTNERX", Type: "submitted"}); err != nil {
		t.Fatal(err)
	}
	claimOne(t, s, "w1", now, m.ID)
	if err := s.Finish(ctx, m.ID, "w1", store.Outcome{State: store.StateFailed,
		Attempt: &store.Attempt{Class: store.ClassPermanent, Code: "http_403", Error: "as2: HTTP 403"},
		Event:   &store.Event{Type: "failed"}}); err != nil {
		t.Fatal(err)
	}
	resent := outbound("PARTNERX", now)
	resent.RelatedID, resent.Tag = m.ID, "t1"
	create(t, s, resent)
	other := create(t, s, outbound("PARTNERY", now))
	if err := s.AddEvent(ctx, &store.Event{MessageRow: other.ID, Partner: "PARTNERY", Type: "submitted"}); err != nil {
		t.Fatal(err)
	}

	ev := &store.Event{Type: "deleted", Detail: "deleted by operator"}
	got, err := s.DeleteMessage(ctx, m.ID, ev)
	if err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	if got.ID != m.ID || got.State != store.StateFailed {
		t.Errorf("DeleteMessage returned row %d in %s, want %d in failed", got.ID, got.State, m.ID)
	}
	if _, err := s.GetMessage(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetMessage after delete: %v, want ErrNotFound", err)
	}
	if a, err := s.Attempts(ctx, m.ID); err != nil || len(a) != 0 {
		t.Errorf("Attempts after delete = %d, %v; want none", len(a), err)
	}
	evs, err := s.Events(ctx, "", "", 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		if e.MessageRow == m.ID {
			t.Errorf("event %+v of the deleted row is left", *e)
		}
		types = append(types, e.Type)
	}
	if len(evs) != 2 || evs[0].ID != ev.ID || evs[0].MessageRow != 0 || evs[0].Partner != "PARTNERX" || evs[0].Direction != store.Outbound {
		t.Errorf("events after delete %v (newest %+v), want the deletion (about no row) and the other row's", types, *evs[0])
	}
	if r := get(t, s, resent.ID); r.RelatedID != 0 {
		t.Errorf("resent row still refers to deleted row %d", r.RelatedID)
	}
	get(t, s, other.ID)

	for _, tc := range []struct {
		name string
		id   int64
		want error
	}{
		{"sending", inState(t, s, store.StateSending).ID, store.ErrConflict},
		{"deleted twice", m.ID, store.ErrNotFound},
	} {
		t.Run("refused "+tc.name, func(t *testing.T) {
			if _, err := s.DeleteMessage(ctx, tc.id, nil); !errors.Is(err, tc.want) {
				t.Fatalf("DeleteMessage: %v, want %v", err, tc.want)
			}
		})
	}
	// Every other state may go, inbound included.
	for _, m := range []*store.Message{
		inState(t, s, store.StateQueued), inState(t, s, store.StateAwaitingMDN), inState(t, s, store.StateSent),
		create(t, s, inbound("GATEWAY", "PARTNERX", messageID())),
	} {
		if _, err := s.DeleteMessage(ctx, m.ID, nil); err != nil {
			t.Errorf("DeleteMessage(%s row): %v", m.State, err)
		}
	}
}
