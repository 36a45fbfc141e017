package inbound

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/payload"
	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/sqlite"
)

type oneAgreement struct{ inbox string }

func (a oneAgreement) Agreement(_ context.Context, station, partner string) (*Agreement, error) {
	return &Agreement{Station: station, Partner: partner, Inbox: a.inbox}, nil
}

// TestRedeliver: a received message committed but never delivered (a crash in between) is
// delivered at the next start, once, and then recorded as delivered.
func TestRedeliver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ps, err := payload.OpenDir(filepath.Join(dir, "payloads"))
	if err != nil {
		t.Fatal(err)
	}
	key, size, err := ps.Put(ctx, strings.NewReader("UNB+UNOA:1+S+R'"))
	if err != nil {
		t.Fatal(err)
	}
	m := &store.Message{Direction: store.Inbound, Kind: store.KindMessage, MessageID: "<crash@test>", Station: "GW",
		Partner: "PX", State: store.StateReceived, Wire: key,
		Files: []store.File{{Name: "orders.edi", ContentType: "application/edifact", Size: size, SHA256: key}}}
	if err := st.CreateInbound(ctx, m, nil, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	inbox := filepath.Join(dir, "inbox")
	b, err := New(Config{Store: st, Payloads: ps, Agreements: oneAgreement{inbox}})
	if err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 2; run++ {
		// A sweep for deliveries overdue since before the message arrived takes nothing.
		if n, err := b.Redeliver(ctx, m.CreatedAt); err != nil || n != 0 {
			t.Fatalf("run %d: a sweep for messages received before this one delivered %d, %v", run, n, err)
		}
		n, err := b.Redeliver(ctx, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if want := map[int]int{1: 1, 2: 0}[run]; n != want {
			t.Fatalf("run %d delivered %d messages, want %d", run, n, want)
		}
	}
	entries, _ := os.ReadDir(inbox)
	if len(entries) != 1 || entries[0].Name() != "orders.edi" {
		t.Fatalf("inbox holds %v", entries)
	}
	if got, _ := st.GetMessage(ctx, m.ID); got.DeliveredAt.IsZero() {
		t.Fatal("the delivery was not recorded")
	}
}
