package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/cms/cmstest"
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
