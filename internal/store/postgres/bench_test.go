package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

func BenchmarkCreateMessage(b *testing.B) {
	s := openURL(b, testSchema(b))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		m := &store.Message{Direction: store.Outbound, Kind: store.KindMessage, MessageID: "<bench@as2gate.test>",
			Station: "GATEWAY", Partner: "PARTNERX", State: store.StateQueued}
		if err := s.CreateMessage(ctx, m, &store.Event{Type: "submitted"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClaimFinish measures one pass of a row through the queue, claim then finish,
// under a per-partner limit (the partner lock and count) on a queue of 1,000 due rows.
func BenchmarkClaimFinish(b *testing.B) {
	s := openURL(b, testSchema(b))
	ctx := context.Background()
	now := time.Now()
	for range 1000 {
		m := &store.Message{Direction: store.Outbound, Kind: store.KindMessage, MessageID: "<bench@as2gate.test>",
			Station: "GATEWAY", Partner: "PARTNERX", State: store.StateQueued, NextAttemptAt: now}
		if err := s.CreateMessage(ctx, m, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		ms, err := s.Claim(ctx, store.ClaimRequest{Now: now, Owner: "w1", Lease: time.Minute, Limit: 1, PerPartner: 4})
		if err != nil || len(ms) != 1 {
			b.Fatalf("Claim = %d rows, %v", len(ms), err)
		}
		err = s.Finish(ctx, ms[0].ID, "w1", store.Outcome{State: store.StateQueued, NextAttemptAt: now,
			Attempt: &store.Attempt{Class: store.ClassTransient, Code: "http_503"}})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClaimFinishTwoNodes is BenchmarkClaimFinish with two stores (two nodes) and
// four workers each, on twenty partners with a limit of four each.
func BenchmarkClaimFinishTwoNodes(b *testing.B) {
	u := testSchema(b)
	nodes := []*Store{openURL(b, u), openURL(b, u)}
	ctx := context.Background()
	now := time.Now()
	for i := range 2000 {
		m := &store.Message{Direction: store.Outbound, Kind: store.KindMessage, MessageID: "<bench@as2gate.test>",
			Station: "GATEWAY", Partner: fmt.Sprintf("P%d", i%20), State: store.StateQueued, NextAttemptAt: now}
		if err := nodes[0].CreateMessage(ctx, m, nil); err != nil {
			b.Fatal(err)
		}
	}
	var (
		mu   sync.Mutex
		left = b.N
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		left--
		return left >= 0
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	for n, s := range nodes {
		for w := range 4 {
			owner := fmt.Sprintf("n%d-w%d", n, w)
			wg.Go(func() {
				for take() {
					for {
						ms, err := s.Claim(ctx, store.ClaimRequest{Now: now, Owner: owner, Lease: time.Minute, Limit: 1, PerPartner: 4})
						if err != nil {
							b.Error(err)
							return
						}
						if len(ms) == 0 {
							continue // every free partner is being claimed by another worker
						}
						if err := s.Finish(ctx, ms[0].ID, owner, store.Outcome{State: store.StateQueued, NextAttemptAt: now}); err != nil {
							b.Error(err)
							return
						}
						break
					}
				}
			})
		}
	}
	wg.Wait()
}
