package outbound

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/as2/as2test"
	"github.com/as2gate/as2gate/internal/store"
)

// woken reports whether the worker was woken since the last call, and clears the signal.
func woken(w *Worker) bool {
	select {
	case <-w.wake:
		return true
	default:
		return false
	}
}

// eventTypes returns the types of the events of message row id, oldest first.
func (r *rig) eventTypes(t *testing.T, id int64) []string {
	t.Helper()
	evs, err := r.store.Events(t.Context(), "", "", 500, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range slices.Backward(evs) {
		if ev.MessageRow == id {
			out = append(out, ev.Type)
		}
	}
	return out
}

// A message to a partner URL that refuses connections is sent now, stopped, and retried
// once the URL is corrected: it goes to the new URL, with the bytes packed the first time.
func TestActionsStopAndRetry(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	a := NewActions(r.w, r.partners)
	ctx := t.Context()
	m := r.submit(t, rigPartner)
	woken(r.w)
	r.step(t, m.ID) // connection refused: a transient failure, retried in 30 s
	first := r.get(t, m.ID)
	if first.State != store.StateQueued || first.Attempts != 1 || first.Wire == "" {
		t.Fatalf("after a refused connection: %s, %d attempts, wire %q", first.State, first.Attempts, first.Wire)
	}

	got, err := a.RetryNow(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.NextAttemptAt.Equal(r.clock.Now()) || got.Wire != first.Wire || got.MessageID != first.MessageID || !woken(r.w) {
		t.Errorf("RetryNow: due %v (want %v), wire kept %v, Message-ID kept %v, worker woken",
			got.NextAttemptAt, r.clock.Now(), got.Wire == first.Wire, got.MessageID == first.MessageID)
	}

	got, err = a.Stop(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StateFailed || got.LastError != StoppedReason || got.Attempts != 1 || len(r.attempts(t, m.ID)) != 1 {
		t.Errorf("Stop: %s, %q, %d attempts; want failed, %q, the one attempt", got.State, got.LastError, got.Attempts, StoppedReason)
	}
	if rows := r.claim(t); len(rows) != 0 {
		t.Fatalf("a stopped message was claimed: %v", ids(rows))
	}

	p := r.fake(t, as2test.AS2(r.as2Config())) // the URL corrected
	got, err = a.Retry(ctx, m.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StateQueued || got.URL != p.URL || got.Wire != first.Wire || !woken(r.w) {
		t.Errorf("Retry: %s to %s (want queued to %s), wire kept %v", got.State, got.URL, p.URL, got.Wire == first.Wire)
	}
	r.step(t, m.ID)
	sent := r.get(t, m.ID)
	if sent.State != store.StateSent || sent.MDN == nil || !sent.MDN.Positive {
		t.Fatalf("after the retry: %s, MDN %+v", sent.State, sent.MDN)
	}
	r.checkSameWire(t, sent, p.Requests())
	want := []string{"submitted", "attempt_failed", "retry_now", "stopped", "retried", "sent"}
	if got := r.eventTypes(t, m.ID); !slices.Equal(got, want) {
		t.Errorf("timeline %v, want %v", got, want)
	}
}

// A new Message-ID makes the next attempt pack the message again: the partner sees a new
// transaction. Retry with a new Message-ID does the same for a failed message.
func TestActionsNewMessageID(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	a := NewActions(r.w, r.partners)
	ctx := t.Context()
	p := r.fake(t, as2test.Sequence(
		as2test.Respond(http.StatusServiceUnavailable, nil, nil),
		as2test.Respond(http.StatusForbidden, nil, nil),
		as2test.AS2(r.as2Config()),
	))
	m := r.submit(t, rigPartner)
	r.step(t, m.ID) // 503: queued
	old := r.get(t, m.ID)

	got, err := a.RefreshMessageID(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.MessageID == old.MessageID || !strings.HasSuffix(got.MessageID, "@station.example>") ||
		got.Wire != "" || got.WireHeader != nil || got.MIC != "" || got.State != store.StateQueued {
		t.Fatalf("RefreshMessageID: Message-ID %s (was %s), wire %q, MIC %q, %s", got.MessageID, old.MessageID, got.Wire, got.MIC, got.State)
	}
	r.step(t, m.ID) // 403: failed, packed anew under the new Message-ID
	second := r.get(t, m.ID)
	if second.State != store.StateFailed || second.Wire == "" || second.Wire == old.Wire {
		t.Fatalf("after the refresh: %s, wire %q (was %q)", second.State, second.Wire, old.Wire)
	}

	got, err = a.Retry(ctx, m.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	if got.MessageID == second.MessageID || got.Wire != "" {
		t.Fatalf("Retry with a new Message-ID: %s (was %s), wire %q", got.MessageID, second.MessageID, got.Wire)
	}
	r.step(t, m.ID)
	sent := r.get(t, m.ID)
	if sent.State != store.StateSent {
		t.Fatalf("after the retry: %s", sent.State)
	}
	reqs := p.Requests()
	var seen []string
	for _, req := range reqs {
		seen = append(seen, req.Header.Get(as2.HeaderMessageID))
	}
	if want := []string{old.MessageID, second.MessageID, sent.MessageID}; !slices.Equal(seen, want) {
		t.Errorf("the partner saw Message-IDs %v, want %v", seen, want)
	}
	r.checkSameWire(t, sent, reqs[2:])
}

// Replay sends the stored bytes again under the same Message-ID; resend queues a new
// message with the same files under a new one.
func TestActionsReplayAndResend(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	a := NewActions(r.w, r.partners)
	ctx := t.Context()
	p := r.fake(t, as2test.AS2(r.as2Config()))
	m := r.submit(t, rigPartner)
	r.step(t, m.ID)
	sent := r.get(t, m.ID)
	if sent.State != store.StateSent {
		t.Fatalf("first send: %s", sent.State)
	}

	got, err := a.Replay(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StateQueued || got.Wire != sent.Wire || got.MIC != sent.MIC || got.MessageID != sent.MessageID || got.MDN != nil {
		t.Fatalf("Replay: %s, wire kept %v, MIC kept %v, MDN %+v", got.State, got.Wire == sent.Wire, got.MIC == sent.MIC, got.MDN)
	}
	r.step(t, m.ID)
	if again := r.get(t, m.ID); again.State != store.StateSent || again.MDN == nil || !again.MDN.MICOK {
		t.Fatalf("after the replay: %s, MDN %+v", again.State, again.MDN)
	}
	r.checkSameWire(t, sent, p.Requests())

	resent, err := a.Resend(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if resent.ID == m.ID || resent.RelatedID != m.ID || resent.MessageID == m.MessageID || resent.State != store.StateQueued ||
		resent.Subject != m.Subject || !slices.Equal(resent.Files, m.Files) || resent.Wire != "" || !woken(r.w) {
		t.Fatalf("Resend: row %d related %d, %s, %s, subject %q, files %+v", resent.ID, resent.RelatedID, resent.MessageID, resent.State, resent.Subject, resent.Files)
	}
	r.step(t, resent.ID)
	if got := r.get(t, resent.ID); got.State != store.StateSent {
		t.Fatalf("resent message: %s", got.State)
	}
	reqs := p.Requests()
	if len(reqs) != 3 || reqs[2].Header.Get(as2.HeaderMessageID) != resent.MessageID {
		t.Fatalf("the partner got %d requests, the last %v", len(reqs), reqs[len(reqs)-1].Header)
	}
	if in := reqs[2].AS2; in == nil || in.Err != nil || len(in.Attachments) != 1 || in.Attachments[0].Filename != "order.x12" {
		t.Errorf("the resent message did not carry the file: %+v", in)
	}
	if got := r.get(t, m.ID); got.State != store.StateSent {
		t.Errorf("the original is %s after a resend, want sent", got.State)
	}

	if _, err := a.Delete(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.store.GetMessage(ctx, m.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after Delete: %v", err)
	}
	if got := r.get(t, resent.ID); got.RelatedID != 0 {
		t.Errorf("the resent message still refers to deleted row %d", got.RelatedID)
	}
	evs, err := r.store.Events(ctx, "", "", 1, 0)
	if err != nil || len(evs) != 1 || evs[0].Type != "deleted" || !strings.Contains(evs[0].Detail, m.MessageID) {
		t.Errorf("newest event %+v, %v; want the deletion", evs, err)
	}
}

// Every action refuses a message whose direction, kind or state does not allow it with a
// *StateError that is a store.ErrConflict, and changes nothing.
func TestActionsRefused(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	a := NewActions(r.w, r.partners)
	ctx := t.Context()
	p := r.fake(t, as2test.AS2(r.as2Config()))
	sent := r.submit(t, rigPartner)
	r.step(t, sent.ID)
	queued := r.submit(t, rigPartner)
	sending := r.submit(t, rigPartner)
	if rows := r.claim(t); len(rows) != 2 {
		t.Fatalf("claimed %v, want the two new rows", ids(rows))
	}
	if err := r.store.Release(ctx, queued.ID, r.w.cfg.Owner); err != nil {
		t.Fatal(err)
	}
	mdnJob := r.owedMDN(t, p.URL)
	inboundRow := mdnJob.RelatedID
	unpacked := r.submit(t, rigPartner) // sent never: no wire to replay
	if _, err := r.store.Stop(ctx, unpacked.ID, StoppedReason, nil); err != nil {
		t.Fatal(err)
	}

	type action func(id int64) (*store.Message, error)
	retry := func(id int64) (*store.Message, error) { return a.Retry(ctx, id, false) }
	retryNew := func(id int64) (*store.Message, error) { return a.Retry(ctx, id, true) }
	tests := []struct {
		name   string
		do     action
		id     int64
		reason string
	}{
		{"send now a sent message", func(id int64) (*store.Message, error) { return a.RetryNow(ctx, id) }, sent.ID, "it is sent"},
		{"stop a message being sent", func(id int64) (*store.Message, error) { return a.Stop(ctx, id) }, sending.ID, "being sent"},
		{"stop an inbound message", func(id int64) (*store.Message, error) { return a.Stop(ctx, id) }, inboundRow, "inbound"},
		{"new Message-ID for an MDN job", func(id int64) (*store.Message, error) { return a.RefreshMessageID(ctx, id) }, mdnJob.ID, "MDN job"},
		{"retry a queued message", retry, queued.ID, "it is queued"},
		{"retry a sent message", retry, sent.ID, "it is sent"},
		{"retry a message being sent", retryNew, sending.ID, "being sent"},
		{"resend a queued message", func(id int64) (*store.Message, error) { return a.Resend(ctx, id) }, queued.ID, "it is queued"},
		{"resend an inbound message", func(id int64) (*store.Message, error) { return a.Resend(ctx, id) }, inboundRow, "inbound"},
		{"replay a failed message", func(id int64) (*store.Message, error) { return a.Replay(ctx, id) }, unpacked.ID, "it is failed"},
		{"delete a message being sent", func(id int64) (*store.Message, error) { return a.Delete(ctx, id) }, sending.ID, "being sent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := r.get(t, tc.id)
			_, err := tc.do(tc.id)
			var se *StateError
			if !errors.As(err, &se) || !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("error %v, want a StateError (a conflict) saying %q", err, tc.reason)
			}
			if se.ID != tc.id {
				t.Errorf("StateError names message %d, want %d", se.ID, tc.id)
			}
			if after := r.get(t, tc.id); after.State != before.State || after.MessageID != before.MessageID || !after.UpdatedAt.Equal(before.UpdatedAt) {
				t.Errorf("a refused action changed the row: %+v", after)
			}
		})
	}
	for name, do := range map[string]action{
		"retry now": func(id int64) (*store.Message, error) { return a.RetryNow(ctx, id) },
		"delete":    func(id int64) (*store.Message, error) { return a.Delete(ctx, id) },
		"resend":    func(id int64) (*store.Message, error) { return a.Resend(ctx, id) },
	} {
		if _, err := do(1 << 40); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of no message: %v, want ErrNotFound", name, err)
		}
	}

	// An MDN job may be stopped and retried, but not packed again, and keeps its own URL.
	if _, err := a.Stop(ctx, mdnJob.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Retry(ctx, mdnJob.ID, true); !errors.Is(err, store.ErrConflict) {
		t.Errorf("retry of an MDN job with a new Message-ID: %v, want a conflict", err)
	}
	got, err := a.Retry(ctx, mdnJob.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	if got.URL != mdnJob.URL || got.Wire != mdnJob.Wire {
		t.Errorf("retried MDN job goes to %s with wire %q; want %s, %q", got.URL, got.Wire, mdnJob.URL, mdnJob.Wire)
	}
}
