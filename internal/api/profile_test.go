package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/outbound"
	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/sqlite"
)

// TestSubmitProfile checks the profile form field: passed on to the submission, refused with
// 400 and the submitter's message when unknown, and shown on the message.
func TestSubmitProfile(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var got []string
	a := New(Config{
		Store: st, Tokens: []string{token}, SpoolDir: t.TempDir(),
		Submit: func(ctx context.Context, s outbound.Submission) (*store.Message, error) {
			got = append(got, s.Profile)
			if s.Profile != "" && s.Profile != "invoices" {
				return nil, &outbound.SubmitError{Msg: `unknown profile "` + s.Profile + `": the send profiles are invoices`}
			}
			m := &store.Message{Direction: store.Outbound, Kind: store.KindMessage, MessageID: "<p@test>",
				Station: "GW", Partner: s.Partner, Profile: s.Profile, State: store.StateQueued, NextAttemptAt: time.Now(),
				Files: []store.File{{Name: "a.edi", ContentType: "application/edi-x12", Size: 1, SHA256: strings.Repeat("a", 64)}}}
			return m, st.CreateMessage(ctx, m, nil)
		},
	})
	f := &fixture{store: st, srv: httptest.NewServer(a.Handler())}
	t.Cleanup(f.srv.Close)

	body, ct := form(map[string]string{"partner": "PARTNERX", "profile": "invoice"}, map[string]string{"a.edi": "x"})
	code, out := f.do(t, "POST", "/api/v1/messages", token, body, ct)
	if code != http.StatusBadRequest || !strings.Contains(out["error"].(string), `unknown profile "invoice"`) {
		t.Fatalf("unknown profile: %d %v, want 400 naming it", code, out)
	}

	body, ct = form(map[string]string{"partner": "PARTNERX", "profile": "invoices"}, map[string]string{"a.edi": "x"})
	code, out = f.do(t, "POST", "/api/v1/messages", token, body, ct)
	if code != http.StatusAccepted {
		t.Fatalf("known profile: %d %v", code, out)
	}
	if len(got) != 2 || got[0] != "invoice" || got[1] != "invoices" {
		t.Fatalf("submitted profiles %q, want [invoice invoices]", got)
	}
	code, m := f.do(t, "GET", "/api/v1/messages/"+jsonNumber(int64(out["id"].(float64))), token, nil, "")
	if code != http.StatusOK || m["profile"] != "invoices" {
		t.Fatalf("get: %d %v, want profile invoices", code, m)
	}
}
