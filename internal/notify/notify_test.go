package notify

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

func eventWithID(id int64) Event {
	ev := failedEvent()
	ev.ID = id
	return ev
}

func idOf(t testing.TB, r hookRequest) int64 {
	t.Helper()
	var ev Event
	if err := json.Unmarshal(r.body, &ev); err != nil {
		t.Fatalf("webhook body: %v", err)
	}
	return ev.ID
}

func TestNotifyDeliversInBackground(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	n, _, _ := newWebhookNotifier(t, h, RetryPolicy{})
	n.Notify(t.Context(), eventWithID(7))
	if got := idOf(t, <-h.got); got != 7 {
		t.Errorf("delivered message %d, want 7", got)
	}
	if err := n.Close(t.Context()); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func TestCloseDrainsTheQueue(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	h := newHook(t, func(w http.ResponseWriter) {
		<-release // holds the single worker while the others queue up
		w.WriteHeader(http.StatusOK)
	})
	c := newClock()
	n, err := New(Config{Webhook: h.config(), Workers: 1, Now: c.Now, Sleep: c.Sleep}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for id := range int64(5) {
		n.Notify(t.Context(), eventWithID(id+1))
	}
	close(release)
	if err := n.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	reqs := h.requests()
	if len(reqs) != 5 {
		t.Fatalf("%d notifications delivered before Close returned, want 5", len(reqs))
	}
	for i, r := range reqs {
		if got := idOf(t, r); got != int64(i+1) {
			t.Errorf("notification %d is about message %d: the queue is not in order", i+1, got)
		}
	}
	if n.Dropped() != 0 {
		t.Errorf("Dropped = %d", n.Dropped())
	}
}

func TestNotifyDropsLoudly(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	h := newHook(t, func(w http.ResponseWriter) {
		started <- struct{}{}
		<-release
		w.WriteHeader(http.StatusOK)
	})
	log, buf := newLog()
	c := newClock()
	n, err := New(Config{Webhook: h.config(), Workers: 1, QueueSize: 1, Now: c.Now, Sleep: c.Sleep}, log)
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(t.Context(), eventWithID(1))
	<-started                             // the worker holds 1
	n.Notify(t.Context(), eventWithID(2)) // waits in the queue
	n.Notify(t.Context(), eventWithID(3)) // no room
	if n.Dropped() != 1 {
		t.Errorf("Dropped = %d after overfilling the queue, want 1", n.Dropped())
	}
	close(release)
	if err := n.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	n.Notify(t.Context(), eventWithID(4))
	if n.Dropped() != 2 {
		t.Errorf("Dropped = %d after a Notify on a closed notifier, want 2", n.Dropped())
	}

	var ids []int64
	for _, r := range h.requests() {
		ids = append(ids, idOf(t, r))
	}
	if len(ids) != 2 || ids[0] != 1 || ids[1] != 2 {
		t.Errorf("delivered messages %v, want [1 2]", ids)
	}
	drops := buf.records(t, "notify: notification dropped")
	if len(drops) != 2 {
		t.Fatalf("%d drops logged, want 2:\n%s", len(drops), buf)
	}
	for i, want := range []struct {
		id     float64
		reason string
	}{{3, "the queue is full"}, {4, "the notifier is closed"}} {
		d := drops[i]
		// The log line carries everything the notification would have said.
		if d["level"] != "ERROR" || d["id"] != want.id || d["reason"] != want.reason ||
			d["message_id"] != failedEvent().MessageID || d["partner"] != "PARTNERX" ||
			d["code"] != "http_503" || d["action"] != failedEvent().Action {
			t.Errorf("drop %d logged as %v", i+1, d)
		}
	}
}

func TestCloseGivesUpWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	h := newHook(t, status(http.StatusServiceUnavailable))
	log, buf := newLog()
	// The wait between attempts lasts until the notifier stops: only Close ends it.
	wait := func(ctx context.Context, _ time.Duration) error {
		<-ctx.Done()
		return context.Cause(ctx)
	}
	n, err := New(Config{Webhook: h.config(), Workers: 1, Sleep: wait}, log)
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(t.Context(), eventWithID(1))
	n.Notify(t.Context(), eventWithID(2))
	<-h.got // 1 failed once and waits

	ctx, cancel := context.WithCancelCause(t.Context())
	stop := errors.New("shutdown deadline")
	cancel(stop)
	if err := n.Close(ctx); !errors.Is(err, stop) {
		t.Errorf("Close = %v, want the cause of its context", err)
	}
	<-n.done // the worker reports what it could not deliver as it stops

	if got := len(h.requests()); got != 1 {
		t.Errorf("receiver got %d requests after Close gave up, want 1", got)
	}
	lost := buf.records(t, "notify: notification not delivered: stopping")
	if len(lost) != 2 || lost[0]["id"] != float64(1) || lost[1]["id"] != float64(2) || lost[0]["level"] != "ERROR" {
		t.Errorf("undelivered notifications logged as %v:\n%s", lost, buf)
	}
	if !strings.Contains(buf.String(), "shutdown deadline") {
		t.Errorf("the log does not say why delivery stopped:\n%s", buf)
	}
}

func TestDisabledNotifier(t *testing.T) {
	t.Parallel()
	n, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(t.Context(), failedEvent())
	if err := n.Deliver(t.Context(), failedEvent()); err != nil {
		t.Errorf("Deliver with no channel: %v", err)
	}
	if err := n.Close(t.Context()); err != nil {
		t.Errorf("Close: %v", err)
	}
	if n.Dropped() != 0 {
		t.Errorf("a notifier without channels counts %d drops", n.Dropped())
	}
}

func TestBothChannels(t *testing.T) {
	t.Parallel()
	ms := newMailServer(t, "", "")
	h := newHook(t, status(http.StatusInternalServerError), status(http.StatusOK))
	c := newClock()
	n, err := New(Config{Email: ms.config(t), Webhook: h.config(), Now: c.Now, Sleep: c.Sleep}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(t.Context())
	if err := n.Deliver(t.Context(), failedEvent()); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	// The webhook's retry does not send the email twice.
	if got := len(ms.mails()); got != 1 {
		t.Errorf("%d mails, want 1", got)
	}
	if got := len(h.requests()); got != 2 {
		t.Errorf("%d webhook requests, want 2", got)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	hook := func() *WebhookConfig { return &WebhookConfig{URL: "https://hooks.example.com/as2", Secret: testSecret} }
	tests := []struct {
		name    string
		cfg     Config
		mention string // "" for a valid config
	}{
		{"empty", Config{}, ""},
		{"webhook", Config{Webhook: hook()}, ""},
		{"negative queue", Config{QueueSize: -1}, "queue_size"},
		{"negative workers", Config{Workers: -1}, "workers"},
		{"negative attempts", Config{Retry: RetryPolicy{Attempts: -1}}, "retry.attempts"},
		{"max below initial", Config{Retry: RetryPolicy{Initial: time.Minute, Max: time.Second}}, "retry.max"},
		{"bad email", Config{Email: &EmailConfig{}}, "email.host"},
		{"webhook without scheme", Config{Webhook: &WebhookConfig{URL: "hooks.example.com/as2", Secret: testSecret}}, "webhook.url"},
		{"webhook ftp", Config{Webhook: &WebhookConfig{URL: "ftp://hooks.example.com/", Secret: testSecret}}, "webhook.url"},
		{"webhook short secret", Config{Webhook: &WebhookConfig{URL: "https://hooks.example.com/", Secret: "short"}}, "webhook.secret"},
		{"webhook negative timeout", Config{Webhook: &WebhookConfig{URL: "https://hooks.example.com/", Secret: testSecret, Timeout: -1}}, "webhook.timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.cfg.Validate()
			if tt.mention == "" {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("Validate = %v, want an error naming %q", err, tt.mention)
			}
			if _, err := New(tt.cfg, nil); err == nil {
				t.Error("New accepted the configuration")
			}
		})
	}
}

func TestMessageEvent(t *testing.T) {
	t.Parallel()
	m := &store.Message{
		ID: 42, Direction: store.Outbound, MessageID: "<a@b>", Station: "GATEWAY", Partner: "PARTNERX",
		Attempts: 3, LastCode: "http_500", LastError: "older",
	}
	last := &store.Attempt{Class: store.ClassPermanent, Code: "http_404", Error: "partner answered 404", Action: "Check the partner's URL."}
	got := MessageEvent(MessageFailed, m, last, t0)
	want := Event{
		Type: MessageFailed, At: t0, ID: 42, MessageID: "<a@b>", Partner: "PARTNERX", Station: "GATEWAY",
		Direction: "out", Class: "permanent", Code: "http_404", Error: "partner answered 404",
		Action: "Check the partner's URL.", Attempts: 3,
	}
	if got != want {
		t.Errorf("MessageEvent with an attempt:\n got %+v\nwant %+v", got, want)
	}

	in := &store.Message{ID: 9, Direction: store.Inbound, MessageID: "<c@d>", Partner: "PARTNERY",
		LastCode: "insufficient-message-security", LastError: "the message is not signed"}
	got = MessageEvent(MessageSuspended, in, nil, t0)
	if got.Code != "insufficient-message-security" || got.Error != "the message is not signed" || got.Class != "" || got.Direction != "in" {
		t.Errorf("MessageEvent of a suspended message: %+v", got)
	}
	if d := got.withDefaults(t0); !strings.Contains(d.Action, "re-process") {
		t.Errorf("default action of a suspended message: %q", d.Action)
	}
}

func TestSummary(t *testing.T) {
	t.Parallel()
	notAfter := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	cert := func(days int) *Certificate { return &Certificate{NotAfter: notAfter, DaysLeft: days} }
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"failed", failedEvent(), "message 42 to PARTNERX failed (http_503)"},
		{"failed without a row", Event{Type: MessageFailed, MessageID: "<x@y>", Partner: "P"}, "message <x@y> to P failed"},
		{"suspended", Event{Type: MessageSuspended, ID: 43, Partner: "PARTNERX", Code: "insufficient-message-security"},
			"message 43 from PARTNERX suspended (insufficient-message-security)"},
		{"certificate in 14 days", Event{Type: CertificateExpiring, Partner: "PARTNERX", Certificate: cert(14)},
			"certificate of PARTNERX expires in 14 days (2026-04-01)"},
		{"certificate in 1 day", Event{Type: CertificateExpiring, Partner: "GATEWAY", Certificate: cert(1)},
			"certificate of GATEWAY expires in 1 day (2026-04-01)"},
		{"certificate today", Event{Type: CertificateExpiring, Partner: "GATEWAY", Certificate: cert(0)},
			"certificate of GATEWAY expires within a day (2026-04-01)"},
		{"certificate expired", Event{Type: CertificateExpiring, Partner: "GATEWAY", Certificate: cert(-3)},
			"certificate of GATEWAY expired on 2026-04-01"},
		{"line breaks from a partner's header", Event{Type: MessageSuspended, ID: 1, Partner: "EVIL\r\nBcc: x@y", Code: "x"},
			"message 1 from EVIL  Bcc: x@y suspended (x)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.ev.summary(); got != tt.want {
				t.Errorf("summary = %q, want %q", got, tt.want)
			}
		})
	}
}
