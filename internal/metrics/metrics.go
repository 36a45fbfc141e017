// Package metrics exposes the gateway's state and activity in the Prometheus text format:
// counters and histograms fed by the send worker and the inbound backend (it implements
// outbound.Metrics), and gauges read from the database and the configuration at each
// scrape. Everything lives in a registry of its own, so that two gateways in one process
// (as in tests) keep separate figures.
package metrics

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/as2gate/as2gate/internal/store"
)

// Certificate is a certificate whose expiry is reported.
type Certificate struct {
	Key   string // where the configuration names it, e.g. "partners[1].certs[0]"
	Owner string // e.g. "partner PARTNERX", "station GATEWAY"
	Cert  *x509.Certificate
}

// Config is what the scrape-time gauges read.
type Config struct {
	// Stats reads the message counts and the queues (store.Store.Stats). Required.
	Stats func(ctx context.Context) (*store.Stats, error)
	// Partners returns the partners in effect now (partners change at run time): each has a
	// queue depth, 0 when idle. Nil reports only the partners with queued messages.
	Partners func() []string
	// Certificates returns the certificates in effect now, reported with their days to
	// expiry. Nil reports none.
	Certificates func() []Certificate
	// StatsTimeout bounds the database read of one scrape; default 10s.
	StatsTimeout time.Duration
	Now          func() time.Time // default time.Now
	Log          *slog.Logger
}

// Metrics is the gateway's registry with its instruments.
type Metrics struct {
	reg          *prometheus.Registry
	attempts     *prometheus.CounterVec
	sendLatency  prometheus.Histogram
	mdnRoundTrip *prometheus.HistogramVec
	payloadBytes *prometheus.CounterVec
}

// Latency buckets from 10 ms to about 1.5 h: a send normally takes well under a second, a
// message that waited for retries or an asynchronous MDN hours.
var latencyBuckets = prometheus.ExponentialBuckets(0.01, 3, 14)

// New returns the gateway's metrics, registered in a new registry with the Go runtime and
// process collectors.
func New(cfg Config) (*Metrics, error) {
	if cfg.Stats == nil {
		return nil, errors.New("metrics: Stats is required")
	}
	if cfg.StatsTimeout <= 0 {
		cfg.StatsTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "as2gate_send_attempts_total",
			Help: "Attempts at sending a message or an asynchronous MDN, by failure class and code; class and code are ok for an attempt the partner took. An asynchronous MDN refusing a message adds its failure.",
		}, []string{"class", "code"}),
		sendLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "as2gate_send_latency_seconds",
			Help:    "Time from the submission of an outbound message to its sent state (the MDN received and verified, when one was asked for), retries included.",
			Buckets: latencyBuckets,
		}),
		mdnRoundTrip: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "as2gate_mdn_roundtrip_seconds",
			Help:    "Time from sending a message to receiving its MDN: the request's round trip for a synchronous MDN, the wait after the partner took the message for an asynchronous one.",
			Buckets: latencyBuckets,
		}, []string{"mode"}),
		payloadBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "as2gate_payload_bytes_total",
			Help: "Payload bytes stored: submitted for sending (direction out) and received (direction in).",
		}, []string{"direction"}),
	}
	for _, c := range []prometheus.Collector{
		m.attempts, m.sendLatency, m.mdnRoundTrip, m.payloadBytes,
		&stateCollector{cfg: cfg},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := m.reg.Register(c); err != nil {
			return nil, err
		}
	}
	// The directions exist from the start, so that rate() sees the first bytes.
	m.payloadBytes.WithLabelValues(store.Outbound)
	m.payloadBytes.WithLabelValues(store.Inbound)
	return m, nil
}

// Handler serves the registry in the Prometheus text format. A scrape whose database read
// fails still returns the other metrics, and logs the failure.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// Registry returns the registry, for tests and for adding collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Attempt implements outbound.Metrics.
func (m *Metrics) Attempt(class, code string) { m.attempts.WithLabelValues(class, code).Inc() }

// Sent implements outbound.Metrics.
func (m *Metrics) Sent(submitted, at time.Time) {
	m.sendLatency.Observe(max(0, at.Sub(submitted).Seconds()))
}

// MDNReceived implements outbound.Metrics.
func (m *Metrics) MDNReceived(mode string, roundTrip time.Duration) {
	m.mdnRoundTrip.WithLabelValues(mode).Observe(max(0, roundTrip.Seconds()))
}

// PayloadBytes implements outbound.Metrics.
func (m *Metrics) PayloadBytes(direction string, n int64) {
	m.payloadBytes.WithLabelValues(direction).Add(float64(n))
}

var (
	messagesDesc = prometheus.NewDesc("as2gate_messages",
		"Messages in the database by direction (out, in) and state.", []string{"direction", "state"}, nil)
	queueDepthDesc = prometheus.NewDesc("as2gate_queue_depth",
		"Outbound messages and asynchronous MDNs waiting to be sent or being sent, per partner.", []string{"partner"}, nil)
	oldestDueDesc = prometheus.NewDesc("as2gate_queue_oldest_due_timestamp_seconds",
		"When the partner's earliest waiting row is or was due (Unix time); absent when none waits. time() minus it is how late the queue runs.", []string{"partner"}, nil)
	certExpiryDesc = prometheus.NewDesc("as2gate_certificate_expiry_days",
		"Days until the certificate expires; negative once it has.", []string{"certificate", "owner", "subject", "serial"}, nil)
)

// allStates are the states each direction has.
var allStates = [][2]string{
	{store.Outbound, store.StateQueued}, {store.Outbound, store.StateSending}, {store.Outbound, store.StateAwaitingMDN},
	{store.Outbound, store.StateSent}, {store.Outbound, store.StateFailed},
	{store.Inbound, store.StateReceived}, {store.Inbound, store.StateSuspended},
}

// stateCollector reads the gauges at scrape time: counts from the database, expiry from the
// certificates.
type stateCollector struct {
	cfg Config
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- messagesDesc
	ch <- queueDepthDesc
	ch <- oldestDueDesc
	ch <- certExpiryDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.cfg.Now()
	var certs []Certificate
	if c.cfg.Certificates != nil {
		certs = c.cfg.Certificates()
	}
	for _, cert := range certs {
		days := cert.Cert.NotAfter.Sub(now).Hours() / 24
		ch <- prometheus.MustNewConstMetric(certExpiryDesc, prometheus.GaugeValue, days,
			cert.Key, cert.Owner, cert.Cert.Subject.String(), cert.Cert.SerialNumber.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.StatsTimeout)
	defer cancel()
	st, err := c.cfg.Stats(ctx)
	if err != nil {
		c.cfg.Log.Error("reading the message counts for metrics", "err", err)
		ch <- prometheus.NewInvalidMetric(messagesDesc, err)
		return
	}
	// Every state is listed, 0 when empty, so that an alert on failed messages sees the
	// series before the first failure.
	counts := make(map[[2]string]int64, len(allStates))
	for _, ds := range allStates {
		counts[ds] = 0
	}
	for _, s := range st.Messages {
		counts[[2]string{s.Direction, s.State}] += s.Count
	}
	for ds, n := range counts {
		ch <- prometheus.MustNewConstMetric(messagesDesc, prometheus.GaugeValue, float64(n), ds[0], ds[1])
	}
	depth := make(map[string]bool, len(st.Queues))
	for _, q := range st.Queues {
		depth[q.Partner] = true
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(q.Depth), q.Partner)
		if !q.OldestDue.IsZero() {
			ch <- prometheus.MustNewConstMetric(oldestDueDesc, prometheus.GaugeValue, float64(q.OldestDue.UnixNano())/1e9, q.Partner)
		}
	}
	var partners []string
	if c.cfg.Partners != nil {
		partners = c.cfg.Partners()
	}
	for _, p := range partners {
		if !depth[p] {
			depth[p] = true
			ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, 0, p)
		}
	}
}
