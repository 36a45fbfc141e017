package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/internal/inbound"
	"github.com/as2gate/as2gate/internal/payload"
	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/sqlite"
)

// inboxAgreement receives from PARTNERX at GW without requirements, into one inbox.
type inboxAgreement struct{ inbox string }

func (a inboxAgreement) Agreement(_ context.Context, station, partner string) (*inbound.Agreement, error) {
	if station != "GW" || partner != "PARTNERX" {
		return nil, fmt.Errorf("no agreement between %s and %s", station, partner)
	}
	return &inbound.Agreement{Station: station, Partner: partner, Inbox: a.inbox}, nil
}

// TestReceivedActions runs the routes on received messages against the inbound backend over
// a real store; its address policy refuses private addresses, as in production.
func TestReceivedActions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	payloads, err := payload.OpenDir(filepath.Join(dir, "payloads"))
	if err != nil {
		t.Fatal(err)
	}
	inbox := filepath.Join(dir, "inbox")
	b, err := inbound.New(inbound.Config{Store: st, Payloads: payloads, Agreements: inboxAgreement{inbox}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Config{Store: st, Tokens: []string{token}, Received: b}).Handler())
	t.Cleanup(srv.Close)
	f := &fixture{store: st, srv: srv}

	// A plain message, kept as it came; a first configuration suspended it.
	msg, err := as2.Pack([]as2.Payload{{Filename: "invoice.xml", ContentType: "application/xml", Body: strings.NewReader("<invoice/>")}},
		&as2.PackOptions{From: "PARTNERX", To: "GW", MDN: as2.MDNRequest{Mode: as2.MDNAsync, URL: "http://127.0.0.1:1/mdn"}})
	if err != nil {
		t.Fatal(err)
	}
	defer msg.Close()
	wire, _, err := payloads.Put(ctx, msg.Body.Open())
	if err != nil {
		t.Fatal(err)
	}
	mdnKey, _, err := payloads.Put(ctx, strings.NewReader("the MDN"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	inboundRow := func(state string, withMDN bool) int64 {
		n++
		m := &store.Message{Direction: store.Inbound, Kind: store.KindMessage, MessageID: fmt.Sprintf("<%d@partnerx>", n),
			Station: "GW", Partner: "PARTNERX", State: state, Wire: wire, WireHeader: msg.Header, MDNMode: "async"}
		if state == store.StateSuspended {
			m.LastCode, m.LastError = as2.DescInsufficientSecurity, "the agreement with PARTNERX requires messages to be signed"
		} else {
			m.Files = []store.File{{Name: "invoice.xml", ContentType: "application/xml", Size: 10, SHA256: wire}}
		}
		if withMDN {
			m.MDN = &store.MDN{Disposition: "automatic-action/MDN-sent-automatically; processed", Positive: true,
				MessageID: fmt.Sprintf("<mdn-%d@gw>", n), Header: "Content-Type: text/plain\r\n", Key: mdnKey, At: time.Now()}
		}
		if err := st.CreateInbound(ctx, m, nil, nil, time.Time{}); err != nil {
			t.Fatal(err)
		}
		return m.ID
	}
	out := &store.Message{Direction: store.Outbound, Kind: store.KindMessage, MessageID: "<out@gw>", Station: "GW",
		Partner: "PARTNERX", State: store.StateSent}
	if err := st.CreateMessage(ctx, out, nil); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		id     func() int64
		action string
		body   string
		status int
		errHas string // a 4xx answer's error must say this
		check  func(t *testing.T, out map[string]any)
	}{
		{name: "reprocess a suspended message", id: func() int64 { return inboundRow(store.StateSuspended, true) }, action: "reprocess", status: 200,
			check: func(t *testing.T, out map[string]any) {
				if out["state"] != "received" || len(out["files"].([]any)) != 1 || out["last_error"] != nil {
					t.Errorf("answer %v, want received with one file", out)
				}
			}},
		{name: "reprocess an outbound message", id: func() int64 { return out.ID }, action: "reprocess", status: 409},
		{name: "redeliver", id: func() int64 { return inboundRow(store.StateReceived, true) }, action: "redeliver", status: 200},
		{name: "redeliver a suspended message", id: func() int64 { return inboundRow(store.StateSuspended, true) }, action: "redeliver", status: 409,
			errHas: "reprocess it first"},
		{name: "resend the MDN to a public address", id: func() int64 { return inboundRow(store.StateReceived, true) }, action: "resend-mdn",
			body: `{"url": "https://192.0.2.10/as2/mdn"}`, status: 202,
			check: func(t *testing.T, out map[string]any) {
				if out["direction"] != "out" || out["state"] != "queued" || !strings.HasPrefix(out["message_id"].(string), "<mdn-") {
					t.Errorf("answer %v, want the queued MDN row", out)
				}
			}},
		{name: "resend the MDN to a private address", id: func() int64 { return inboundRow(store.StateReceived, true) }, action: "resend-mdn",
			body: `{"url": "http://10.0.0.7/mdn"}`, status: 400, errHas: "allow_private_mdn_urls"},
		{name: "resend the MDN to its private Receipt-Delivery-Option", id: func() int64 { return inboundRow(store.StateReceived, true) },
			action: "resend-mdn", status: 409, errHas: "Receipt-Delivery-Option"},
		{name: "resend an MDN never made", id: func() int64 { return inboundRow(store.StateReceived, false) }, action: "resend-mdn",
			body: `{"url": "https://192.0.2.10/as2/mdn"}`, status: 409, errHas: "no stored MDN"},
		{name: "resend the MDN, unknown field", id: func() int64 { return inboundRow(store.StateReceived, true) }, action: "resend-mdn",
			body: `{"address": "https://192.0.2.10/"}`, status: 400},
		{name: "reprocess with a body", id: func() int64 { return inboundRow(store.StateSuspended, true) }, action: "reprocess",
			body: `{"force": true}`, status: 400},
		{name: "reprocess no message", id: func() int64 { return 999999 }, action: "reprocess", status: 404},
		{name: "redeliver no message", id: func() int64 { return 999999 }, action: "redeliver", status: 404},
		{name: "resend-mdn no message", id: func() int64 { return 999999 }, action: "resend-mdn", status: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := tc.id()
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			code, got := f.do(t, "POST", fmt.Sprintf("/api/v1/messages/%d/%s", id, tc.action), token, body, "application/json")
			if code != tc.status {
				t.Fatalf("%d %v, want %d", code, got, tc.status)
			}
			if code >= 400 {
				msg, _ := got["error"].(string)
				if msg == "" {
					t.Fatalf("error answer without an error: %v", got)
				}
				if code == 409 && !strings.Contains(msg, fmt.Sprint(id)) && !strings.Contains(msg, "PARTNERX") {
					t.Errorf("conflict %q names neither the message nor the partner", msg)
				}
				if !strings.Contains(msg, tc.errHas) {
					t.Errorf("error %q does not say %q", msg, tc.errHas)
				}
				return
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
	entries, err := os.ReadDir(inbox)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Name() != "invoice (2).xml" || entries[1].Name() != "invoice.xml" {
		t.Fatalf("the inbox holds %v, want the reprocessed and the redelivered copy", entries)
	}
}

// TestReceivedActionsUnavailable: without the inbound backend the routes answer 501.
func TestReceivedActionsUnavailable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, action := range []string{"reprocess", "redeliver", "resend-mdn"} {
		if code, out := f.do(t, "POST", "/api/v1/messages/1/"+action, token, nil, ""); code != http.StatusNotImplemented {
			t.Errorf("%s: %d %v, want 501", action, code, out)
		}
	}
}
