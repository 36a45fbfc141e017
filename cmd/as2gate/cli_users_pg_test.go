package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/postgres"
	"github.com/as2gate/as2gate/internal/store/postgres/pgtest"
	"github.com/as2gate/as2gate/internal/web"
)

// TestCLIUsersPostgres manages the console's users of gateways that share a PostgreSQL
// database, with the configuration serve reads: what the command writes, the gateway's
// store reads, and the other way round.
func TestCLIUsersPostgres(t *testing.T) {
	t.Parallel()
	db := pgtest.Schema(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "as2gate.yaml")
	if err := os.WriteFile(cfgFile, fmt.Appendf(nil, "data_dir: data\ndatabase: %q\n", db), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := "--config=" + cfgFile
	ctx := context.Background()
	// The gateway's first start: the schema and its first admin.
	st, err := postgres.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := web.EnsureAdmin(ctx, st); err != nil {
		t.Fatal(err)
	}

	out, err := runCLI(t, "users", "add", conf, "bob", "--role", "viewer")
	m := regexp.MustCompile(`^user bob added \(role viewer\), password ([A-Za-z0-9_-]{24}) \(shown only this once\)\n$`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("users add: %v\n%s", err, out)
	}
	u, err := st.GetUser(ctx, "bob")
	if err != nil || u.Role != store.RoleViewer || bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(m[1])) != nil {
		t.Fatalf("the gateway's store reads bob as %+v, %v; want a viewer with the printed password", u, err)
	}
	now := time.Now()
	if err := st.CreateSession(ctx, &store.Session{TokenHash: "ab12", User: "bob", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	out, err = runCLI(t, "users", "list", conf)
	if err != nil || !regexp.MustCompile(`(?m)^bob +viewer +1 `).MatchString(out) || !regexp.MustCompile(`(?m)^admin +admin +0 `).MatchString(out) {
		t.Fatalf("users list: %v\n%s", err, out)
	}
	out, err = runCLIWithInput(t, "a-new-long-password\n", "users", "passwd", conf, "BOB")
	if err != nil || out != "password of BOB set; its sessions ended\n" {
		t.Fatalf("users passwd: %v\n%s", err, out)
	}
	if u, err := st.GetUser(ctx, "bob"); err != nil || bcrypt.CompareHashAndPassword(u.PasswordHash, []byte("a-new-long-password")) != nil {
		t.Errorf("bob's password after passwd: %+v, %v", u, err)
	}
	if list, err := st.ListSessions(ctx, "bob"); err != nil || len(list) != 0 {
		t.Errorf("bob has sessions %v, %v after passwd", list, err)
	}
	if _, err := runCLI(t, "users", "remove", conf, "admin"); err == nil || !strings.Contains(err.Error(), "admin is the last admin") {
		t.Errorf("users remove of the last admin: %v", err)
	}
	out, err = runCLI(t, "users", "remove", conf, "bob")
	if err != nil || out != "user bob removed\n" {
		t.Fatalf("users remove: %v\n%s", err, out)
	}
	if n, err := st.CountUsers(ctx); err != nil || n != 1 {
		t.Errorf("CountUsers after remove = %d, %v; want 1", n, err)
	}
}
