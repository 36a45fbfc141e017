package inbound

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/cms/cmstest"
	"github.com/as2gate/as2gate/internal/payload"
	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/sqlite"
)

// changingAgreement is an agreement the test edits between arrival and reprocess, as an
// operator edits the configuration.
type changingAgreement struct {
	mu sync.Mutex
	ag Agreement
}

func (c *changingAgreement) Agreement(_ context.Context, station, partner string) (*Agreement, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if station != c.ag.Station || partner != c.ag.Partner {
		return nil, errors.New("no agreement")
	}
	ag := c.ag
	return &ag, nil
}

func (c *changingAgreement) set(f func(*Agreement)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(&c.ag)
}

// actionsRig is a backend over a real sqlite store and payload folder, fed through the real
// AS2 handler.
type actionsRig struct {
	st      store.Store
	ps      payload.Store
	ag      *changingAgreement
	b       *Backend
	partner *cmstest.Identity
	inbox   string
	woken   int
}

func newActionsRig(t *testing.T) *actionsRig {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ps, err := payload.OpenDir(filepath.Join(dir, "payloads"))
	if err != nil {
		t.Fatal(err)
	}
	r := &actionsRig{st: st, ps: ps, partner: cmstest.New(t, "PX", nil), inbox: filepath.Join(dir, "inbox")}
	// The partner's certificate is missing: its signed messages are suspended on arrival.
	r.ag = &changingAgreement{ag: Agreement{Station: "GW", Partner: "PX", RequireSigned: true, Inbox: r.inbox}}
	r.b = r.backend(t, true)
	return r
}

func (r *actionsRig) backend(t *testing.T, allowPrivate bool) *Backend {
	t.Helper()
	b, err := New(Config{Store: r.st, Payloads: r.ps, Agreements: r.ag, AllowPrivateMDNURLs: allowPrivate,
		Wake: func() { r.woken++ }})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// receive packs a signed message from the partner and posts it to the AS2 handler; it
// returns the stored row.
func (r *actionsRig) receive(t *testing.T, mdn as2.MDNRequest) *store.Message {
	t.Helper()
	msg, err := as2.Pack([]as2.Payload{{Filename: "orders.edi", ContentType: "application/edifact", Body: strings.NewReader("UNB+UNOA:1+PX+GW'")}},
		&as2.PackOptions{From: "PX", To: "GW", Sign: as2.MICAlgSHA256, Certificate: r.partner.Certificate, Key: r.partner.Key, MDN: mdn})
	if err != nil {
		t.Fatal(err)
	}
	defer msg.Close()
	req := httptest.NewRequest(http.MethodPost, "/as2", msg.Body.Open())
	req.Header = msg.Header.Clone()
	rec := httptest.NewRecorder()
	(&as2.Handler{Backend: r.b}).ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("posting the message: %d %s", rec.Code, rec.Body)
	}
	m, err := r.st.FindByMessageID(context.Background(), store.Inbound, msg.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (r *actionsRig) mdnRows(t *testing.T) []*store.Message {
	t.Helper()
	ms, err := r.st.ListMessages(context.Background(), store.Filter{Direction: store.Outbound})
	if err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(ms, func(m *store.Message) bool { return m.Kind != store.KindMDN })
}

func (r *actionsRig) inboxNames(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(r.inbox)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestReprocess: a message suspended because the partner's certificate was missing stays
// suspended, with the new reason, while the agreement still refuses it, and becomes received
// and delivered once the agreement accepts it; no MDN is sent by either.
func TestReprocess(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newActionsRig(t)
	m := r.receive(t, as2.MDNRequest{Mode: as2.MDNSync})
	if m.State != store.StateSuspended || m.LastCode != as2.DescAuthenticationFailed {
		t.Fatalf("on arrival: %s %q %q, want suspended for %s", m.State, m.LastCode, m.LastError, as2.DescAuthenticationFailed)
	}
	if _, err := r.b.DeliverAgain(ctx, m.ID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delivering a suspended message: %v, want a conflict", err)
	}

	// The certificate is now trusted, but the agreement has since come to require encryption.
	r.ag.set(func(a *Agreement) {
		a.Unpack.Trusted = []*x509.Certificate{r.partner.Certificate}
		a.RequireEncrypted = true
	})
	got, err := r.b.Reprocess(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StateSuspended || got.LastCode != as2.DescInsufficientSecurity || !strings.Contains(got.LastError, "encrypted") {
		t.Fatalf("reprocessed under an agreement requiring encryption: %s %q %q", got.State, got.LastCode, got.LastError)
	}
	if len(got.Files) != 0 || len(r.inboxNames(t)) != 0 {
		t.Fatalf("a suspended message has files %v and the inbox holds %v", got.Files, r.inboxNames(t))
	}

	r.ag.set(func(a *Agreement) { a.RequireEncrypted = false })
	got, err = r.b.Reprocess(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StateReceived || got.LastError != "" || got.DeliveredAt.IsZero() || got.MIC == "" {
		t.Fatalf("reprocessed under an agreement that accepts it: %+v", got)
	}
	if len(got.Files) != 1 || got.Files[0].Name != "orders.edi" {
		t.Fatalf("files %+v", got.Files)
	}
	data, err := os.ReadFile(filepath.Join(r.inbox, "orders.edi"))
	if err != nil || string(data) != "UNB+UNOA:1+PX+GW'" {
		t.Fatalf("the inbox holds %q (%v)", data, err)
	}
	if rows := r.mdnRows(t); len(rows) != 0 {
		t.Fatalf("reprocess queued %d MDN rows", len(rows))
	}
	if got.MDN == nil || got.MDN.Key != m.MDN.Key {
		t.Fatalf("the stored MDN changed: %+v, was %+v", got.MDN, m.MDN)
	}
	events, err := r.st.Timeline(ctx, store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	reprocessed := 0
	for _, ev := range events {
		if ev.Type == "reprocessed" && ev.MessageRow == m.ID {
			reprocessed++
		}
	}
	if reprocessed != 2 {
		t.Fatalf("%d reprocessed events on the timeline, want 2", reprocessed)
	}

	// Delivered again, the file gets a second name: the first copy is never overwritten.
	if _, err := r.b.DeliverAgain(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if names := r.inboxNames(t); !slices.Equal(names, []string{"orders (2).edi", "orders.edi"}) {
		t.Fatalf("the inbox holds %v", names)
	}
}

// TestActionsRefused: the actions on received messages refuse what they cannot do.
func TestActionsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newActionsRig(t)
	r.ag.set(func(a *Agreement) { a.Unpack.Trusted = []*x509.Certificate{r.partner.Certificate} })
	noMDN := r.receive(t, as2.MDNRequest{})
	out := &store.Message{Direction: store.Outbound, Kind: store.KindMessage, MessageID: "<out@test>", Station: "GW",
		Partner: "PX", State: store.StateQueued}
	if err := r.st.CreateMessage(ctx, out, nil); err != nil {
		t.Fatal(err)
	}
	actions := map[string]func(id int64) error{
		"reprocess":  func(id int64) error { _, err := r.b.Reprocess(ctx, id); return err },
		"redeliver":  func(id int64) error { _, err := r.b.DeliverAgain(ctx, id); return err },
		"resend-mdn": func(id int64) error { _, err := r.b.ResendMDN(ctx, id, "http://127.0.0.1:1/mdn"); return err },
	}
	for name, do := range actions {
		if err := do(out.ID); !errors.Is(err, store.ErrConflict) {
			t.Errorf("%s of an outbound message: %v, want a conflict", name, err)
		}
		if err := do(out.ID + 1000); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s of no message: %v, want not found", name, err)
		}
	}
	if err := actions["resend-mdn"](noMDN.ID); !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "no stored MDN") {
		t.Errorf("resend-mdn of a message without an MDN: %v, want a conflict", err)
	}
	r.ag.set(func(a *Agreement) { a.Partner = "SOMEONE-ELSE" })
	if err := actions["reprocess"](noMDN.ID); !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "no agreement") {
		t.Errorf("reprocess without an agreement: %v, want a conflict naming it", err)
	}
}

// TestResendMDN: the stored MDN is queued again, byte for byte, to the message's
// Receipt-Delivery-Option or to the address given, which must pass the address policy.
func TestResendMDN(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newActionsRig(t)
	r.ag.set(func(a *Agreement) { a.Unpack.Trusted = []*x509.Certificate{r.partner.Certificate} })
	partnerMDNs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer partnerMDNs.Close()
	original := partnerMDNs.URL + "/original"
	async := r.receive(t, as2.MDNRequest{Mode: as2.MDNAsync, URL: original})
	sync := r.receive(t, as2.MDNRequest{Mode: as2.MDNSync})
	strict := r.backend(t, false)

	tests := []struct {
		name    string
		b       *Backend
		m       *store.Message
		url     string
		wantURL string
		wantErr func(error) bool
	}{
		{name: "to the Receipt-Delivery-Option", b: r.b, m: async, wantURL: original},
		{name: "to another address", b: r.b, m: async, url: partnerMDNs.URL + "/other", wantURL: partnerMDNs.URL + "/other"},
		{name: "a synchronous MDN to an address", b: r.b, m: sync, url: partnerMDNs.URL + "/sync", wantURL: partnerMDNs.URL + "/sync"},
		{name: "a synchronous MDN without an address", b: r.b, m: sync,
			wantErr: func(err error) bool {
				return errors.Is(err, store.ErrConflict) && strings.Contains(err.Error(), "synchronous")
			}},
		{name: "a private address the policy refuses", b: strict, m: async, url: partnerMDNs.URL + "/other",
			wantErr: func(err error) bool {
				var ue *MDNURLError
				return errors.As(err, &ue) && strings.Contains(err.Error(), "allow_private_mdn_urls")
			}},
		{name: "a private Receipt-Delivery-Option the policy refuses", b: strict, m: async,
			wantErr: func(err error) bool {
				return errors.Is(err, store.ErrConflict) && strings.Contains(err.Error(), "Receipt-Delivery-Option")
			}},
		{name: "not a URL", b: r.b, m: async, url: "ftp://127.0.0.1/mdn",
			wantErr: func(err error) bool { var ue *MDNURLError; return errors.As(err, &ue) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, woken := len(r.mdnRows(t)), r.woken
			job, err := tt.b.ResendMDN(ctx, tt.m.ID, tt.url)
			if tt.wantErr != nil {
				if err == nil || !tt.wantErr(err) {
					t.Fatalf("err %v", err)
				}
				if n := len(r.mdnRows(t)); n != before {
					t.Fatalf("a refused resend queued a row: %d rows, %d before", n, before)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			stored, err := r.st.GetMessage(ctx, job.ID)
			if err != nil {
				t.Fatal(err)
			}
			if stored.Kind != store.KindMDN || stored.State != store.StateQueued || stored.URL != tt.wantURL ||
				stored.Wire != tt.m.MDN.Key || stored.RelatedID != tt.m.ID || stored.MessageID != tt.m.MDN.MessageID {
				t.Fatalf("queued %+v for MDN %+v", stored, tt.m.MDN)
			}
			if r.woken != woken+1 {
				t.Fatal("the sender was not woken for the queued MDN")
			}
			if stored.WireHeader.Get("Content-Type") == "" {
				t.Fatalf("the queued MDN has no Content-Type: %v", stored.WireHeader)
			}
		})
	}
}
