package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

func testStats(t *testing.T, s store.Store) {
	ctx := context.Background()
	st, err := s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Messages) != 0 || len(st.Queues) != 0 {
		t.Fatalf("Stats of an empty store = %+v", st)
	}

	now := base()
	mk := func(partner string, due time.Time, change func(*store.Message)) *store.Message {
		m := outbound(partner, due)
		if change != nil {
			change(m)
		}
		return create(t, s, m)
	}
	// Two rows in sending: PARTNERA's due long ago, PARTNERD's after it.
	sendingA := mk("PARTNERA", now.Add(-3*time.Minute), nil)
	claimOne(t, s, "w1", now, sendingA.ID)
	sendingD := mk("PARTNERD", now.Add(-2*time.Minute), nil)
	claimOne(t, s, "w1", now, sendingD.ID)
	mk("PARTNERA", now.Add(10*time.Minute), nil)
	mk("PARTNERA", now.Add(5*time.Minute), nil) // PARTNERA's oldest queued row
	mk("PARTNERA", now.Add(-time.Hour), func(m *store.Message) { m.State = store.StateSent })
	mk("PARTNERA", now, func(m *store.Message) { m.State = store.StateAwaitingMDN })
	mk("PARTNERB", now, func(m *store.Message) { m.State = store.StateFailed; m.Attempts = 3 })
	// An MDN we owe is queue work for its partner, not a message.
	mk("PARTNERC", now.Add(time.Minute), func(m *store.Message) { m.Kind = store.KindMDN })
	mk("PARTNERC", now, func(m *store.Message) { m.Kind = store.KindMDN; m.State = store.StateSent })
	create(t, s, inbound("GATEWAY", "PARTNERB", messageID()))
	create(t, s, inbound("GATEWAY", "PARTNERC", messageID()))
	suspended := inbound("GATEWAY", "PARTNERC", messageID())
	suspended.State = store.StateSuspended
	create(t, s, suspended)

	st, err = s.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[[2]string]int64{}
	for _, c := range st.Messages {
		if c.Count == 0 {
			t.Errorf("Stats lists %s/%s with no message", c.Direction, c.State)
		}
		counts[[2]string{c.Direction, c.State}] += c.Count
	}
	want := map[[2]string]int64{
		{store.Outbound, store.StateQueued}:      2,
		{store.Outbound, store.StateSending}:     2,
		{store.Outbound, store.StateAwaitingMDN}: 1,
		{store.Outbound, store.StateSent}:        1,
		{store.Outbound, store.StateFailed}:      1,
		{store.Inbound, store.StateReceived}:     2,
		{store.Inbound, store.StateSuspended}:    1,
	}
	if len(counts) != len(want) || len(st.Messages) != len(want) {
		t.Errorf("Stats.Messages = %+v, want %v", st.Messages, want)
	}
	for k, n := range want {
		if counts[k] != n {
			t.Errorf("messages %s/%s = %d, want %d", k[0], k[1], counts[k], n)
		}
	}

	wantQueues := []store.PartnerQueue{
		{Partner: "PARTNERA", Depth: 3, OldestDue: now.Add(5 * time.Minute)},
		{Partner: "PARTNERC", Depth: 1, OldestDue: now.Add(time.Minute)},
		{Partner: "PARTNERD", Depth: 1}, // only a row being sent: nothing waits
	}
	if len(st.Queues) != len(wantQueues) {
		t.Fatalf("Stats.Queues = %+v, want %+v", st.Queues, wantQueues)
	}
	for i, w := range wantQueues {
		g := st.Queues[i]
		if g.Partner != w.Partner || g.Depth != w.Depth || !g.OldestDue.Equal(w.OldestDue) {
			t.Errorf("Stats.Queues[%d] = %+v, want %+v", i, g, w)
		}
	}
}
