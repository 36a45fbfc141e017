package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/as2gate/as2gate/internal/config"
	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/postgres"
	"github.com/as2gate/as2gate/internal/store/sqlite"
)

// openStore opens the database cfg names, as serve and the commands that work on the
// database directly all do: the embedded SQLite file in the data folder, or a PostgreSQL
// database by its URL. With existing, a missing SQLite file is an error rather than a new,
// empty database: for a command it means a wrong --config.
func openStore(ctx context.Context, cfg *config.Config, existing bool) (store.Store, error) {
	var (
		st  store.Store
		err error
	)
	switch {
	case cfg.Database == "" || cfg.Database == "sqlite":
		file := filepath.Join(cfg.DataDir, "as2gate.db")
		if existing {
			if _, err := os.Stat(file); err != nil {
				return nil, fmt.Errorf("no gateway database at %s (start the gateway once, or pass its --config): %w", file, err)
			}
		}
		var s *sqlite.Store
		if s, err = sqlite.Open(ctx, file); err == nil {
			st = s
		}
	case strings.HasPrefix(cfg.Database, "postgres://"), strings.HasPrefix(cfg.Database, "postgresql://"):
		var s *postgres.Store
		if s, err = postgres.Open(ctx, cfg.Database); err == nil {
			st = s
		}
	default:
		return nil, fmt.Errorf("database %q is not sqlite or a postgres:// URL", redact(cfg.Database))
	}
	if err != nil {
		return nil, fmt.Errorf("opening the database: %w", err)
	}
	return st, nil
}
