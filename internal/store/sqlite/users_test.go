package sqlite

import (
	"database/sql"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/as2gate/as2gate/internal/store"
)

// TestMigrationRolesKeepsUsersAdmin: the users of a database from before roles existed
// can still do everything after the upgrade.
func TestMigrationRolesKeepsUsersAdmin(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "as2gate.db")
	db, err := sql.Open("sqlite", dsn(path, DefaultBusyTimeout, false))
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := fs.Sub(migrations, "migrations")
	p, err := goose.NewProvider(goose.DialectSQLite3, db, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 6); err != nil {
		t.Fatalf("migrating to version 6: %v", err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO users (name, password_hash, created_at) VALUES ('ops', '$2a$10$x', 1)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := open(t, path)
	u, err := s.GetUser(ctx, "ops")
	if err != nil || u.Role != store.RoleAdmin {
		t.Fatalf("GetUser(ops) after the upgrade = %+v, %v; want role admin", u, err)
	}
}
