package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

func testEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	now := base()
	m := create(t, s, outbound("PARTNERX", now))
	add := func(ev *store.Event) *store.Event {
		t.Helper()
		if err := s.AddEvent(ctx, ev); err != nil {
			t.Fatalf("AddEvent(%+v): %v", ev, err)
		}
		if ev.ID == 0 || ev.At.IsZero() {
			t.Errorf("AddEvent left ID %d, At %v; want both set", ev.ID, ev.At)
		}
		return ev
	}
	e1 := add(&store.Event{At: now, MessageRow: m.ID, Direction: store.Outbound, Partner: "PARTNERX", Type: "submitted", Tag: "t"})
	e2 := add(&store.Event{Direction: store.Inbound, Partner: "PARTNERX", Type: "received", Detail: "1 file"})
	e3 := add(&store.Event{Direction: store.Inbound, Partner: "PARTNERY", Type: "duplicate"})
	e4 := add(&store.Event{Type: "certificate_expiring", Detail: "GATEWAY expires in 12 days"})
	e5 := add(&store.Event{At: now.Add(time.Second), Direction: store.Outbound, Partner: "PARTNERY", Type: "sent"})
	if !(e1.ID < e2.ID && e2.ID < e3.ID && e3.ID < e4.ID && e4.ID < e5.ID) {
		t.Errorf("event IDs %d %d %d %d %d, want increasing", e1.ID, e2.ID, e3.ID, e4.ID, e5.ID)
	}

	tests := []struct {
		name               string
		partner, direction string
		limit              int
		before             int64
		want               []*store.Event
	}{
		{"all", "", "", 0, 0, []*store.Event{e5, e4, e3, e2, e1}},
		{"partner", "PARTNERX", "", 0, 0, []*store.Event{e2, e1}},
		{"direction", "", store.Inbound, 0, 0, []*store.Event{e3, e2}},
		{"partner and direction", "PARTNERY", store.Outbound, 0, 0, []*store.Event{e5}},
		{"limit", "", "", 2, 0, []*store.Event{e5, e4}},
		{"before", "", "", 2, e4.ID, []*store.Event{e3, e2}},
		{"before the first", "", "", 0, e1.ID, nil},
		{"unknown partner", "NOBODY", "", 0, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Events(ctx, tc.partner, tc.direction, tc.limit, tc.before)
			if err != nil {
				t.Fatalf("Events: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Events = %d events, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if g, w := normalizeEvent(*got[i]), normalizeEvent(*tc.want[i]); g != w {
					t.Errorf("event %d:\n got %+v\nwant %+v", i, g, w)
				}
			}
		})
	}

	t.Run("default limit", func(t *testing.T) {
		for i := range 55 {
			add(&store.Event{Partner: "BULK", Type: "received", Detail: fmt.Sprint(i)})
		}
		got, err := s.Events(ctx, "BULK", "", 0, 0)
		if err != nil {
			t.Fatalf("Events: %v", err)
		}
		if len(got) != 50 {
			t.Fatalf("Events without a limit = %d events, want 50", len(got))
		}
		if got[0].Detail != "54" || got[49].Detail != "5" {
			t.Errorf("Events without a limit run from %q to %q, want the newest, 54 to 5", got[0].Detail, got[49].Detail)
		}
	})
}

func normalizeEvent(ev store.Event) store.Event {
	ev.At = utc(ev.At)
	return ev
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
