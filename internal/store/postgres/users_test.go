package postgres

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/as2gate/as2gate/internal/store"
)

// TestLastAdminConcurrent has two nodes take away the last two admins at once, round after
// round: one of them must be refused, so that an admin always remains.
func TestLastAdminConcurrent(t *testing.T) {
	t.Parallel()
	u := testSchema(t)
	a, b := openURL(t, u), openURL(t, u)
	ctx := t.Context()
	survivor := "admin0"
	if err := a.CreateUser(ctx, &store.User{Name: survivor, Role: store.RoleAdmin, PasswordHash: []byte("h")}); err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 20; round++ {
		other := fmt.Sprintf("admin%d", round)
		if err := b.CreateUser(ctx, &store.User{Name: other, Role: store.RoleAdmin, PasswordHash: []byte("h")}); err != nil {
			t.Fatal(err)
		}
		// Node a demotes one admin; node b demotes or, every other round, removes the other.
		var (
			wg     sync.WaitGroup
			start  = make(chan struct{})
			errA   error
			errB   error
			remove = round%2 == 0
		)
		wg.Go(func() { <-start; errA = a.SetUserRole(ctx, survivor, store.RoleOperator) })
		wg.Go(func() {
			<-start
			if remove {
				errB = b.DeleteUser(ctx, other)
			} else {
				errB = b.SetUserRole(ctx, other, store.RoleViewer)
			}
		})
		close(start)
		wg.Wait()
		for _, err := range []error{errA, errB} {
			if err != nil && !errors.Is(err, store.ErrConflict) {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if (errA == nil) == (errB == nil) {
			t.Fatalf("round %d: demoting %s: %v; taking away %s: %v; want exactly one refused", round, survivor, errA, other, errB)
		}
		us, err := a.ListUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var admins []string
		for _, u := range us {
			if u.Role == store.RoleAdmin {
				admins = append(admins, u.Name)
			}
		}
		if len(admins) != 1 {
			t.Fatalf("round %d: admins %v, want exactly one", round, admins)
		}
		survivor = admins[0]
	}
}

// TestMigrationRolesKeepsUsersAdmin: the users of a schema from before roles existed can
// still do everything after the upgrade.
func TestMigrationRolesKeepsUsersAdmin(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	u := testSchema(t)
	db, err := sql.Open("pgx", u) // pgx's database/sql driver, which goose drives in Open too
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := fs.Sub(migrations, "migrations")
	p, err := goose.NewProvider(goose.DialectPostgres, db, dir)
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
	s := openURL(t, u)
	got, err := s.GetUser(ctx, "OPS")
	if err != nil || got.Role != store.RoleAdmin {
		t.Fatalf("GetUser(OPS) after the upgrade = %+v, %v; want role admin", got, err)
	}
}

// TestMigrationsFollowSQLite: a schema version means the same change on both drivers, so
// the two keep the same migration files, name for name.
func TestMigrationsFollowSQLite(t *testing.T) {
	t.Parallel()
	ours, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for i := range ours {
		ours[i] = path.Base(ours[i])
	}
	entries, err := os.ReadDir(filepath.Join("..", "sqlite", "migrations"))
	if err != nil {
		t.Fatal(err)
	}
	var theirs []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			theirs = append(theirs, e.Name())
		}
	}
	if !slices.Equal(ours, theirs) {
		t.Errorf("postgres migrations %v, sqlite migrations %v", ours, theirs)
	}
}
