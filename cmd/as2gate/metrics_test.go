package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/as2gate/as2gate/cms/cmstest"
)

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the JSON log records written so far.
func (b *lockedBuffer) records(t *testing.T) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, rec)
	}
	return out
}

// TestMetricsAndLogs exchanges a message between two gateways, then sends one to a partner
// that refuses connections, and checks what /metrics says about both and what the logs
// carry.
func TestMetricsAndLogs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	idA, idB := cmstest.New(t, "GW-A", nil), cmstest.New(t, "GW-B", nil)
	certA, keyA := idA.WriteFiles(t, dir, "a")
	certB, keyB := idB.WriteFiles(t, dir, "b")
	a := agreement{sign: "sha256", encrypt: "aes256-cbc", keyTransport: "rsa-pkcs1v15", compress: "none", mdn: "sync", mdnSigned: true}
	var logA, logB lockedBuffer
	jsonLog := func(w io.Writer) *slog.Logger {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	A := startNodeLog(t, jsonLog(&logA), filepath.Join(dir, "A"), "GW-A", certA, keyA, "GW-B", certB, a)
	B := startNodeLog(t, jsonLog(&logB), filepath.Join(dir, "B"), "GW-B", certB, keyB, "GW-A", certA, a)
	A.cfg.Partner("GW-B").URL = "http://" + B.gw.AS2Addr().String() + "/as2"
	B.cfg.Partner("GW-A").URL = "http://" + A.gw.AS2Addr().String() + "/as2"

	first := bytes.Repeat([]byte("UNB+UNOA:2+GWA+GWB'"), 100)
	s1 := A.submit("GW-B", map[string][]byte{"first.edi": first})
	if m := A.await(s1.ID, "sent", "failed"); m.State != "sent" {
		t.Fatalf("first message: %+v", m)
	}
	B.received(s1.MessageID)

	// The second message finds nobody listening and waits an hour for its retry.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	A.cfg.Partner("GW-B").URL = "http://" + closed + "/as2"
	A.cfg.Partner("GW-B").Retry.Failed.Initial = time.Hour
	second := []byte("UNB+UNOA:2+GWA+GWB+second'")
	s2 := A.submit("GW-B", map[string][]byte{"second.edi": second})
	var failed messageView
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		A.api("GET", fmt.Sprintf("/api/v1/messages/%d", s2.ID), nil, "", &failed)
		if len(failed.Attempts) > 0 && failed.State == "queued" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second message never failed an attempt: %+v", failed)
		}
	}
	if failed.Attempts[0].Class != "transient" || failed.Attempts[0].Code != "connect_refused" {
		t.Fatalf("attempt %+v", failed.Attempts[0])
	}

	t.Run("metrics", func(t *testing.T) {
		// The worker observes the latency just after it records the state the API shows.
		fa := scrapeUntil(t, A, "as2gate_send_latency_seconds", nil, 1)
		for _, c := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"as2gate_messages", map[string]string{"direction": "out", "state": "sent"}, 1},
			{"as2gate_messages", map[string]string{"direction": "out", "state": "queued"}, 1},
			{"as2gate_messages", map[string]string{"direction": "in", "state": "received"}, 0},
			{"as2gate_send_attempts_total", map[string]string{"class": "ok", "code": "ok"}, 1},
			{"as2gate_send_attempts_total", map[string]string{"class": "transient", "code": "connect_refused"}, 1},
			{"as2gate_send_latency_seconds", nil, 1},
			{"as2gate_mdn_roundtrip_seconds", map[string]string{"mode": "sync"}, 1},
			{"as2gate_payload_bytes_total", map[string]string{"direction": "out"}, float64(len(first) + len(second))},
			{"as2gate_queue_depth", map[string]string{"partner": "GW-B"}, 1},
		} {
			if got, ok := metricValue(fa, c.name, c.labels); !ok || got != c.want {
				t.Errorf("A: %s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
			}
		}
		// Due again in an hour, give or take the retry policy's jitter.
		if due, ok := metricValue(fa, "as2gate_queue_oldest_due_timestamp_seconds", map[string]string{"partner": "GW-B"}); !ok || due < float64(time.Now().Add(30*time.Minute).Unix()) {
			t.Errorf("A: oldest due of GW-B = %v (found %v), want about an hour ahead", due, ok)
		}
		if days, ok := metricValue(fa, "as2gate_certificate_expiry_days", map[string]string{"owner": "partner GW-B"}); !ok || days < 365 {
			t.Errorf("A: GW-B's certificate expires in %v days (found %v)", days, ok)
		}

		fb := scrapeNode(t, B)
		for _, c := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"as2gate_messages", map[string]string{"direction": "in", "state": "received"}, 1},
			{"as2gate_messages", map[string]string{"direction": "out", "state": "sent"}, 0},
			{"as2gate_payload_bytes_total", map[string]string{"direction": "in"}, float64(len(first))},
			{"as2gate_queue_depth", map[string]string{"partner": "GW-A"}, 0},
		} {
			if got, ok := metricValue(fb, c.name, c.labels); !ok || got != c.want {
				t.Errorf("B: %s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
			}
		}
	})

	t.Run("logs", func(t *testing.T) {
		// A line is written just after the state the API shows is recorded.
		find := func(b *lockedBuffer, msg, messageID string) map[string]any {
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				for _, r := range b.records(t) {
					if r["msg"] == msg && r["message_id"] == messageID {
						return r
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("no log line %q for %s", msg, messageID)
				}
			}
		}
		sent := find(&logA, "message sent", s1.MessageID)
		retry := find(&logA, "attempt failed, will retry", s2.MessageID)
		for _, r := range []map[string]any{sent, retry} {
			if r["partner"] != "GW-B" || r["attempt"] != float64(1) {
				t.Errorf("send log line without partner GW-B and attempt 1: %v", r)
			}
		}
		if retry["code"] != "connect_refused" {
			t.Errorf("retry log line: %v", retry)
		}
		if r := find(&logB, "message received", s1.MessageID); r["partner"] != "GW-A" {
			t.Errorf("receive log line: %v", r)
		}
		// Every line about a message names its partner; every one of the send worker also the
		// attempt.
		for _, r := range append(logA.records(t), logB.records(t)...) {
			if _, ok := r["message_id"]; !ok {
				continue
			}
			if p, _ := r["partner"].(string); p == "" {
				t.Errorf("log line with a message_id but no partner: %v", r)
			}
			if _, ok := r["attempt"]; r["component"] == "outbound" && !ok {
				t.Errorf("send worker log line without attempt: %v", r)
			}
		}
	})
}

// scrapeUntil scrapes n until the series of name with labels has the value want (a
// histogram: the count), and returns that scrape.
func scrapeUntil(t *testing.T, n *node, name string, labels map[string]string, want float64) map[string]*dto.MetricFamily {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		fams := scrapeNode(t, n)
		got, _ := metricValue(fams, name, labels)
		if got == want {
			return fams
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s%v = %v, want %v", n.id, name, labels, got, want)
		}
	}
}

// scrapeNode GETs a gateway's /metrics, without a token, and parses it.
func scrapeNode(t *testing.T, n *node) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + n.gw.AdminAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: /metrics: HTTP %d: %s", n.id, resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("%s: parsing /metrics: %v", n.id, err)
	}
	return fams
}

// metricValue returns the value of the first series of name whose labels include labels: a
// counter's or gauge's value, a histogram's count.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for k, v := range labels {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

// TestMetricsAsyncMDN checks the figures of a message whose MDN comes back asynchronously:
// the inbound side completes the send.
func TestMetricsAsyncMDN(t *testing.T) {
	t.Parallel()
	A, B := startPair(t, agreement{sign: "sha256", encrypt: "aes128-cbc", keyTransport: "rsa-pkcs1v15", compress: "none", mdn: "async", mdnSigned: true})
	s := A.submit("GW-B", map[string][]byte{"po.edi": []byte("ISA*00*~")})
	if m := A.await(s.ID, "sent", "failed"); m.State != "sent" {
		t.Fatalf("sent: %+v", m)
	}
	// The MDN may complete the message before A's worker has the partner's answer to the
	// request and counts the attempt, and the latency is observed just after the state the
	// API shows is recorded: wait for both.
	scrapeUntil(t, A, "as2gate_send_attempts_total", map[string]string{"class": "ok", "code": "ok"}, 1)
	fa := scrapeUntil(t, A, "as2gate_send_latency_seconds", nil, 1)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"as2gate_mdn_roundtrip_seconds", map[string]string{"mode": "async"}, 1},
		{"as2gate_send_latency_seconds", nil, 1},
		{"as2gate_send_attempts_total", map[string]string{"class": "ok", "code": "ok"}, 1},
		{"as2gate_messages", map[string]string{"direction": "out", "state": "sent"}, 1},
	} {
		if got, ok := metricValue(fa, c.name, c.labels); !ok || got != c.want {
			t.Errorf("A: %s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := metricValue(fa, "as2gate_mdn_roundtrip_seconds", map[string]string{"mode": "sync"}); ok {
		t.Error("A: a synchronous MDN round trip was observed")
	}
	// B sent the asynchronous MDN through its queue: an attempt, not a message.
	B.received(s.MessageID)
	fb := scrapeNode(t, B)
	if got, _ := metricValue(fb, "as2gate_messages", map[string]string{"direction": "out", "state": "sent"}); got != 0 {
		t.Errorf("B: the MDN counts as %v sent messages", got)
	}
}
