package main

import (
	"log/slog"

	"github.com/as2gate/as2gate/internal/config"
	"github.com/as2gate/as2gate/internal/metrics"
	"github.com/as2gate/as2gate/internal/store"
)

// newMetrics builds the gateway's metrics: the counts read from st at each scrape, the
// partners and certificates of the configuration current() returns then, so that partners
// added or changed at run time are reported without a restart.
func newMetrics(current func() *config.Config, st store.Store, log *slog.Logger) (*metrics.Metrics, error) {
	return metrics.New(metrics.Config{
		Stats: st.Stats, Log: log,
		Partners: func() []string {
			cfg := current()
			ids := make([]string, 0, len(cfg.Partners))
			for _, p := range cfg.Partners {
				ids = append(ids, p.AS2ID)
			}
			return ids
		},
		Certificates: func() []metrics.Certificate {
			var certs []metrics.Certificate
			for _, c := range current().Certificates() {
				certs = append(certs, metrics.Certificate{Key: c.Key, Owner: c.Owner, Cert: c.Certificate})
			}
			return certs
		},
	})
}
