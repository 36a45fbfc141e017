package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/outbound"
	"github.com/as2gate/as2gate/internal/payload"
	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/sqlite"
)

// offline knows the route to PARTNERX but cannot send to anyone: the worker is never run
// here, the actions only change the queue.
type offline struct{}

func (offline) Partner(ctx context.Context, station, partner string) (*outbound.Partner, error) {
	return nil, errors.New("offline")
}

func (offline) MDNClient(ctx context.Context, station, partner string) (*http.Client, error) {
	return nil, errors.New("offline")
}

func (offline) Route(ctx context.Context, partner string) (*outbound.Route, error) {
	if partner != "PARTNERX" {
		return nil, fmt.Errorf("no partner %s", partner)
	}
	return &outbound.Route{Station: "GW", URL: "http://127.0.0.1:4080/as2", MessageIDDomain: "gw.example"}, nil
}

// newActionsFixture is the API with the real actions of a send worker, over a real SQLite
// store.
func newActionsFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	payloads, err := payload.OpenDir(filepath.Join(dir, "payloads"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := outbound.New(outbound.Config{Store: st, Payloads: payloads, Partners: offline{}, Owner: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	a := New(Config{Store: st, Tokens: []string{token}, Actions: outbound.NewActions(w, offline{})})
	f := &fixture{store: st, srv: httptest.NewServer(a.Handler())}
	t.Cleanup(f.srv.Close)
	return f
}

var seq atomic.Int64

// row stores an outbound message to PARTNERX in state, packed once.
func (f *fixture) row(t *testing.T, state string) int64 {
	t.Helper()
	m := &store.Message{
		Direction: store.Outbound, Kind: store.KindMessage, MessageID: fmt.Sprintf("<%d@gw.example>", seq.Add(1)),
		Station: "GW", Partner: "PARTNERX", Subject: "po", Tag: "batch-1", State: state, URL: "http://127.0.0.1:1/as2",
		Files: []store.File{{Name: "po.edi", ContentType: "application/edi-x12", Size: 3, SHA256: strings.Repeat("b", 64)}},
		Wire:  strings.Repeat("c", 64), WireHeader: http.Header{"Message-Id": {"<x>"}}, MIC: "abc=, sha-256",
		NextAttemptAt: time.Now().Add(time.Hour),
	}
	if state == store.StateSending {
		m.LeaseOwner, m.LeaseUntil, m.ClaimedFrom = "node-b", time.Now().Add(time.Hour), store.StateQueued
	}
	if err := f.store.CreateMessage(t.Context(), m, nil); err != nil {
		t.Fatal(err)
	}
	return m.ID
}

func (f *fixture) messageID(t *testing.T, id int64) string {
	t.Helper()
	m, err := f.store.GetMessage(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m.MessageID
}

func TestActions(t *testing.T) {
	t.Parallel()
	f := newActionsFixture(t)
	in := &store.Message{Direction: store.Inbound, MessageID: "<in@partner>", Station: "GW", Partner: "PARTNERX", State: store.StateReceived}
	if err := f.store.CreateMessage(t.Context(), in, nil); err != nil {
		t.Fatal(err)
	}
	path := func(id int64, action string) string { return fmt.Sprintf("/api/v1/messages/%d/%s", id, action) }
	tests := []struct {
		name   string
		state  string // the row the action runs on; "" for the inbound message
		action string
		body   string
		status int
		check  func(t *testing.T, id int64, old string, out map[string]any)
	}{
		{name: "send now", state: store.StateQueued, action: "retry-now", status: 200,
			check: func(t *testing.T, id int64, old string, out map[string]any) {
				due, _ := time.Parse(time.RFC3339Nano, out["next_attempt_at"].(string))
				if out["state"] != "queued" || out["message_id"] != old || time.Since(due) > time.Minute || time.Until(due) > 0 {
					t.Errorf("answer %v, want queued, due now, same Message-ID", out)
				}
			}},
		{name: "send now while waiting for the MDN", state: store.StateAwaitingMDN, action: "retry-now", status: 200},
		{name: "stop", state: store.StateQueued, action: "stop", status: 200,
			check: func(t *testing.T, id int64, old string, out map[string]any) {
				if out["state"] != "failed" || out["last_error"] != "stopped by operator" || len(out["attempts"].([]any)) != 0 {
					t.Errorf("answer %v, want failed, stopped by operator, no attempt", out)
				}
			}},
		{name: "new Message-ID", state: store.StateQueued, action: "refresh-message-id", status: 200,
			check: func(t *testing.T, id int64, old string, out map[string]any) {
				if mid := out["message_id"].(string); mid == old || !strings.HasSuffix(mid, "@gw.example>") || out["mic"] != nil {
					t.Errorf("answer %v, want a new Message-ID under gw.example and no MIC", out)
				}
			}},
		{name: "retry", state: store.StateFailed, action: "retry", status: 200,
			check: func(t *testing.T, id int64, old string, out map[string]any) {
				if out["state"] != "queued" || out["message_id"] != old || out["mic"] != "abc=, sha-256" {
					t.Errorf("answer %v, want queued with the same Message-ID and bytes", out)
				}
			}},
		{name: "retry with a new Message-ID", state: store.StateFailed, action: "retry", body: `{"new_message_id": true}`, status: 200,
			check: func(t *testing.T, id int64, old string, out map[string]any) {
				if out["state"] != "queued" || out["message_id"] == old {
					t.Errorf("answer %v, want queued with a new Message-ID", out)
				}
			}},
		{name: "retry, explicitly the same Message-ID", state: store.StateFailed, action: "retry", body: `{"new_message_id": false}`, status: 200},
		{name: "replay", state: store.StateSent, action: "replay", status: 200,
			check: func(t *testing.T, id int64, old string, out map[string]any) {
				if out["state"] != "queued" || out["message_id"] != old || out["mic"] != "abc=, sha-256" {
					t.Errorf("answer %v, want queued with the same Message-ID and bytes", out)
				}
			}},
		{name: "resend", state: store.StateSent, action: "resend", status: 202,
			check: func(t *testing.T, id int64, old string, out map[string]any) {
				if int64(out["id"].(float64)) == id || out["message_id"] == old || out["state"] != "queued" ||
					out["tag"] != "batch-1" || len(out["files"].([]any)) != 1 {
					t.Errorf("answer %v, want a new queued message with the tag and file", out)
				}
			}},
		{name: "retry a sent message", state: store.StateSent, action: "retry", status: 409},
		{name: "stop a failed message", state: store.StateFailed, action: "stop", status: 409},
		{name: "replay a queued message", state: store.StateQueued, action: "replay", status: 409},
		{name: "resend a failed message", state: store.StateFailed, action: "resend", status: 409},
		{name: "send now a message being sent", state: store.StateSending, action: "retry-now", status: 409},
		{name: "new Message-ID while sending", state: store.StateSending, action: "refresh-message-id", status: 409},
		{name: "stop an inbound message", action: "stop", status: 409},
		{name: "retry, bad JSON", state: store.StateFailed, action: "retry", body: `{"new_message_id":`, status: 400},
		{name: "retry, unknown field", state: store.StateFailed, action: "retry", body: `{"new_id": true}`, status: 400},
		{name: "stop with a body", state: store.StateQueued, action: "stop", body: `{"reason": "x"}`, status: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := in.ID
			if tc.state != "" {
				id = f.row(t, tc.state)
			}
			old := f.messageID(t, id)
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			code, out := f.do(t, "POST", path(id, tc.action), token, body, "application/json")
			if code != tc.status {
				t.Fatalf("%d %v, want %d", code, out, tc.status)
			}
			if code >= 400 {
				msg, _ := out["error"].(string)
				if msg == "" {
					t.Fatalf("error answer without an error: %v", out)
				}
				if code == 409 && !strings.Contains(msg, fmt.Sprint(id)) {
					t.Errorf("conflict %q does not name message %d", msg, id)
				}
				if now := f.messageID(t, id); now != old {
					t.Errorf("a refused action changed the Message-ID")
				}
				return
			}
			if tc.status == 200 && int64(out["id"].(float64)) != id {
				t.Errorf("answer is about message %v, want %d", out["id"], id)
			}
			if tc.check != nil {
				tc.check(t, id, old, out)
			}
		})
	}
}

func TestActionErrors(t *testing.T) {
	t.Parallel()
	f := newActionsFixture(t)
	queued := f.row(t, store.StateQueued)
	tests := []struct {
		name, method, path, token string
		status                    int
		says                      string
	}{
		{"wrong token", "POST", fmt.Sprintf("/api/v1/messages/%d/stop", queued), "nope", 401, "bearer token"},
		{"no token on delete", "DELETE", fmt.Sprintf("/api/v1/messages/%d", queued), "", 401, "bearer token"},
		{"wrong token on bulk delete", "POST", "/api/v1/messages/delete", "nope", 401, "bearer token"},
		{"no such message", "POST", "/api/v1/messages/999999/retry-now", token, 404, "999999"},
		{"no such message to delete", "DELETE", "/api/v1/messages/999999", token, 404, "999999"},
		{"bad id", "POST", "/api/v1/messages/abc/retry", token, 400, "abc"},
		{"negative id", "DELETE", "/api/v1/messages/-4", token, 400, "-4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := f.do(t, tc.method, tc.path, tc.token, nil, "")
			msg, _ := out["error"].(string)
			if code != tc.status || !strings.Contains(msg, tc.says) {
				t.Fatalf("%d %q, want %d mentioning %q", code, msg, tc.status, tc.says)
			}
		})
	}
	if m := f.messageID(t, queued); m == "" {
		t.Fatal("the refused requests touched the message")
	}

	// Without actions configured, the routes say so.
	plain := newFixture(t)
	if code, out := plain.do(t, "POST", "/api/v1/messages/1/stop", token, nil, ""); code != http.StatusNotImplemented {
		t.Errorf("stop without actions: %d %v", code, out)
	}
}

func TestDelete(t *testing.T) {
	t.Parallel()
	f := newActionsFixture(t)
	sent, sending := f.row(t, store.StateSent), f.row(t, store.StateSending)

	code, out := f.do(t, "DELETE", fmt.Sprintf("/api/v1/messages/%d", sending), token, nil, "")
	if msg, _ := out["error"].(string); code != http.StatusConflict || !strings.Contains(msg, "being sent") {
		t.Fatalf("delete while sending: %d %v", code, out)
	}
	code, out = f.do(t, "DELETE", fmt.Sprintf("/api/v1/messages/%d", sent), token, nil, "")
	if code != http.StatusOK || fmt.Sprint(out["deleted"]) != fmt.Sprintf("[%d]", sent) {
		t.Fatalf("delete: %d %v", code, out)
	}
	if _, err := f.store.GetMessage(t.Context(), sent); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if code, out = f.do(t, "GET", fmt.Sprintf("/api/v1/messages/%d", sent), token, nil, ""); code != http.StatusNotFound {
		t.Fatalf("get after delete: %d %v", code, out)
	}
}

func TestBulkDelete(t *testing.T) {
	t.Parallel()
	f := newActionsFixture(t)
	failed, queued, sending := f.row(t, store.StateFailed), f.row(t, store.StateQueued), f.row(t, store.StateSending)
	body := fmt.Sprintf(`{"ids": [%d, %d, %d, 999999, %d]}`, failed, sending, queued, failed)
	code, out := f.do(t, "POST", "/api/v1/messages/delete", token, strings.NewReader(body), "application/json")
	if code != http.StatusOK {
		t.Fatalf("bulk delete: %d %v", code, out)
	}
	if got, want := fmt.Sprint(out["deleted"]), fmt.Sprintf("[%d %d]", failed, queued); got != want {
		t.Errorf("deleted %s, want %s", got, want)
	}
	refused, _ := out["refused"].([]any)
	want := []struct {
		id     int64
		status int
		says   string
	}{{sending, 409, "being sent"}, {999999, 404, "no message 999999"}, {failed, 404, fmt.Sprintf("no message %d", failed)}}
	if len(refused) != len(want) {
		t.Fatalf("refused %v, want %d entries", refused, len(want))
	}
	for i, w := range want {
		r := refused[i].(map[string]any)
		if int64(r["id"].(float64)) != w.id || int(r["status"].(float64)) != w.status || !strings.Contains(r["error"].(string), w.says) {
			t.Errorf("refusal %d = %v, want id %d, status %d, saying %q", i, r, w.id, w.status, w.says)
		}
	}
	if _, err := f.store.GetMessage(t.Context(), sending); err != nil {
		t.Errorf("the message being sent was deleted: %v", err)
	}

	for _, tc := range []struct{ name, body, says string }{
		{"no body", "", "ids"},
		{"bad JSON", `{"ids": [1,`, "JSON"},
		{"no ids", `{"ids": []}`, "no message"},
		{"not numbers", `{"ids": ["a"]}`, "JSON"},
		{"unknown field", `{"id": [1]}`, "id"},
		{"too many", `{"ids": [` + strings.Repeat("1,", maxBulkDelete) + `1]}`, "at most"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := f.do(t, "POST", "/api/v1/messages/delete", token, strings.NewReader(tc.body), "application/json")
			msg, _ := out["error"].(string)
			if code != http.StatusBadRequest || !strings.Contains(msg, tc.says) {
				t.Fatalf("%d %q, want 400 mentioning %q", code, msg, tc.says)
			}
		})
	}
}
