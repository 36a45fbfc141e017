package main

import (
	"log/slog"

	"github.com/as2gate/as2gate/internal/config"
	"github.com/as2gate/as2gate/internal/metrics"
	"github.com/as2gate/as2gate/internal/store"
)

// newMetrics builds the gateway's metrics: the partners and certificates as configured at
// start, the counts read from st at each scrape.
func newMetrics(cfg *config.Config, st store.Store, log *slog.Logger) (*metrics.Metrics, error) {
	mc := metrics.Config{Stats: st.Stats, Log: log}
	for _, p := range cfg.Partners {
		mc.Partners = append(mc.Partners, p.AS2ID)
	}
	for _, c := range cfg.Certificates() {
		mc.Certificates = append(mc.Certificates, metrics.Certificate{Key: c.Key, Owner: c.Owner, Cert: c.Certificate})
	}
	return metrics.New(mc)
}
