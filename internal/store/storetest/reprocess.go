package storetest

import (
	"errors"
	"testing"

	"github.com/as2gate/as2gate/internal/store"
)

func testReprocess(t *testing.T, s store.Store) {
	ctx := t.Context()
	susp := inbound("GATEWAY", "PARTNERX", messageID())
	susp.State, susp.LastCode, susp.LastError = store.StateSuspended, "authentication-failed", "no certificate"
	create(t, s, susp)
	files := []store.File{{Name: "a.edi", ContentType: "application/edifact", Size: 3, SHA256: "ab"}}
	got, err := s.Reprocess(ctx, susp.ID, store.ReprocessRequest{State: store.StateReceived, Files: files, MIC: "x=, sha-256",
		Event: &store.Event{Type: "reprocessed", Detail: "received"}})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StateReceived || len(got.Files) != 1 || got.Files[0] != files[0] || got.MIC != "x=, sha-256" ||
		got.LastError != "" || got.LastCode != "" {
		t.Fatalf("after reprocess: %+v", got)
	}
	if un, err := s.Undelivered(ctx, 10); err != nil || len(un) != 1 || un[0].ID != susp.ID {
		t.Fatalf("a reprocessed message is not waiting for delivery: %v, %v", un, err)
	}
	evs, err := s.Timeline(ctx, store.EventFilter{})
	if err != nil || len(evs) != 1 || evs[0].MessageRow != susp.ID || evs[0].Type != "reprocessed" || evs[0].Partner != "PARTNERX" {
		t.Fatalf("timeline %v, %v", evs, err)
	}

	// Received again and delivered, then suspended by a stricter agreement: files and the
	// delivery record go.
	if err := s.MarkDelivered(ctx, susp.ID, base()); err != nil {
		t.Fatal(err)
	}
	got, err = s.Reprocess(ctx, susp.ID, store.ReprocessRequest{State: store.StateSuspended, LastCode: "insufficient-message-security", LastError: "not encrypted"})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StateSuspended || len(got.Files) != 0 || got.LastError != "not encrypted" || !got.DeliveredAt.IsZero() {
		t.Fatalf("after reprocess to suspended: %+v", got)
	}

	out := create(t, s, outbound("PARTNERX", base()))
	for name, tc := range map[string]struct {
		id   int64
		r    store.ReprocessRequest
		want error
	}{
		"an outbound row":   {id: out.ID, r: store.ReprocessRequest{State: store.StateReceived}, want: store.ErrConflict},
		"a missing row":     {id: 1 << 40, r: store.ReprocessRequest{State: store.StateReceived}, want: store.ErrNotFound},
		"a state to refuse": {id: susp.ID, r: store.ReprocessRequest{State: store.StateQueued}},
		"an untyped event":  {id: susp.ID, r: store.ReprocessRequest{State: store.StateReceived, Event: &store.Event{}}},
	} {
		_, err := s.Reprocess(ctx, tc.id, tc.r)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
}
