package main

import (
	"testing"

	"github.com/as2gate/as2gate/internal/config"
)

func TestMaxUpload(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes []int64
		want  int64
	}{
		{"no partners", nil, 1 << 30},
		{"smaller limits keep the default", []int64{1 << 20, 500 << 20}, 1 << 30},
		{"the largest agreement", []int64{1 << 30, 8 << 30, 2 << 30}, 8 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &config.Config{}
			for _, n := range tc.sizes {
				p := &config.Partner{}
				p.MaxSize = n
				cfg.Partners = append(cfg.Partners, p)
			}
			if got := maxUpload(cfg); got != tc.want {
				t.Errorf("maxUpload = %d, want %d", got, tc.want)
			}
		})
	}
}
