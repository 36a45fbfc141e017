package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/as2gate/as2gate/internal/config"
	"github.com/as2gate/as2gate/internal/payload"
)

// openPayloads opens the payload store cfg names: the folder data_dir/payloads, or an
// S3-compatible bucket. A bucket that cannot be written stops the start, as a database that
// cannot be opened does, rather than failing the first message.
func openPayloads(ctx context.Context, cfg *config.Config, spoolDir string) (payload.Store, error) {
	if cfg.PayloadStore == "" {
		return payload.OpenDir(filepath.Join(cfg.DataDir, "payloads"))
	}
	s, err := payload.OpenS3(ctx, cfg.PayloadStore, spoolDir)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := s.Ping(pctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("payload_store: %w", err)
	}
	return s, nil
}
