package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/cms/cmstest"
	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/postgres/pgtest"
)

// TestSeveralNodes runs station GW-A as two nodes on one PostgreSQL database and exchanges
// messages with partner GW-B: messages submitted to one node are sent by the cluster and
// seen as sent from the other; a message GW-B posts to one node is visible from the other,
// and the asynchronous MDN it asks for is delivered by the cluster.
func TestSeveralNodes(t *testing.T) {
	t.Parallel()
	db := pgtest.Schema(t)
	dir := t.TempDir()
	certA, keyA := cmstest.New(t, "GW-A", nil).WriteFiles(t, dir, "a")
	certB, keyB := cmstest.New(t, "GW-B", nil).WriteFiles(t, dir, "b")
	node := func(name string) *node {
		return startGateway(t, filepath.Join(dir, name), gatewaySpec{
			id: "GW-A", cert: certA, key: keyA, allowPrivateMDN: true,
			extra:    fmt.Sprintf("database: %q\n", db),
			partners: []partnerSpec{{id: "GW-B", cert: certB, settings: agreed(nil)}},
		})
	}
	// The nodes share one payload store: here one folder that both data folders link to.
	shared := filepath.Join(dir, "payloads")
	for _, name := range []string{"A1", "A2"} {
		if err := os.MkdirAll(filepath.Join(dir, name, "data"), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(shared, filepath.Join(dir, name, "data", "payloads")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(shared, 0o750); err != nil {
		t.Fatal(err)
	}
	A1, A2 := node("A1"), node("A2")
	B := startGateway(t, filepath.Join(dir, "B"), gatewaySpec{
		id: "GW-B", cert: certB, key: keyB, allowPrivateMDN: true,
		partners: []partnerSpec{{id: "GW-A", cert: certA, settings: agreed(map[string]string{"mdn": "async"})}},
	})
	A1.cfg.Partner("GW-B").URL = gatewayURL(B.gw, false)
	A2.cfg.Partner("GW-B").URL = gatewayURL(B.gw, false)
	B.cfg.Partner("GW-A").URL = gatewayURL(A2.gw, false)

	for i := range 4 {
		from, other := A1, A2
		if i%2 == 1 {
			from, other = A2, A1
		}
		s := from.submit("GW-B", map[string][]byte{fmt.Sprintf("order-%d.edi", i): []byte(fmt.Sprintf("UNB+UNOC:3+GWA+GWB'\nUNZ+1+%d'\n", i))})
		m := other.await(s.ID, "sent", "failed")
		if m.State != "sent" || m.MDN == nil || !m.MDN.MICOK || !strings.HasSuffix(m.MDN.Disposition, "processed") {
			t.Fatalf("message %d submitted to %s, as the other node sees it: %s, MDN %+v, attempts %+v", s.ID, from.cfg.DataDir, m.State, m.MDN, m.Attempts)
		}
		B.received(s.MessageID)
	}

	s := B.submit("GW-A", map[string][]byte{"invoice.edi": []byte("UNB+UNOC:3+GWB+GWA'\nUNZ+1+9'\n")})
	got := A1.received(s.MessageID) // posted to A2
	if got.State != "received" || len(got.Files) != 1 {
		t.Fatalf("GW-B's message as A1 sees it: %+v", got)
	}
	if m := B.await(s.ID, "sent", "failed"); m.State != "sent" || m.MDN == nil || !m.MDN.MICOK {
		t.Fatalf("GW-B's message: %s, MDN %+v, attempts %+v", m.State, m.MDN, m.Attempts)
	}
}

// TestClusterRedeliverSweep: a message a node committed but never delivered (it stopped in
// between) is delivered by the elected sweep of a node sharing the database, once its
// delivery is overdue, and not before.
func TestClusterRedeliverSweep(t *testing.T) {
	t.Parallel()
	db := pgtest.Schema(t)
	dir := t.TempDir()
	certA, keyA := cmstest.New(t, "GW-A", nil).WriteFiles(t, dir, "a")
	certB, _ := cmstest.New(t, "GW-B", nil).WriteFiles(t, dir, "b")
	n := startGateway(t, filepath.Join(dir, "A1"), gatewaySpec{
		id: "GW-A", cert: certA, key: keyA,
		extra:    fmt.Sprintf("database: %q\n", db),
		partners: []partnerSpec{{id: "GW-B", cert: certB, settings: agreed(nil)}},
	})
	ctx := t.Context()
	content := []byte("UNB+UNOC:3+GWB+GWA'\n")
	key, size, err := n.gw.payloads.Put(ctx, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	m := &store.Message{Direction: store.Inbound, Kind: store.KindMessage, MessageID: "<left@other.node>", Station: "GW-A",
		Partner: "GW-B", State: store.StateReceived, Wire: key, MDNMode: "none",
		Files: []store.File{{Name: "left.edi", ContentType: "application/edifact", Size: size, SHA256: key}}}
	if err := n.gw.store.CreateInbound(ctx, m, nil, nil, time.Time{}); err != nil {
		t.Fatal(err)
	}
	inboxFile := filepath.Join(n.cfg.Inbox("GW-B"), "left.edi")
	sweep := func(now time.Time) {
		sctx, cancel := context.WithCancel(ctx)
		tick := make(chan time.Time)
		done := make(chan struct{})
		go func() {
			defer close(done)
			n.gw.redeliverSweep(sctx, func() time.Time { return now }, tick)
		}()
		// The first pass runs at once; a tick makes a second, which returns to the select
		// only after the first pass is over.
		tick <- now
		cancel()
		<-done
	}
	sweep(m.CreatedAt.Add(deliveryGrace / 2))
	if _, err := os.Stat(inboxFile); err == nil {
		t.Fatal("the sweep delivered a message received less than the grace period ago")
	}
	sweep(m.CreatedAt.Add(deliveryGrace + time.Second))
	got, err := os.ReadFile(inboxFile)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("after the grace period the inbox holds %q, %v", got, err)
	}
	if stored, _ := n.gw.store.GetMessage(ctx, m.ID); stored.DeliveredAt.IsZero() {
		t.Fatal("the delivery was not recorded")
	}
}
