package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/postgres/pgtest"
)

// The tests in this file run two stores, each with its own pool, on one schema: two nodes.

func twoNodes(t *testing.T, opts ...Option) (*Store, *Store) {
	t.Helper()
	u := testSchema(t)
	return openURL(t, u, opts...), openURL(t, u, opts...)
}

func queued(partner string, due time.Time, n int) *store.Message {
	return &store.Message{
		Direction: store.Outbound, Kind: store.KindMessage, State: store.StateQueued,
		MessageID: fmt.Sprintf("<%d-%s-%d@cluster.test>", due.UnixNano(), partner, n),
		Station:   "GATEWAY", Partner: partner, URL: "http://127.0.0.1:4081/as2", NextAttemptAt: due,
	}
}

// claimEverything runs workers goroutines on each node, each claiming until a claim comes
// back empty, and counts how often each row was claimed.
func claimEverything(t *testing.T, nodes []*Store, workers int, r store.ClaimRequest) map[int64]int {
	t.Helper()
	var (
		mu   sync.Mutex
		seen = map[int64]int{}
		wg   sync.WaitGroup
		errs = make(chan error, workers*len(nodes))
	)
	start := make(chan struct{})
	for i, s := range nodes {
		for w := range workers {
			wg.Go(func() {
				r := r
				r.Owner = fmt.Sprintf("node%d-w%d", i, w)
				<-start
				for {
					ms, err := s.Claim(context.Background(), r)
					if err != nil {
						errs <- err
						return
					}
					if len(ms) == 0 {
						return
					}
					mu.Lock()
					for _, m := range ms {
						seen[m.ID]++
					}
					mu.Unlock()
				}
			})
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return seen
}

func TestClusterClaimDisjoint(t *testing.T) {
	t.Parallel()
	a, b := twoNodes(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Second)
	var all []int64
	for i := range 300 {
		m := queued(fmt.Sprintf("P%d", i%5), now.Add(-time.Duration(i)*time.Millisecond), i)
		if err := []*Store{a, b}[i%2].CreateMessage(ctx, m, nil); err != nil {
			t.Fatalf("CreateMessage: %v", err)
		}
		all = append(all, m.ID)
	}
	seen := claimEverything(t, []*Store{a, b}, 4, store.ClaimRequest{Now: now, Lease: time.Minute, Limit: 7})
	for _, id := range all {
		if seen[id] != 1 {
			t.Errorf("row %d claimed %d times, want once", id, seen[id])
		}
	}
}

func TestClusterClaimPerPartner(t *testing.T) {
	t.Parallel()
	a, b := twoNodes(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Second)
	partners := []string{"A", "B", "C", "D", "E"}
	for i := range 100 {
		if err := []*Store{a, b}[i%2].CreateMessage(ctx, queued(partners[i%len(partners)], now, i), nil); err != nil {
			t.Fatalf("CreateMessage: %v", err)
		}
	}
	// E has a limit of its own; the others share PerPartner. Each round claims everything it
	// may on both nodes at once, checks the limits, and returns the rows to the queue.
	r := store.ClaimRequest{Now: now, Lease: time.Minute, Limit: 4, PerPartner: 3, PartnerLimits: map[string]int{"E": 5}}
	for round := range 5 {
		// Release makes a row due at the store's clock: later rounds claim later.
		r.Now = now.Add(time.Duration(round) * time.Hour)
		seen := claimEverything(t, []*Store{a, b}, 5, r)
		for id, n := range seen {
			if n != 1 {
				t.Errorf("round %d: row %d claimed %d times, want once", round, id, n)
			}
		}
		ms, err := a.ListMessages(ctx, store.Filter{State: store.StateSending, Limit: 200})
		if err != nil {
			t.Fatalf("ListMessages: %v", err)
		}
		inFlight := map[string]int{}
		for _, m := range ms {
			inFlight[m.Partner]++
		}
		want := map[string]int{"A": 3, "B": 3, "C": 3, "D": 3, "E": 5}
		for p, n := range want {
			if inFlight[p] != n {
				t.Errorf("round %d: partner %s has %d rows in flight across both nodes, want its limit %d", round, p, inFlight[p], n)
			}
		}
		if len(seen) != 17 {
			t.Errorf("round %d: %d rows claimed, want 17", round, len(seen))
		}
		for _, m := range ms {
			if err := b.Release(ctx, m.ID, m.LeaseOwner); err != nil {
				t.Fatalf("Release: %v", err)
			}
		}
		if t.Failed() {
			return
		}
	}
}

func TestClusterDedup(t *testing.T) {
	t.Parallel()
	a, b := twoNodes(t)
	ctx := t.Context()
	since := time.Now().Add(-time.Hour)
	const rounds = 40
	for i := range rounds {
		id := fmt.Sprintf("<dup-%d@partner.test>", i)
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  [2]error
		)
		for n, s := range []*Store{a, b} {
			wg.Go(func() {
				m := &store.Message{Direction: store.Inbound, Kind: store.KindMessage, State: store.StateReceived,
					MessageID: id, Station: "GATEWAY", Partner: "PARTNER", MDNMode: "async"}
				job := &store.Message{Direction: store.Outbound, Kind: store.KindMDN, State: store.StateQueued,
					MessageID: "<mdn-" + id[1:], Station: "GATEWAY", Partner: "PARTNER", URL: "http://127.0.0.1:4081/mdn"}
				<-start
				errs[n] = s.CreateInbound(ctx, m, job, &store.Event{Type: "received"}, since)
			})
		}
		close(start)
		wg.Wait()
		var kept, dups int
		for _, err := range errs {
			var de *store.DuplicateError
			switch {
			case err == nil:
				kept++
			case errors.As(err, &de):
				dups++
				if de.Existing.MessageID != id {
					t.Errorf("duplicate of %s names %s", id, de.Existing.MessageID)
				}
			default:
				t.Fatalf("CreateInbound(%s): %v", id, err)
			}
		}
		if kept != 1 || dups != 1 {
			t.Errorf("%s sent to two nodes at once: %d kept, %d duplicates; want 1 and 1", id, kept, dups)
		}
		ms, err := a.ListMessages(ctx, store.Filter{Q: id[1 : len(id)-1], Limit: 10})
		if err != nil {
			t.Fatalf("ListMessages: %v", err)
		}
		if len(ms) != 2 { // the inbound row and its MDN job
			t.Errorf("%s: %d rows stored, want the message and one MDN job", id, len(ms))
		}
	}
}

// TestClusterReclaim: a node that dies holding rows leaves them in sending; another node
// takes them once their lease has run out, and not before.
func TestClusterReclaim(t *testing.T) {
	t.Parallel()
	a, b := twoNodes(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Second)
	m := queued("P", now, 0)
	if err := a.CreateMessage(ctx, m, nil); err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}
	r := store.ClaimRequest{Now: now, Owner: "a", Lease: time.Minute, Limit: 10, PerPartner: 1}
	if ms, err := a.Claim(ctx, r); err != nil || len(ms) != 1 {
		t.Fatalf("Claim on a = %d rows, %v; want 1", len(ms), err)
	}
	a.Close()
	r.Owner, r.Now = "b", now.Add(59*time.Second)
	if ms, err := b.Claim(ctx, r); err != nil || len(ms) != 0 {
		t.Fatalf("Claim on b under a live lease = %d rows, %v; want none", len(ms), err)
	}
	r.Now = now.Add(time.Minute)
	ms, err := b.Claim(ctx, r)
	if err != nil || len(ms) != 1 || ms[0].ID != m.ID {
		t.Fatalf("Claim on b after the lease = %v, %v; want [%d]", ms, err, m.ID)
	}
	if ms[0].LeaseOwner != "b" || ms[0].ClaimedFrom != store.StateQueued {
		t.Errorf("reclaimed row: owner %q, claimed from %q; want b, queued", ms[0].LeaseOwner, ms[0].ClaimedFrom)
	}
}

func TestClusterWakeups(t *testing.T) {
	t.Parallel()
	a, b := twoNodes(t)
	ctx := t.Context()
	w := b.Wakeups()
	// The listener signals once it listens: from then on nothing committed is missed.
	<-w
	now := time.Now().UTC()
	m := queued("P", now, 0)
	if err := a.CreateMessage(ctx, m, nil); err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}
	<-w // the submission on a woke b
	ms, err := b.Claim(ctx, store.ClaimRequest{Now: now, Owner: "b", Lease: time.Minute, Limit: 1})
	if err != nil || len(ms) != 1 {
		t.Fatalf("Claim on b = %d rows, %v", len(ms), err)
	}
	if err := b.Finish(ctx, m.ID, "b", store.Outcome{State: store.StateQueued, NextAttemptAt: now.Add(time.Minute)}); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	<-a.Wakeups() // a's listener is up
	select {
	case <-a.Wakeups():
	default:
	}
	// Listening already: a requeue on b reaches a.
	if _, err := b.Requeue(ctx, m.ID, store.RequeueRequest{From: []string{store.StateQueued}}); err != nil {
		t.Fatalf("Requeue: %v", err)
	}
	<-a.Wakeups()
}

// TestClusterWakeupAfterReconnect: when the listener's connection is cut, the store dials
// again and signals, since notifications may have been missed in between.
func TestClusterWakeupAfterReconnect(t *testing.T) {
	t.Parallel()
	a := openURL(t, testSchema(t), WithElectionInterval(20*time.Millisecond))
	w := a.Wakeups()
	<-w
	terminate(t, a, "listener")
	<-w
}

// terminate ends the backend of s's own connection for purpose.
func terminate(t *testing.T, s *Store, purpose string) {
	t.Helper()
	var n int
	err := s.pool.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1`, s.applicationName(purpose)).Scan(&n)
	if err != nil {
		t.Fatalf("terminating %q: %v", purpose, err)
	}
	if n == 0 {
		t.Fatalf("no backend for %q to terminate", purpose)
	}
}

func TestClusterElection(t *testing.T) {
	t.Parallel()
	a, b := twoNodes(t, WithElectionInterval(20*time.Millisecond))
	ctx := t.Context()
	role := "maintenance"
	lostA, resignA, err := a.Campaign(ctx, role)
	if err != nil {
		t.Fatalf("Campaign on a: %v", err)
	}
	defer resignA()
	// b cannot lead while a does: its try fails.
	c, err := b.dial(ctx, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if won, err := b.tryOnce(ctx, c, role); err != nil || won {
		t.Fatalf("b's try while a leads = %v, %v; want false", won, err)
	}
	if held := lockHolders(t, a, role); held != 1 {
		t.Fatalf("%d sessions hold the lock, want 1", held)
	}
	// A campaign waits while a leads, until its context ends.
	short, cancel := context.WithCancel(ctx)
	waiting := make(chan error, 1)
	go func() {
		_, resign, err := b.Campaign(short, role)
		if err == nil {
			resign()
		}
		waiting <- err
	}()
	cancel()
	if err := <-waiting; !errors.Is(err, context.Canceled) {
		t.Fatalf("Campaign on b while a leads = %v, want it cancelled", err)
	}

	got := make(chan error, 1)
	var lostB <-chan struct{}
	var resignB func()
	go func() {
		var err error
		lostB, resignB, err = b.Campaign(ctx, role)
		got <- err
	}()
	a.Close() // a's node stops: its leadership ends with its connection
	<-lostA
	if err := <-got; err != nil {
		t.Fatalf("Campaign on b after a closed: %v", err)
	}
	defer resignB()
	select {
	case <-lostB:
		t.Fatal("b lost the leadership it just won")
	default:
	}
}

// TestClusterElectionLostConnection: a leader whose connection breaks (its node died, or
// the network went) loses the lead, and another node takes it.
func TestClusterElectionLostConnection(t *testing.T) {
	t.Parallel()
	a, b := twoNodes(t, WithElectionInterval(20*time.Millisecond))
	ctx := t.Context()
	lost, resign, err := a.Campaign(ctx, "expiry")
	if err != nil {
		t.Fatalf("Campaign on a: %v", err)
	}
	defer resign()
	got := make(chan error, 1)
	go func() {
		_, resign, err := b.Campaign(ctx, "expiry")
		if err == nil {
			resign()
		}
		got <- err
	}()
	// The leader's backend ends, as when its node's connection drops.
	var n int
	if err := a.pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = hashtext($2 || chr(31) || $3)::oid
		AND objsubid = 2`, lockLeader, a.scope, "expiry").Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminating the leader's backend: %d, %v", n, err)
	}
	<-lost
	if err := <-got; err != nil {
		t.Fatalf("Campaign on b after a's connection broke: %v", err)
	}
}

// lockHolders counts the sessions holding role's leader lock in s's scope.
func lockHolders(t *testing.T, s *Store, role string) int {
	t.Helper()
	var n int
	err := s.pool.QueryRow(t.Context(), `SELECT count(*) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND classid = $1 AND objid = hashtext($2 || chr(31) || $3)::oid
		AND objsubid = 2`, lockLeader, s.scope, role).Scan(&n)
	if err != nil {
		t.Fatalf("pg_locks: %v", err)
	}
	return n
}

func TestLeadWithElector(t *testing.T) {
	t.Parallel()
	a, b := twoNodes(t, WithElectionInterval(20*time.Millisecond))
	ctx := t.Context()
	running := make(chan string)
	stopped := make(chan string, 2)
	lead := func(s *Store, name string) {
		store.Lead(ctx, s, "retention", func(ctx context.Context) {
			running <- name
			<-ctx.Done()
			stopped <- name
		}, nil)
	}
	go lead(a, "a")
	first := <-running
	go lead(b, "b")
	leader, other := a, "b"
	if first == "b" {
		leader, other = b, "a"
	}
	leader.Close()
	if got := <-stopped; got != first {
		t.Fatalf("%s stopped, want the old leader %s", got, first)
	}
	if got := <-running; got != other {
		t.Fatalf("%s runs after the hand-over, want %s", got, other)
	}
}

func TestOpenKeepsThePasswordOut(t *testing.T) {
	t.Parallel()
	for _, u := range []string{
		"postgres://as2gate:s3cr3t-pw@127.0.0.1:1/as2gate?sslmode=disable&connect_timeout=5",
		"postgres://as2gate:s3cr3t-pw@127.0.0.1:5432/as2gate?sslmode=nonsense",
		"postgres://as2gate:s3cr3t-pw@[::1/as2gate",
	} {
		_, err := Open(t.Context(), u)
		if err == nil {
			t.Errorf("Open(%s) succeeded", pgtest.Redacted(u))
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("Open error shows the password: %v", err)
		}
	}
}

// TestMigrationsAtOnce: nodes starting together on an empty schema migrate it once.
func TestMigrationsAtOnce(t *testing.T) {
	t.Parallel()
	u := testSchema(t)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Go(func() {
			s, err := Open(t.Context(), u)
			if err == nil {
				err = s.Close()
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Open: %v", err)
		}
	}
	s := openURL(t, u)
	var versions []int64
	rows, err := s.pool.Query(t.Context(), `SELECT version_id FROM goose_db_version WHERE version_id > 0 ORDER BY id`)
	if err != nil {
		t.Fatalf("reading versions: %v", err)
	}
	versions, err = pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatalf("reading versions: %v", err)
	}
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	var want []int64
	for i := range files {
		want = append(want, int64(i+1))
	}
	if !slices.Equal(versions, want) {
		t.Errorf("applied versions %v, want each of %v once", versions, want)
	}
}
