package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// leasedTo checks that m is claimed by owner until until, from state from.
func leasedTo(t testing.TB, m *store.Message, owner string, until time.Time, from string) {
	t.Helper()
	if m.State != store.StateSending || m.LeaseOwner != owner || !m.LeaseUntil.Equal(until) || m.ClaimedFrom != from {
		t.Errorf("row %d: state %s, lease %q until %v, claimed from %q; want sending, %q until %v, from %q",
			m.ID, m.State, m.LeaseOwner, m.LeaseUntil, m.ClaimedFrom, owner, until, from)
	}
}

// unleased checks that m holds no lease.
func unleased(t testing.TB, m *store.Message) {
	t.Helper()
	if m.LeaseOwner != "" || !m.LeaseUntil.IsZero() || m.ClaimedFrom != "" {
		t.Errorf("row %d: lease %q until %v, claimed from %q; want none", m.ID, m.LeaseOwner, m.LeaseUntil, m.ClaimedFrom)
	}
}

func testClaimDue(t *testing.T, s store.Store) {
	now := base()
	early := create(t, s, outbound("PARTNERX", now.Add(-time.Minute)))
	onTime := create(t, s, outbound("PARTNERX", now))
	later := create(t, s, outbound("PARTNERX", now.Add(30*time.Second)))
	unset := create(t, s, outbound("PARTNERY", time.Time{})) // no due time: due at once
	mdn := outbound("PARTNERY", now)
	mdn.Kind = store.KindMDN
	create(t, s, mdn)
	// Rows no claim at now may take.
	for _, edit := range []func(m *store.Message){
		func(m *store.Message) { m.State = store.StateSent },
		func(m *store.Message) { m.State = store.StateFailed },
		func(m *store.Message) { m.State = store.StateAwaitingMDN; m.NextAttemptAt = now.Add(time.Hour) },
		func(m *store.Message) {
			m.State, m.LeaseOwner, m.LeaseUntil, m.ClaimedFrom = store.StateSending, "other", now.Add(time.Hour), store.StateQueued
		},
	} {
		m := outbound("PARTNERX", now.Add(-time.Hour))
		edit(m)
		create(t, s, m)
	}
	create(t, s, inbound("GATEWAY", "PARTNERX", messageID()))

	got := claim(t, s, "w1", now, 100)
	sameIDs(t, "Claim at now", got, unset, early, onTime, mdn)
	for _, m := range got {
		leasedTo(t, m, "w1", now.Add(time.Minute), store.StateQueued)
		if m.Attempts != 0 {
			t.Errorf("row %d: Attempts = %d after a claim, want 0", m.ID, m.Attempts)
		}
		sameMessage(t, "claimed row as stored", get(t, s, m.ID), m)
	}
	sameIDs(t, "Claim again at now", claim(t, s, "w2", now, 100))

	got = claim(t, s, "w2", now.Add(30*time.Second), 100)
	sameIDs(t, "Claim at now+30s", got, later)
	leasedTo(t, got[0], "w2", now.Add(90*time.Second), store.StateQueued)
}

func testClaimOldestFirst(t *testing.T, s store.Store) {
	now := base()
	r1 := create(t, s, outbound("PARTNERX", now.Add(-1*time.Second)))
	r2 := create(t, s, outbound("PARTNERX", now.Add(-3*time.Second)))
	r3 := create(t, s, outbound("PARTNERY", now.Add(-2*time.Second)))
	r4 := create(t, s, outbound("PARTNERY", now.Add(-2*time.Second))) // same due time: the older row first
	lost := outbound("PARTNERZ", now.Add(-time.Hour))
	lost.State, lost.LeaseOwner, lost.LeaseUntil, lost.ClaimedFrom = store.StateSending, "crashed", now.Add(-4*time.Second), store.StateQueued
	create(t, s, lost)

	sameIDs(t, "first claim", claim(t, s, "w1", now, 2), lost, r2)
	sameIDs(t, "second claim", claim(t, s, "w1", now, 2), r3, r4)
	sameIDs(t, "third claim", claim(t, s, "w1", now, 2), r1)
	sameIDs(t, "fourth claim", claim(t, s, "w1", now, 2))
}

func testClaimExpiredLease(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	m := create(t, s, outbound("PARTNERX", now))
	claimOne(t, s, "w1", now, m.ID)

	sameIDs(t, "Claim before the lease ends", claim(t, s, "w2", now.Add(59*time.Second), 10))
	got := claimOne(t, s, "w2", now.Add(time.Minute), m.ID)
	leasedTo(t, got, "w2", now.Add(2*time.Minute), store.StateQueued)

	// The worker that lost its lease can no longer touch the row.
	if err := s.SetWire(ctx, m.ID, "w1", sha("w1"), header, "mic"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("SetWire by the old owner = %v, want ErrConflict", err)
	}
	if err := s.Finish(ctx, m.ID, "w1", store.Outcome{State: store.StateSent}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Finish by the old owner = %v, want ErrConflict", err)
	}
	if err := s.Release(ctx, m.ID, "w1"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Release by the old owner = %v, want ErrConflict", err)
	}
	leasedTo(t, get(t, s, m.ID), "w2", now.Add(2*time.Minute), store.StateQueued)

	if err := s.Finish(ctx, m.ID, "w2", store.Outcome{State: store.StateSent}); err != nil {
		t.Fatalf("Finish by the new owner: %v", err)
	}
	if got := get(t, s, m.ID); got.State != store.StateSent || got.Attempts != 0 {
		t.Errorf("after Finish: state %s, %d attempts; want sent, 0", got.State, got.Attempts)
	}
}

func testClaimMDNDeadline(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	deadline := now.Add(time.Hour)
	m := create(t, s, outbound("PARTNERX", now))
	claimOne(t, s, "w1", now, m.ID)
	if err := s.Finish(ctx, m.ID, "w1", store.Outcome{State: store.StateAwaitingMDN, NextAttemptAt: deadline}); err != nil {
		t.Fatalf("Finish(awaiting_mdn): %v", err)
	}
	got := get(t, s, m.ID)
	if got.State != store.StateAwaitingMDN || !got.NextAttemptAt.Equal(deadline) {
		t.Errorf("after Finish: state %s due %v; want awaiting_mdn until %v", got.State, got.NextAttemptAt, deadline)
	}
	unleased(t, got)

	sameIDs(t, "Claim before the deadline", claim(t, s, "w2", deadline.Add(-time.Second), 10))
	got = claimOne(t, s, "w2", deadline, m.ID)
	leasedTo(t, got, "w2", deadline.Add(time.Minute), store.StateAwaitingMDN)

	// w2 dies; w3 takes the expired lease and still learns the row is an MDN timeout.
	got = claimOne(t, s, "w3", deadline.Add(time.Minute), m.ID)
	leasedTo(t, got, "w3", deadline.Add(2*time.Minute), store.StateAwaitingMDN)

	// A graceful stop puts it back to wait, not into the send queue.
	if err := s.Release(ctx, m.ID, "w3"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	got = get(t, s, m.ID)
	if got.State != store.StateAwaitingMDN || !got.NextAttemptAt.Equal(deadline) || got.Attempts != 0 {
		t.Errorf("after Release: state %s due %v, %d attempts; want awaiting_mdn due %v, 0 attempts",
			got.State, got.NextAttemptAt, got.Attempts, deadline)
	}
	unleased(t, got)
	if next, ok, err := s.NextDue(ctx); err != nil || !ok || !next.Equal(deadline) {
		t.Errorf("NextDue = %v, %t, %v; want the passed deadline %v", next, ok, err, deadline)
	}

	got = claimOne(t, s, "w4", deadline.Add(3*time.Minute), m.ID)
	leasedTo(t, got, "w4", deadline.Add(4*time.Minute), store.StateAwaitingMDN)
	timeout := &store.Attempt{Class: store.ClassIncomplete, Code: "async_mdn_timeout", Error: "no MDN within 1h"}
	if err := s.Finish(ctx, m.ID, "w4", store.Outcome{State: store.StateFailed, Attempt: timeout}); err != nil {
		t.Fatalf("Finish(failed): %v", err)
	}
	if got := get(t, s, m.ID); got.State != store.StateFailed || got.Attempts != 1 || got.LastCode != "async_mdn_timeout" {
		t.Errorf("after the timeout: state %s, %d attempts, code %q; want failed, 1, async_mdn_timeout",
			got.State, got.Attempts, got.LastCode)
	}
}

func testClaimPerPartner(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	var a, b, c []*store.Message
	for i := range 3 {
		a = append(a, create(t, s, outbound("A", now.Add(time.Duration(i-10)*time.Second))))
	}
	b = append(b, create(t, s, outbound("B", now.Add(-5*time.Second))))
	busy := outbound("C", now.Add(-time.Hour))
	busy.State, busy.LeaseOwner, busy.LeaseUntil, busy.ClaimedFrom = store.StateSending, "other", now.Add(time.Minute), store.StateQueued
	create(t, s, busy)
	for i := range 2 {
		c = append(c, create(t, s, outbound("C", now.Add(time.Duration(i-20)*time.Second))))
	}

	perPartner := func(owner string, at time.Time, limit int) []*store.Message {
		t.Helper()
		ms, err := s.Claim(ctx, store.ClaimRequest{Now: at, Owner: owner, Lease: time.Minute, Limit: limit, PerPartner: 2})
		if err != nil {
			t.Fatalf("Claim: %v", err)
		}
		return ms
	}
	sameIDs(t, "Claim with limit 1", perPartner("w1", now, 1), c[0])
	// C already has two in flight (the busy row and c[0]); A gets two of three.
	sameIDs(t, "Claim with two per partner", perPartner("w1", now, 10), a[0], a[1], b[0])
	sameIDs(t, "Claim with every partner full", perPartner("w1", now, 10))

	if err := s.Finish(ctx, a[0].ID, "w1", store.Outcome{State: store.StateSent}); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	sameIDs(t, "Claim after one of A finished", perPartner("w1", now, 10), a[2])

	// Once the leases run out they no longer count, and the rows come back, two per partner.
	got := perPartner("w2", now.Add(2*time.Minute), 10)
	count := map[string]int{}
	for _, m := range got {
		count[m.Partner]++
	}
	if want := map[string]int{"A": 2, "B": 1, "C": 2}; fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("Claim after the leases ended took %v per partner, want %v", count, want)
	}
}

func testClaimRejectsInvalid(t *testing.T, s store.Store) {
	create(t, s, outbound("PARTNERX", base()))
	ok := store.ClaimRequest{Now: base(), Owner: "w1", Lease: time.Minute, Limit: 10}
	tests := []struct {
		name string
		edit func(r *store.ClaimRequest)
	}{
		{"no Now", func(r *store.ClaimRequest) { r.Now = time.Time{} }},
		{"no owner", func(r *store.ClaimRequest) { r.Owner = "" }},
		{"no lease", func(r *store.ClaimRequest) { r.Lease = 0 }},
		{"negative lease", func(r *store.ClaimRequest) { r.Lease = -time.Second }},
		{"no limit", func(r *store.ClaimRequest) { r.Limit = 0 }},
		{"negative per-partner limit", func(r *store.ClaimRequest) { r.PerPartner = -1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			tc.edit(&r)
			if ms, err := s.Claim(t.Context(), r); err == nil {
				t.Errorf("Claim(%+v) = %v, want an error", r, ids(ms))
			}
		})
	}
	if ms := claim(t, s, "w1", base(), 10); len(ms) != 1 {
		t.Errorf("Claim after the rejected ones = %v, want the one row", ids(ms))
	}
}

// claimAll has workers claim concurrently, each until a claim comes back empty, and returns
// how often each row was handed out.
func claimAll(t *testing.T, s store.Store, workers int, r store.ClaimRequest) map[int64]int {
	t.Helper()
	var (
		mu     sync.Mutex
		seen   = map[int64]int{}
		wg     sync.WaitGroup
		start  = make(chan struct{})
		failed = make(chan error, workers)
	)
	for w := range workers {
		wg.Go(func() {
			r := r
			r.Owner = fmt.Sprintf("w%d", w)
			<-start
			for {
				ms, err := s.Claim(t.Context(), r)
				if err != nil {
					failed <- err
					return
				}
				if len(ms) == 0 {
					return
				}
				mu.Lock()
				for _, m := range ms {
					seen[m.ID]++
					if m.LeaseOwner != r.Owner {
						failed <- fmt.Errorf("row %d claimed by %s is leased to %s", m.ID, r.Owner, m.LeaseOwner)
					}
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	close(failed)
	for err := range failed {
		t.Error(err)
	}
	return seen
}

func testClaimConcurrent(t *testing.T, s store.Store) {
	now := base()
	var all []*store.Message
	for i := range 90 {
		all = append(all, create(t, s, outbound(fmt.Sprintf("P%d", i%3), now.Add(-time.Duration(i)*time.Second))))
	}
	seen := claimAll(t, s, 8, store.ClaimRequest{Now: now, Lease: time.Minute, Limit: 4})
	for _, m := range all {
		if n := seen[m.ID]; n != 1 {
			t.Errorf("row %d claimed %d times, want once", m.ID, n)
		}
	}
	if len(seen) != len(all) {
		t.Errorf("%d rows claimed, want %d", len(seen), len(all))
	}
}

func testClaimConcurrentPerPartner(t *testing.T, s store.Store) {
	now := base()
	partners := []string{"A", "B", "C", "D"}
	for i := range 40 {
		create(t, s, outbound(partners[i%len(partners)], now))
	}
	seen := claimAll(t, s, 10, store.ClaimRequest{Now: now, Lease: time.Minute, Limit: 5, PerPartner: 3})
	for id, n := range seen {
		if n != 1 {
			t.Errorf("row %d claimed %d times, want once", id, n)
		}
	}
	inFlight := map[string]int{}
	ms, err := s.ListMessages(t.Context(), store.Filter{State: store.StateSending, Limit: 100})
	if err != nil {
		t.Fatalf("ListMessages: %v", err)
	}
	for _, m := range ms {
		inFlight[m.Partner]++
	}
	for _, p := range partners {
		if inFlight[p] != 3 {
			t.Errorf("partner %s has %d rows in flight, want the limit 3", p, inFlight[p])
		}
	}
	if len(seen) != 12 {
		t.Errorf("%d rows claimed, want 4 partners x 3", len(seen))
	}
}

func testSetWire(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	m := create(t, s, outbound("PARTNERX", now))
	if err := s.SetWire(ctx, m.ID, "w1", sha("wire"), header, "mic, sha-256"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("SetWire on an unclaimed row = %v, want ErrConflict", err)
	}
	claimOne(t, s, "w1", now, m.ID)

	if err := s.SetWire(ctx, m.ID, "w1", sha("wire"), header, "mic, sha-256"); err != nil {
		t.Fatalf("SetWire: %v", err)
	}
	got := get(t, s, m.ID)
	if got.Wire != sha("wire") || got.MIC != "mic, sha-256" || fmt.Sprint(got.WireHeader) != fmt.Sprint(header) {
		t.Errorf("after SetWire: wire %s, MIC %q, header %v", got.Wire, got.MIC, got.WireHeader)
	}
	leasedTo(t, got, "w1", now.Add(time.Minute), store.StateQueued)

	tests := []struct {
		name  string
		id    int64
		owner string
		wire  string
		want  error // nil: success
	}{
		{"the same bytes again", m.ID, "w1", sha("wire"), nil},
		{"other bytes", m.ID, "w1", sha("other"), store.ErrConflict},
		{"another owner", m.ID, "w2", sha("wire"), store.ErrConflict},
		{"unknown row", m.ID + 1000, "w1", sha("wire"), store.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.SetWire(ctx, tc.id, tc.owner, tc.wire, header, "mic, sha-256")
			if !errors.Is(err, tc.want) {
				t.Errorf("SetWire = %v, want %v", err, tc.want)
			}
		})
	}
	if got := get(t, s, m.ID); got.Wire != sha("wire") {
		t.Errorf("wire = %s after refused changes, want the first", got.Wire)
	}

	// The wire survives a retry: the next claim sends the same bytes.
	fail := &store.Attempt{Class: store.ClassTransient, Code: "http_503", HTTPStatus: 503}
	if err := s.Finish(ctx, m.ID, "w1", store.Outcome{State: store.StateQueued, NextAttemptAt: now, Attempt: fail}); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if err := s.SetWire(ctx, m.ID, "w1", sha("wire"), header, "mic"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("SetWire after Finish = %v, want ErrConflict", err)
	}
	again := claimOne(t, s, "w2", now, m.ID)
	if again.Wire != sha("wire") || again.MIC != "mic, sha-256" {
		t.Errorf("claimed again: wire %s, MIC %q; want the stored ones", again.Wire, again.MIC)
	}
}

func testFinishRetry(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	m := create(t, s, outbound("PARTNERX", now))
	claimOne(t, s, "w1", now, m.ID)

	fail := &store.Attempt{
		At: now.Add(time.Second), Class: store.ClassTransient, Code: "http_503", HTTPStatus: 503,
		Header: http503Header, BodyExcerpt: "Service Unavailable", Error: "as2: HTTP 503",
		Action: "The partner's server is overloaded or down; the message is retried.",
	}
	ev := &store.Event{Type: "attempt_failed", Detail: "HTTP 503"}
	o := store.Outcome{State: store.StateQueued, NextAttemptAt: now.Add(30 * time.Second), Attempt: fail, Event: ev}
	if err := s.Finish(ctx, m.ID, "w1", o); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	got := get(t, s, m.ID)
	if got.State != store.StateQueued || got.Attempts != 1 || got.LastCode != "http_503" || got.LastError != "as2: HTTP 503" ||
		!got.NextAttemptAt.Equal(now.Add(30*time.Second)) {
		t.Errorf("after a failed attempt: state %s, %d attempts, code %q, error %q, due %v",
			got.State, got.Attempts, got.LastCode, got.LastError, got.NextAttemptAt)
	}
	unleased(t, got)

	attempts, err := s.Attempts(ctx, m.ID)
	if err != nil {
		t.Fatalf("Attempts: %v", err)
	}
	if len(attempts) != 1 {
		t.Fatalf("Attempts = %d, want 1", len(attempts))
	}
	want := *fail
	want.ID, want.MessageRow = attempts[0].ID, m.ID
	sameAttempt(t, attempts[0], &want)
	if fail.ID != attempts[0].ID || fail.MessageRow != m.ID {
		t.Errorf("Finish left the attempt with ID %d, row %d; want %d, %d", fail.ID, fail.MessageRow, attempts[0].ID, m.ID)
	}
	evs, err := s.Events(ctx, "PARTNERX", "", 10, 0)
	if err != nil || len(evs) != 1 {
		t.Fatalf("Events = %d, %v; want the attempt's event", len(evs), err)
	}
	if evs[0].ID != ev.ID || evs[0].MessageRow != m.ID || evs[0].Direction != store.Outbound || evs[0].Type != "attempt_failed" {
		t.Errorf("event = %+v, want the attempt_failed event of row %d", *evs[0], m.ID)
	}

	// From the outbox to the queued box.
	for box, want := range map[string]int{"outbox": 0, "queued": 1} {
		ms, err := s.ListMessages(ctx, store.Filter{Box: box})
		if err != nil || len(ms) != want {
			t.Errorf("box %s = %v, %v; want %d rows", box, ids(ms), err, want)
		}
	}

	sameIDs(t, "Claim before the retry is due", claim(t, s, "w2", now.Add(29*time.Second), 10))
	claimOne(t, s, "w2", now.Add(30*time.Second), m.ID)
	second := &store.Attempt{Class: store.ClassIncomplete, Code: "connection_reset", Error: "read: connection reset by peer"}
	if err := s.Finish(ctx, m.ID, "w2", store.Outcome{State: store.StateQueued, NextAttemptAt: now.Add(time.Minute), Attempt: second}); err != nil {
		t.Fatalf("second Finish: %v", err)
	}
	if got := get(t, s, m.ID); got.Attempts != 2 || got.LastCode != "connection_reset" {
		t.Errorf("after the second failure: %d attempts, code %q; want 2, connection_reset", got.Attempts, got.LastCode)
	}
	if second.At.IsZero() {
		t.Error("an attempt without a time was not given the store's")
	}
}

var http503Header = map[string][]string{"Retry-After": {"120"}, "Content-Type": {"text/plain"}}

func sameAttempt(t testing.TB, got, want *store.Attempt) {
	t.Helper()
	if got.ID != want.ID || got.MessageRow != want.MessageRow || !got.At.Equal(want.At) || got.Class != want.Class ||
		got.Code != want.Code || got.HTTPStatus != want.HTTPStatus || fmt.Sprint(got.Header) != fmt.Sprint(want.Header) ||
		got.BodyExcerpt != want.BodyExcerpt || got.Error != want.Error || got.Action != want.Action {
		t.Errorf("attempt:\n got %+v\nwant %+v", *got, *want)
	}
}

func testFinishSent(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	m := create(t, s, outbound("PARTNERX", now))
	claimOne(t, s, "w1", now, m.ID)
	mdn := &store.MDN{
		Disposition: "automatic-action/MDN-sent-automatically; processed", Positive: true,
		MICOK: true, MIC: "abc=, sha-256", Signed: true, MessageID: "<mdn-1@partnerx>",
		Header: "Content-Type: multipart/signed\r\n", Key: sha("mdn"), At: now.Add(time.Second),
	}
	if err := s.Finish(ctx, m.ID, "w1", store.Outcome{State: store.StateSent, MDN: mdn, Event: &store.Event{Type: "sent"}}); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	got := get(t, s, m.ID)
	if got.State != store.StateSent || got.Attempts != 0 || got.LastCode != "" {
		t.Errorf("after Finish(sent): state %s, %d attempts, code %q", got.State, got.Attempts, got.LastCode)
	}
	unleased(t, got)
	want := normalize(store.Message{MDN: mdn}).MDN
	if got.MDN == nil || *normalize(*got).MDN != *want {
		t.Errorf("MDN = %+v, want %+v", got.MDN, want)
	}
	if attempts, err := s.Attempts(ctx, m.ID); err != nil || len(attempts) != 0 {
		t.Errorf("Attempts = %d, %v; a success leaves none", len(attempts), err)
	}
	sent, err := s.ListMessages(ctx, store.Filter{Box: "sent"})
	if err != nil {
		t.Fatalf("ListMessages: %v", err)
	}
	sameIDs(t, "sent box", sent, m)
	sameIDs(t, "Claim of a sent row", claim(t, s, "w2", now.Add(1000*time.Hour), 10))
	if _, ok, err := s.NextDue(ctx); ok || err != nil {
		t.Errorf("NextDue with only a sent row = %t, %v; want none", ok, err)
	}
}

func testFinishAwaitingMDN(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	m := create(t, s, outbound("PARTNERX", now))
	claimOne(t, s, "w1", now, m.ID)
	if err := s.Finish(ctx, m.ID, "w1", store.Outcome{State: store.StateAwaitingMDN, NextAttemptAt: now.Add(time.Hour)}); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	// Waiting for its first MDN, the message stays in the outbox.
	outbox, err := s.ListMessages(ctx, store.Filter{Box: "outbox"})
	if err != nil {
		t.Fatalf("ListMessages: %v", err)
	}
	sameIDs(t, "outbox", outbox, m)
	if next, ok, err := s.NextDue(ctx); err != nil || !ok || !next.Equal(now.Add(time.Hour)) {
		t.Errorf("NextDue = %v, %t, %v; want the MDN deadline %v", next, ok, err, now.Add(time.Hour))
	}
}

func testFinishFailed(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	m := create(t, s, outbound("PARTNERX", now))
	claimOne(t, s, "w1", now, m.ID)
	refused := &store.Attempt{Class: store.ClassPermanent, Code: "http_403", HTTPStatus: 403,
		BodyExcerpt: "Forbidden", Error: "as2: HTTP 403", Action: "The partner refuses us: check the AS2 ids and the URL."}
	if err := s.Finish(ctx, m.ID, "w1", store.Outcome{State: store.StateFailed, Attempt: refused, Event: &store.Event{Type: "failed"}}); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	got := get(t, s, m.ID)
	if got.State != store.StateFailed || got.Attempts != 1 || got.LastCode != "http_403" {
		t.Errorf("after Finish(failed): state %s, %d attempts, code %q", got.State, got.Attempts, got.LastCode)
	}
	failed, err := s.ListMessages(ctx, store.Filter{Box: "failed"})
	if err != nil {
		t.Fatalf("ListMessages: %v", err)
	}
	sameIDs(t, "failed box", failed, m)
	sameIDs(t, "Claim of a failed row", claim(t, s, "w2", now.Add(1000*time.Hour), 10))
}

func testFinishRejects(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	m := create(t, s, outbound("PARTNERX", now))
	idle := create(t, s, outbound("PARTNERX", now.Add(time.Hour)))
	claimOne(t, s, "w1", now, m.ID)

	invalid := []struct {
		name string
		o    store.Outcome
	}{
		{"no state", store.Outcome{}},
		{"sending", store.Outcome{State: store.StateSending}},
		{"an inbound state", store.Outcome{State: store.StateReceived}},
		{"an attempt without a class", store.Outcome{State: store.StateQueued, Attempt: &store.Attempt{Code: "x"}}},
		{"an attempt of an unknown class", store.Outcome{State: store.StateQueued, Attempt: &store.Attempt{Class: "sometimes", Code: "x"}}},
		{"an attempt without a code", store.Outcome{State: store.StateQueued, Attempt: &store.Attempt{Class: store.ClassTransient}}},
		{"an event without a type", store.Outcome{State: store.StateSent, Event: &store.Event{Detail: "x"}}},
	}
	for _, tc := range invalid {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Finish(ctx, m.ID, "w1", tc.o); err == nil {
				t.Errorf("Finish(%+v) succeeded, want an error", tc.o)
			}
		})
	}
	leasedTo(t, get(t, s, m.ID), "w1", now.Add(time.Minute), store.StateQueued)

	sent := store.Outcome{State: store.StateSent}
	for _, tc := range []struct {
		name  string
		id    int64
		owner string
		want  error
	}{
		{"another owner", m.ID, "w2", store.ErrConflict},
		{"an unclaimed row", idle.ID, "w1", store.ErrConflict},
		{"an unknown row", m.ID + 1000, "w1", store.ErrNotFound},
	} {
		if err := s.Finish(ctx, tc.id, tc.owner, sent); !errors.Is(err, tc.want) {
			t.Errorf("Finish on %s = %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := s.Finish(ctx, m.ID, "w1", sent); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	if err := s.Finish(ctx, m.ID, "w1", sent); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second Finish = %v, want ErrConflict", err)
	}
	if attempts, err := s.Attempts(ctx, m.ID); err != nil || len(attempts) != 0 {
		t.Errorf("Attempts after refused outcomes = %d, %v; want none", len(attempts), err)
	}
}

func testRelease(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	m := create(t, s, outbound("PARTNERX", now.Add(-time.Hour)))
	claimOne(t, s, "w1", now, m.ID)
	if err := s.Release(ctx, m.ID, "w2"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Release by another owner = %v, want ErrConflict", err)
	}
	if err := s.Release(ctx, m.ID+1000, "w1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Release of an unknown row = %v, want ErrNotFound", err)
	}

	before := time.Now()
	if err := s.Release(ctx, m.ID, "w1"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	after := time.Now()
	got := get(t, s, m.ID)
	if got.State != store.StateQueued || got.Attempts != 0 {
		t.Errorf("after Release: state %s, %d attempts; want queued, 0", got.State, got.Attempts)
	}
	if got.NextAttemptAt.Before(before.Add(-time.Second)) || got.NextAttemptAt.After(after.Add(time.Second)) {
		t.Errorf("after Release: due %v, want now (%v)", got.NextAttemptAt, before)
	}
	unleased(t, got)
	if attempts, err := s.Attempts(ctx, m.ID); err != nil || len(attempts) != 0 {
		t.Errorf("Attempts after Release = %d, %v; want none", len(attempts), err)
	}
	if err := s.Release(ctx, m.ID, "w1"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second Release = %v, want ErrConflict", err)
	}
	claimOne(t, s, "w2", after.Add(2*time.Second), m.ID)
}

func testCompleteMDN(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	deadline := now.Add(time.Hour)
	// awaiting returns a row that was sent and waits for its MDN.
	awaiting := func() *store.Message {
		t.Helper()
		m := create(t, s, outbound("PARTNERX", now))
		claimOne(t, s, "w1", now, m.ID)
		if err := s.Finish(ctx, m.ID, "w1", store.Outcome{State: store.StateAwaitingMDN, NextAttemptAt: deadline}); err != nil {
			t.Fatalf("Finish: %v", err)
		}
		return m
	}
	positive := &store.MDN{Disposition: "automatic-action/MDN-sent-automatically; processed", Positive: true, MICOK: true, Signed: true, At: now}
	negative := &store.MDN{Disposition: "automatic-action/MDN-sent-automatically; processed/error: decryption-failed", Signed: true, At: now}

	t.Run("positive", func(t *testing.T) {
		m := awaiting()
		ev := &store.Event{Type: "mdn_received"}
		if err := s.CompleteMDN(ctx, m.ID, store.Outcome{State: store.StateSent, MDN: positive, Event: ev}); err != nil {
			t.Fatalf("CompleteMDN: %v", err)
		}
		got := get(t, s, m.ID)
		if got.State != store.StateSent || got.MDN == nil || got.MDN.Disposition != positive.Disposition || !got.MDN.Positive || got.Attempts != 0 {
			t.Errorf("after a positive MDN: state %s, MDN %+v, %d attempts", got.State, got.MDN, got.Attempts)
		}
		unleased(t, got)
		if ev.MessageRow != m.ID || ev.Partner != "PARTNERX" || ev.ID == 0 {
			t.Errorf("event = %+v, want it written for row %d", *ev, m.ID)
		}
	})
	t.Run("overtaking the worker", func(t *testing.T) {
		m := create(t, s, outbound("PARTNERX", now))
		claimOne(t, s, "w1", now, m.ID)
		if err := s.CompleteMDN(ctx, m.ID, store.Outcome{State: store.StateSent, MDN: positive}); err != nil {
			t.Fatalf("CompleteMDN on a sending row: %v", err)
		}
		err := s.Finish(ctx, m.ID, "w1", store.Outcome{State: store.StateAwaitingMDN, NextAttemptAt: deadline})
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("the worker's Finish after the MDN = %v, want ErrConflict", err)
		}
		got := get(t, s, m.ID)
		if got.State != store.StateSent {
			t.Errorf("state = %s, want sent", got.State)
		}
		unleased(t, got)
	})
	t.Run("negative", func(t *testing.T) {
		m := awaiting()
		a := &store.Attempt{Class: store.ClassPermanent, Code: "mdn_negative", Error: "processed/error: decryption-failed"}
		if err := s.CompleteMDN(ctx, m.ID, store.Outcome{State: store.StateFailed, MDN: negative, Attempt: a}); err != nil {
			t.Fatalf("CompleteMDN: %v", err)
		}
		got := get(t, s, m.ID)
		if got.State != store.StateFailed || got.Attempts != 1 || got.LastCode != "mdn_negative" || got.MDN == nil || got.MDN.Positive {
			t.Errorf("after a negative MDN: state %s, %d attempts, code %q, MDN %+v", got.State, got.Attempts, got.LastCode, got.MDN)
		}
		attempts, err := s.Attempts(ctx, m.ID)
		if err != nil || len(attempts) != 1 || attempts[0].Code != "mdn_negative" {
			t.Errorf("Attempts = %d, %v; want the mdn_negative attempt", len(attempts), err)
		}
	})
	t.Run("retry", func(t *testing.T) {
		m := awaiting()
		a := &store.Attempt{Class: store.ClassIncomplete, Code: "mic_mismatch"}
		if err := s.CompleteMDN(ctx, m.ID, store.Outcome{State: store.StateQueued, NextAttemptAt: now.Add(2 * time.Hour), MDN: negative, Attempt: a}); err != nil {
			t.Fatalf("CompleteMDN: %v", err)
		}
		got := get(t, s, m.ID)
		if got.State != store.StateQueued || got.Attempts != 1 || !got.NextAttemptAt.Equal(now.Add(2*time.Hour)) {
			t.Errorf("after a retry: state %s, %d attempts, due %v", got.State, got.Attempts, got.NextAttemptAt)
		}
		claimOne(t, s, "w2", now.Add(2*time.Hour), m.ID)
	})
}

func testCompleteMDNRejects(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	queued := create(t, s, outbound("PARTNERX", now))
	sentRow := outbound("PARTNERX", now)
	sentRow.State = store.StateSent
	create(t, s, sentRow)
	in := create(t, s, inbound("GATEWAY", "PARTNERX", messageID()))
	awaiting := outbound("PARTNERX", now.Add(time.Hour))
	awaiting.State = store.StateAwaitingMDN
	create(t, s, awaiting)

	sent := store.Outcome{State: store.StateSent}
	for _, tc := range []struct {
		name string
		id   int64
		want error
	}{
		{"a queued row", queued.ID, store.ErrConflict},
		{"a sent row", sentRow.ID, store.ErrConflict},
		{"an inbound row", in.ID, store.ErrConflict},
		{"an unknown row", in.ID + 1000, store.ErrNotFound},
	} {
		if err := s.CompleteMDN(ctx, tc.id, sent); !errors.Is(err, tc.want) {
			t.Errorf("CompleteMDN on %s = %v, want %v", tc.name, err, tc.want)
		}
	}
	for _, state := range []string{"", store.StateAwaitingMDN, store.StateSending, store.StateReceived} {
		if err := s.CompleteMDN(ctx, awaiting.ID, store.Outcome{State: state}); err == nil {
			t.Errorf("CompleteMDN to state %q succeeded, want an error", state)
		}
	}
	if got := get(t, s, awaiting.ID); got.State != store.StateAwaitingMDN {
		t.Errorf("state after refused outcomes = %s, want awaiting_mdn", got.State)
	}
}

func testNextDue(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	check := func(what string, want time.Time, wantOK bool) {
		t.Helper()
		next, ok, err := s.NextDue(ctx)
		if err != nil {
			t.Fatalf("NextDue: %v", err)
		}
		if ok != wantOK || (ok && !next.Equal(want)) {
			t.Errorf("NextDue %s = %v, %t; want %v, %t", what, next, ok, want, wantOK)
		}
	}
	check("on an empty store", time.Time{}, false)

	create(t, s, inbound("GATEWAY", "PARTNERX", messageID()))
	for _, state := range []string{store.StateSent, store.StateFailed} {
		m := outbound("PARTNERX", now.Add(-time.Hour))
		m.State = state
		create(t, s, m)
	}
	check("with finished rows only", time.Time{}, false)

	create(t, s, outbound("PARTNERX", now.Add(20*time.Minute)))
	check("with one queued row", now.Add(20*time.Minute), true)
	m := create(t, s, outbound("PARTNERY", now.Add(10*time.Minute)))
	check("with two queued rows", now.Add(10*time.Minute), true)
	awaiting := outbound("PARTNERZ", now.Add(5*time.Minute))
	awaiting.State = store.StateAwaitingMDN
	create(t, s, awaiting)
	check("with an MDN deadline first", now.Add(5*time.Minute), true)

	// A claimed row is no longer waiting for its time.
	claimOne(t, s, "w1", now.Add(5*time.Minute), awaiting.ID)
	check("after the awaiting row was claimed", now.Add(10*time.Minute), true)
	if err := s.Finish(ctx, awaiting.ID, "w1", store.Outcome{State: store.StateSent}); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	claimOne(t, s, "w1", now.Add(10*time.Minute), m.ID)
	check("after the first queued row was claimed", now.Add(20*time.Minute), true)
}

func testAttempts(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	other := create(t, s, outbound("PARTNERY", now))
	claimOne(t, s, "w1", now, other.ID)
	dns := &store.Attempt{Class: store.ClassTransient, Code: "dns_temporary"}
	if err := s.Finish(ctx, other.ID, "w1", store.Outcome{State: store.StateQueued, NextAttemptAt: now.Add(10 * time.Hour), Attempt: dns}); err != nil {
		t.Fatalf("Finish of the other row: %v", err)
	}
	m := create(t, s, outbound("PARTNERX", now))
	codes := []string{"connect_refused", "http_502", "read_timeout"}
	for i, code := range codes {
		at := now.Add(time.Duration(i) * time.Minute)
		claimOne(t, s, "w1", at, m.ID)
		a := &store.Attempt{At: at, Class: store.ClassTransient, Code: code, Error: "attempt " + code}
		if err := s.Finish(ctx, m.ID, "w1", store.Outcome{State: store.StateQueued, NextAttemptAt: at.Add(time.Minute), Attempt: a}); err != nil {
			t.Fatalf("Finish %d: %v", i, err)
		}
	}
	attempts, err := s.Attempts(ctx, m.ID)
	if err != nil {
		t.Fatalf("Attempts: %v", err)
	}
	var got []string
	for i, a := range attempts {
		got = append(got, a.Code)
		if a.MessageRow != m.ID || !a.At.Equal(now.Add(time.Duration(i)*time.Minute)) {
			t.Errorf("attempt %d: row %d at %v", i, a.MessageRow, a.At)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(codes) {
		t.Errorf("Attempts = %v, want %v, oldest first", got, codes)
	}
	if attempts, err := s.Attempts(ctx, other.ID); err != nil || len(attempts) != 1 {
		t.Errorf("Attempts of the other row = %d, %v; want 1", len(attempts), err)
	}
	if attempts, err := s.Attempts(ctx, m.ID+1000); err != nil || len(attempts) != 0 {
		t.Errorf("Attempts of an unknown row = %d, %v; want none", len(attempts), err)
	}
	if got := get(t, s, m.ID); got.Attempts != len(codes) {
		t.Errorf("Message.Attempts = %d, want %d", got.Attempts, len(codes))
	}
}

// testClaimPartnerLimits: a partner's own concurrency overrides the default per-partner
// limit, in either direction.
func testClaimPartnerLimits(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	count := map[string]int{}
	for _, p := range []string{"SLOW", "FAST", "OTHER"} {
		for i := range 4 {
			create(t, s, outbound(p, now.Add(time.Duration(i-10)*time.Second)))
		}
	}
	ms, err := s.Claim(ctx, store.ClaimRequest{Now: now, Owner: "w", Lease: time.Minute, Limit: 20, PerPartner: 2,
		PartnerLimits: map[string]int{"SLOW": 1, "FAST": 3}})
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	for _, m := range ms {
		count[m.Partner]++
	}
	if want := map[string]int{"SLOW": 1, "FAST": 3, "OTHER": 2}; fmt.Sprint(count) != fmt.Sprint(want) {
		t.Fatalf("Claim took %v per partner, want %v", count, want)
	}
}
