package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const testSecret = "0123456789abcdef-webhook-secret"

// hook is a webhook receiver on loopback. It checks every request's signature by the
// documented scheme, computed here independently of Sign, and answers with the next of its
// scripted responses (the last one repeats).
type hook struct {
	t       testing.TB
	srv     *httptest.Server
	mu      sync.Mutex
	answers []func(http.ResponseWriter)
	reqs    []hookRequest
	got     chan hookRequest
}

type hookRequest struct {
	header http.Header
	body   []byte
	sigOK  bool
}

func status(code int, header ...string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, http.StatusText(code))
	}
}

func newHook(t testing.TB, answers ...func(http.ResponseWriter)) *hook {
	h := &hook{t: t, answers: answers, got: make(chan hookRequest, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		h.t.Errorf("webhook receiver: reading the body: %v", err)
	}
	mac := hmac.New(sha256.New, []byte(testSecret))
	mac.Write([]byte(r.Header.Get("X-As2gate-Timestamp") + "." + string(body)))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	req := hookRequest{header: r.Header.Clone(), body: body, sigOK: hmac.Equal([]byte(r.Header.Get("X-As2gate-Signature")), []byte(want))}

	h.mu.Lock()
	h.reqs = append(h.reqs, req)
	answer := status(http.StatusNoContent)
	if len(h.answers) > 0 {
		answer = h.answers[0]
		if len(h.answers) > 1 {
			h.answers = h.answers[1:]
		}
	}
	h.mu.Unlock()
	answer(w)
	h.got <- req
}

func (h *hook) requests() []hookRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookRequest(nil), h.reqs...)
}

func (h *hook) config() *WebhookConfig {
	return &WebhookConfig{URL: h.srv.URL + "/as2gate-events", Secret: testSecret}
}

func newWebhookNotifier(t testing.TB, h *hook, retry RetryPolicy) (*Notifier, *clock, *logBuffer) {
	t.Helper()
	c := newClock()
	log, buf := newLog()
	n, err := New(Config{
		Webhook: h.config(),
		Retry:   retry,
		Now:     c.Now,
		Sleep:   c.Sleep,
		Rand:    func() float64 { return 0.5 }, // the middle of the jitter band: exact waits
	}, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	return n, c, buf
}

func TestWebhookDelivers(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	n, _, buf := newWebhookNotifier(t, h, RetryPolicy{})
	if err := n.Deliver(t.Context(), failedEvent()); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	reqs := h.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if !r.sigOK {
		t.Errorf("X-As2gate-Signature %q does not match HMAC-SHA256(secret, timestamp.body)", r.header.Get("X-As2gate-Signature"))
	}
	if err := Verify([]byte(testSecret), r.header, r.body, t0, 5*time.Minute); err != nil {
		t.Errorf("Verify: %v", err)
	}
	for name, want := range map[string]string{
		"Content-Type":        "application/json",
		"X-As2gate-Event":     "message_failed",
		"X-As2gate-Timestamp": strconv.FormatInt(t0.Unix(), 10),
	} {
		if got := r.header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if d := r.header.Get("X-As2gate-Delivery"); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(d) {
		t.Errorf("X-As2gate-Delivery = %q, want 32 hex digits", d)
	}

	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, r.body)
	}
	ev := failedEvent()
	want := map[string]any{
		"event":      "message_failed",
		"at":         ev.At.Format(time.RFC3339),
		"id":         float64(42),
		"message_id": ev.MessageID,
		"partner":    "PARTNERX",
		"station":    "GATEWAY",
		"direction":  "out",
		"class":      "transient",
		"code":       "http_503",
		"error":      ev.Error,
		"action":     ev.Action,
		"attempts":   float64(10),
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("body[%q] = %#v, want %#v", k, body[k], v)
		}
	}
	if _, ok := body["certificate"]; ok {
		t.Errorf("a message event carries a certificate: %s", r.body)
	}

	delivered := buf.records(t, "notify: notification delivered")
	if len(delivered) != 1 || delivered[0]["attempt"] != float64(1) || delivered[0]["channel"] != "webhook" ||
		delivered[0]["message_id"] != ev.MessageID || delivered[0]["partner"] != "PARTNERX" {
		t.Errorf("log of the delivery: %v", delivered)
	}
}

func TestWebhookRetriesThenSucceeds(t *testing.T) {
	t.Parallel()
	h := newHook(t,
		status(http.StatusInternalServerError),
		status(http.StatusServiceUnavailable, "Retry-After", "120"),
		status(http.StatusOK))
	n, c, buf := newWebhookNotifier(t, h, RetryPolicy{})
	if err := n.Deliver(t.Context(), failedEvent()); err != nil {
		t.Fatalf("Deliver: %v", err)
	}

	// The first wait is the policy's 2s; the second honours Retry-After over the policy's 4s.
	if got, want := c.Waits(), []time.Duration{2 * time.Second, 120 * time.Second}; !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
	reqs := h.requests()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want 3", len(reqs))
	}
	wantTS := []time.Time{t0, t0.Add(2 * time.Second), t0.Add(122 * time.Second)}
	for i, r := range reqs {
		if !r.sigOK {
			t.Errorf("request %d: signature does not verify", i+1)
		}
		if got := r.header.Get("X-As2gate-Timestamp"); got != strconv.FormatInt(wantTS[i].Unix(), 10) {
			t.Errorf("request %d: timestamp %s, want the time of the attempt %d", i+1, got, wantTS[i].Unix())
		}
		if r.header.Get("X-As2gate-Delivery") != reqs[0].header.Get("X-As2gate-Delivery") {
			t.Errorf("request %d: delivery id changed across retries", i+1)
		}
		if string(r.body) != string(reqs[0].body) {
			t.Errorf("request %d: body changed across retries", i+1)
		}
	}

	failed := buf.records(t, "notify: notification attempt failed")
	if len(failed) != 2 {
		t.Fatalf("%d failed attempts logged, want 2:\n%s", len(failed), buf)
	}
	for i, rec := range failed {
		if rec["level"] != "WARN" || rec["attempt"] != float64(i+1) || rec["partner"] != "PARTNERX" ||
			rec["message_id"] != failedEvent().MessageID || !strings.Contains(rec["error"].(string), "answered 50") {
			t.Errorf("failed attempt %d logged as %v", i+1, rec)
		}
	}
	if d := buf.records(t, "notify: notification delivered"); len(d) != 1 || d[0]["attempt"] != float64(3) {
		t.Errorf("delivery logged as %v", d)
	}
}

func TestWebhookGivesUp(t *testing.T) {
	t.Parallel()
	h := newHook(t, status(http.StatusBadGateway))
	n, c, buf := newWebhookNotifier(t, h, RetryPolicy{Attempts: 4})
	err := n.Deliver(t.Context(), failedEvent())
	if err == nil {
		t.Fatal("Deliver succeeded against a receiver that always answers 502")
	}
	for _, want := range []string{"webhook", "message 42 to PARTNERX failed (http_503)", "given up after 4 attempts", "502"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if got := len(h.requests()); got != 4 {
		t.Errorf("receiver got %d requests, want 4", got)
	}
	if got, want := c.Waits(), []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second}; !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
	gaveUp := buf.records(t, "notify: notification given up")
	if len(gaveUp) != 1 {
		t.Fatalf("%d give-ups logged, want 1:\n%s", len(gaveUp), buf)
	}
	rec := gaveUp[0]
	if rec["level"] != "ERROR" || rec["attempt"] != float64(4) || rec["max_attempts"] != float64(4) ||
		rec["message_id"] != failedEvent().MessageID || rec["partner"] != "PARTNERX" || rec["id"] != float64(42) {
		t.Errorf("give-up logged as %v", rec)
	}
}

func TestWebhookAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		answer   func(http.ResponseWriter)
		attempts int    // requests the receiver sees with a policy of 3 attempts
		mention  string // in the error
	}{
		{"404 is not retried", status(http.StatusNotFound), 1, "404"},
		{"401 is not retried", status(http.StatusUnauthorized), 1, "401"},
		{"redirect is not followed", status(http.StatusFound, "Location", "/elsewhere"), 1, "Location: /elsewhere"},
		{"429 is retried", status(http.StatusTooManyRequests), 3, "429"},
		{"408 is retried", status(http.StatusRequestTimeout), 3, "408"},
		{"500 is retried", status(http.StatusInternalServerError), 3, "500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHook(t, tt.answer)
			n, _, _ := newWebhookNotifier(t, h, RetryPolicy{Attempts: 3})
			err := n.Deliver(t.Context(), failedEvent())
			if err == nil || !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("Deliver error = %v, want one mentioning %q", err, tt.mention)
			}
			if got := len(h.requests()); got != tt.attempts {
				t.Errorf("receiver got %d requests, want %d", got, tt.attempts)
			}
		})
	}
}

func TestWebhookUnreachable(t *testing.T) {
	t.Parallel()
	h := newHook(t)
	cfg := h.config()
	h.srv.Close() // nothing listens there any more: connection refused
	c := newClock()
	n, err := New(Config{Webhook: cfg, Retry: RetryPolicy{Attempts: 2}, Now: c.Now, Sleep: c.Sleep}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(t.Context())
	if err := n.Deliver(t.Context(), failedEvent()); err == nil || !strings.Contains(err.Error(), "given up after 2 attempts") {
		t.Errorf("Deliver error = %v, want a give-up after 2 attempts", err)
	}
	if len(c.Waits()) != 1 {
		t.Errorf("waits = %v, want one: a refused connection is retried", c.Waits())
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"event":"message_failed","id":42}`)
	signed := func() http.Header {
		h := http.Header{}
		h.Set("X-As2gate-Timestamp", strconv.FormatInt(t0.Unix(), 10))
		h.Set("X-As2gate-Signature", Sign([]byte(testSecret), t0, body))
		return h
	}
	tests := []struct {
		name   string
		header func() http.Header
		body   []byte
		secret string
		now    time.Time
		ok     bool
	}{
		{"signed now", signed, body, testSecret, t0, true},
		{"signed 4 minutes ago", signed, body, testSecret, t0.Add(4 * time.Minute), true},
		{"replayed 6 minutes later", signed, body, testSecret, t0.Add(6 * time.Minute), false},
		{"from 6 minutes in the future", signed, body, testSecret, t0.Add(-6 * time.Minute), false},
		{"body changed", signed, []byte(`{"event":"message_failed","id":43}`), testSecret, t0, false},
		{"other secret", signed, body, testSecret + "x", t0, false},
		{"timestamp changed", func() http.Header {
			h := signed()
			h.Set("X-As2gate-Timestamp", strconv.FormatInt(t0.Unix()+1, 10))
			return h
		}, body, testSecret, t0, false},
		{"no signature", func() http.Header {
			h := signed()
			h.Del("X-As2gate-Signature")
			return h
		}, body, testSecret, t0, false},
		{"no timestamp", func() http.Header {
			h := signed()
			h.Del("X-As2gate-Timestamp")
			return h
		}, body, testSecret, t0, false},
		{"signature not hex", func() http.Header {
			h := signed()
			h.Set("X-As2gate-Signature", "sha256=zz")
			return h
		}, body, testSecret, t0, false},
		{"other algorithm", func() http.Header {
			h := signed()
			h.Set("X-As2gate-Signature", strings.Replace(h.Get("X-As2gate-Signature"), "sha256=", "sha1=", 1))
			return h
		}, body, testSecret, t0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Verify([]byte(tt.secret), tt.header(), tt.body, tt.now, 5*time.Minute)
			if tt.ok && err != nil {
				t.Errorf("Verify: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrSignature) {
				t.Errorf("Verify = %v, want ErrSignature", err)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, value string
		want        time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "120", 2 * time.Minute},
		{"date", t0.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"date in the past", t0.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"negative", "-5", 0},
		{"garbage", "soon", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := parseRetryAfter(tt.value, t0); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.value, got, tt.want)
			}
		})
	}
}
