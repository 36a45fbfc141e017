package main

import "github.com/as2gate/as2gate/internal/config"

// maxUpload bounds a submission through the API: the largest message any partner agreement
// admits (max_size), and at least the API's own default of 1 GiB. An agreement that admits
// larger files both ways then works in both directions without a second setting.
func maxUpload(cfg *config.Config) int64 {
	n := int64(1 << 30)
	for _, p := range cfg.Partners {
		n = max(n, p.MaxSize)
	}
	return n
}
