package outbound

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/payload"
	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/sqlite"
)

// noPartners knows no partner: every attempt ends as a permanent configuration failure,
// which lets a test see that a row was attempted without sending anything.
type noPartners struct{}

func (noPartners) Partner(ctx context.Context, station, partner string) (*Partner, error) {
	return nil, fmt.Errorf("no partner %s at station %s", partner, station)
}

func (noPartners) MDNClient(ctx context.Context, station, partner string) (*http.Client, error) {
	return nil, fmt.Errorf("no partner %s at station %s", partner, station)
}

// queueAt opens a store whose clock stands at now, and a worker named owner on it.
func queueAt(t *testing.T, now time.Time, owner string, onFailed func(context.Context, *store.Message, Failure)) (store.Store, *Worker) {
	t.Helper()
	dir := t.TempDir()
	s, err := sqlite.Open(t.Context(), filepath.Join(dir, "as2gate.db"), sqlite.WithNow(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	payloads, err := payload.OpenDir(filepath.Join(dir, "payloads"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{Store: s, Payloads: payloads, Partners: noPartners{}, Owner: owner,
		Now: func() time.Time { return now }, OnFailed: onFailed})
	if err != nil {
		t.Fatal(err)
	}
	return s, w
}

// leaseTo creates a queued row due at now and claims it for owner with a ten-minute lease,
// as a worker that is then killed leaves it. With awaiting, the row first goes out and
// waits for an asynchronous MDN whose deadline has passed, so the claim is for the timeout.
func leaseTo(t *testing.T, s store.Store, now time.Time, owner string, awaiting bool) *store.Message {
	t.Helper()
	ctx := t.Context()
	m := &store.Message{
		Direction: store.Outbound, Kind: store.KindMessage, MessageID: fmt.Sprintf("<%d.%s@as2gate.test>", now.UnixNano(), owner),
		Station: "GATEWAY", Partner: "PARTNERX", State: store.StateQueued, NextAttemptAt: now.Add(-time.Hour),
	}
	if err := s.CreateMessage(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	claim := func() {
		t.Helper()
		rows, err := s.Claim(ctx, store.ClaimRequest{Now: now, Owner: owner, Lease: 10 * time.Minute, Limit: 1})
		if err != nil || len(rows) != 1 || rows[0].ID != m.ID {
			t.Fatalf("claiming message %d for %s: %d rows, %v", m.ID, owner, len(rows), err)
		}
	}
	claim()
	if awaiting {
		out := store.Outcome{State: store.StateAwaitingMDN, NextAttemptAt: now.Add(-time.Minute)}
		if err := s.Finish(ctx, m.ID, owner, out); err != nil {
			t.Fatal(err)
		}
		claim()
	}
	return m
}

// TestReclaim checks what a worker does at start with the rows in sending: its own (left by a
// killed run of the same node) return to where they were due from, at once and without an
// attempt spent; another node's live leases stay as they are.
func TestReclaim(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		owner     string
		awaiting  bool
		wantState string
		wantOwner string
		wantDue   time.Time
	}{
		{"own row due to be sent", "node-1", false, store.StateQueued, "", now},
		{"own row whose MDN deadline passed", "node-1", true, store.StateAwaitingMDN, "", now.Add(-time.Minute)},
		{"another node's row", "node-2", false, store.StateSending, "node-2", now.Add(-time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, w := queueAt(t, now, "node-1", nil)
			m := leaseTo(t, s, now, tc.owner, tc.awaiting)
			n, err := w.reclaim(t.Context())
			if err != nil {
				t.Fatalf("reclaim: %v", err)
			}
			if want := map[bool]int{true: 1, false: 0}[tc.wantOwner == ""]; n != want {
				t.Errorf("reclaim returned %d rows, want %d", n, want)
			}
			got, err := s.GetMessage(t.Context(), m.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tc.wantState || got.LeaseOwner != tc.wantOwner || got.Attempts != 0 || !got.NextAttemptAt.Equal(tc.wantDue) {
				t.Errorf("after reclaim: state %s, lease %q, attempts %d, due %v; want %s, lease %q, no attempt, due %v",
					got.State, got.LeaseOwner, got.Attempts, got.NextAttemptAt, tc.wantState, tc.wantOwner, tc.wantDue)
			}
		})
	}
}

// TestReclaimPages checks that reclaim reads past its first page of rows in sending.
func TestReclaimPages(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s, w := queueAt(t, now, "node-1", nil)
	ctx := t.Context()
	const rows = reclaimPage + 3
	for i := range rows {
		m := &store.Message{
			Direction: store.Outbound, Kind: store.KindMessage, MessageID: fmt.Sprintf("<page-%d@as2gate.test>", i),
			Station: "GATEWAY", Partner: "PARTNERX", State: store.StateQueued, NextAttemptAt: now,
		}
		if err := s.CreateMessage(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.Claim(ctx, store.ClaimRequest{Now: now, Owner: "node-1", Lease: time.Hour, Limit: rows}); err != nil || len(got) != rows {
		t.Fatalf("claimed %d rows, %v; want %d", len(got), err, rows)
	}
	if n, err := w.reclaim(ctx); err != nil || n != rows {
		t.Fatalf("reclaim = %d, %v; want %d", n, err, rows)
	}
	if left, err := s.ListMessages(ctx, store.Filter{State: store.StateSending}); err != nil || len(left) != 0 {
		t.Fatalf("%d rows still in sending, %v", len(left), err)
	}
}

// TestRunReclaimsAtStart checks that a row a killed run left in sending, under a lease that
// has ten minutes to go, is attempted as soon as the node's next run starts.
func TestRunReclaimsAtStart(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	failed := make(chan *store.Message, 1)
	s, w := queueAt(t, now, "node-1", func(ctx context.Context, m *store.Message, f Failure) {
		failed <- m
	})
	m := leaseTo(t, s, now, "node-1", false)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case got := <-failed:
		if got.ID != m.ID {
			t.Errorf("attempted message %d, want %d", got.ID, m.ID)
		}
	case err := <-done:
		t.Fatalf("Run returned before attempting the row: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the row was not attempted: it waits for its lease to expire")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	attempts, err := s.Attempts(t.Context(), m.ID)
	if err != nil || len(attempts) != 1 || attempts[0].Code != CodeConfig {
		t.Fatalf("attempts %+v, %v; want the one configuration failure", attempts, err)
	}
}
