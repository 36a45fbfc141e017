package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/as2/as2test"
	"github.com/as2gate/as2gate/cms/cmstest"
	"github.com/as2gate/as2gate/internal/notify"
)

// TestFailedMessageNotifies: a message that fails for good reaches the operator's webhook,
// signed, with the failure's class, code and corrective action.
func TestFailedMessageNotifies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := []byte("a webhook secret of some length")
	secretFile := filepath.Join(dir, "webhook.key")
	if err := os.WriteFile(secretFile, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	events := make(chan notify.Event, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.Verify(secret, r.Header, body, time.Now(), time.Minute); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
		var ev notify.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook body %s: %v", body, err)
		}
		events <- ev
	}))
	defer hook.Close()

	partner := as2test.NewPartner(t, as2test.WithBehavior(as2test.Respond(http.StatusNotFound, nil, []byte("no such endpoint"))))
	station := cmstest.New(t, "GW-N", nil)
	other := cmstest.New(t, "PARTNER-N", nil)
	cert, key := station.WriteFiles(t, dir, "station")
	partnerCert, _ := other.WriteFiles(t, dir, "partner")
	n := startGateway(t, filepath.Join(dir, "gw"), gatewaySpec{
		id: "GW-N", cert: cert, key: key,
		partners: []partnerSpec{{id: "PARTNER-N", cert: partnerCert, url: partner.URL}},
		extra:    "notify:\n  webhook: {url: " + hook.URL + ", secret_file: " + secretFile + "}\n",
	})
	s := n.submit("PARTNER-N", map[string][]byte{"a.txt": []byte("hello")})
	if m := n.await(s.ID, "failed", "sent"); m.State != "failed" {
		t.Fatalf("message is %s", m.State)
	}
	select {
	case ev := <-events:
		if ev.Type != notify.MessageFailed || ev.MessageID != s.MessageID || ev.Partner != "PARTNER-N" ||
			ev.Code != "http_404" || ev.Class != "permanent" || !strings.Contains(ev.Action, "404") {
			t.Fatalf("webhook event %+v", ev)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no webhook call for the failed message")
	}
}
