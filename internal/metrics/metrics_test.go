package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/as2gate/as2gate/cms/cmstest"
	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/sqlite"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "as2gate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	due := now.Add(-90 * time.Second)
	for _, m := range []*store.Message{
		{Direction: store.Outbound, Kind: store.KindMessage, MessageID: "<1@t>", Station: "GW", Partner: "PX", State: store.StateQueued, NextAttemptAt: due, URL: "http://127.0.0.1:1/as2", MDNMode: "sync"},
		{Direction: store.Outbound, Kind: store.KindMessage, MessageID: "<2@t>", Station: "GW", Partner: "PX", State: store.StateSent, URL: "http://127.0.0.1:1/as2", MDNMode: "sync"},
		{Direction: store.Inbound, Kind: store.KindMessage, MessageID: "<3@t>", Station: "GW", Partner: "PY", State: store.StateReceived, MDNMode: "sync"},
	} {
		if err := st.CreateMessage(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	id := cmstest.New(t, "PX", &cmstest.Options{NotAfter: now.Add(36 * time.Hour)})
	m, err := New(Config{
		Stats: st.Stats, Partners: func() []string { return []string{"PX", "PY", "PZ"} }, Now: func() time.Time { return now },
		Certificates: func() []Certificate {
			return []Certificate{{Key: "partners[0].certs[0]", Owner: "partner PX", Cert: id.Certificate}}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Attempt("transient", "connect_refused")
	m.Attempt("transient", "connect_refused")
	m.Attempt("ok", "ok")
	m.Sent(now.Add(-2*time.Second), now)
	m.MDNReceived("sync", 300*time.Millisecond)
	m.MDNReceived("async", time.Minute)
	m.MDNReceived("async", 2*time.Minute)
	m.PayloadBytes(store.Outbound, 1000)
	m.PayloadBytes(store.Outbound, 24)

	fams := scrape(t, m.Handler(nil))
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"as2gate_messages", map[string]string{"direction": "out", "state": "queued"}, 1},
		{"as2gate_messages", map[string]string{"direction": "out", "state": "sent"}, 1},
		{"as2gate_messages", map[string]string{"direction": "out", "state": "failed"}, 0},
		{"as2gate_messages", map[string]string{"direction": "in", "state": "received"}, 1},
		{"as2gate_queue_depth", map[string]string{"partner": "PX"}, 1},
		{"as2gate_queue_depth", map[string]string{"partner": "PZ"}, 0},
		{"as2gate_queue_oldest_due_timestamp_seconds", map[string]string{"partner": "PX"}, float64(due.Unix())},
		{"as2gate_send_attempts_total", map[string]string{"class": "transient", "code": "connect_refused"}, 2},
		{"as2gate_send_latency_seconds", nil, 1},
		{"as2gate_mdn_roundtrip_seconds", map[string]string{"mode": "async"}, 2},
		{"as2gate_payload_bytes_total", map[string]string{"direction": "out"}, 1024},
		{"as2gate_payload_bytes_total", map[string]string{"direction": "in"}, 0},
		{"as2gate_certificate_expiry_days", map[string]string{"certificate": "partners[0].certs[0]", "owner": "partner PX"}, 1.5},
	} {
		if got, ok := value(fams, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := value(fams, "as2gate_queue_oldest_due_timestamp_seconds", map[string]string{"partner": "PZ"}); ok {
		t.Error("an idle partner has an oldest due time")
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
}

// TestMetricsStatsFailure checks that a scrape whose database read fails still answers with
// the other metrics.
func TestMetricsStatsFailure(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "as2gate.db"))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	m, err := New(Config{Stats: st.Stats})
	if err != nil {
		t.Fatal(err)
	}
	m.PayloadBytes(store.Inbound, 7)
	fams := scrape(t, m.Handler(nil))
	if got, _ := value(fams, "as2gate_payload_bytes_total", map[string]string{"direction": "in"}); got != 7 {
		t.Fatalf("payload bytes in = %v", got)
	}
	if _, ok := fams["as2gate_messages"]; ok {
		t.Fatal("message counts reported from a closed database")
	}
}

// scrape GETs h as Prometheus does and parses the text format.
func scrape(t testing.TB, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parsing the scrape: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the series of name whose labels include labels: a counter's or
// gauge's value, a histogram's count.
func value(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
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
