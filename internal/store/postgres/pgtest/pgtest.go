// Package pgtest gives tests a PostgreSQL schema of their own on the test server: the
// machine's own server on 127.0.0.1:5432 (scripts/testdeps.sh installs and starts one when
// nothing answers there), or the one AS2GATE_TEST_POSTGRES names.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the server the tests use unless AS2GATE_TEST_POSTGRES names another.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var (
	once      sync.Once
	serverErr error
)

// ServerURL returns the test server's URL. A server that does not answer skips the test,
// or fails it in CI (CI=true), where the server is part of the setup.
func ServerURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("AS2GATE_TEST_POSTGRES")
	if u == "" {
		u = DefaultURL
	}
	once.Do(func() {
		c, err := pgx.Connect(context.Background(), u)
		if err != nil {
			serverErr = err
			return
		}
		serverErr = c.Ping(context.Background())
		c.Close(context.Background())
	})
	if serverErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL at %s does not answer (run scripts/testdeps.sh): %v", Redacted(u), serverErr)
		}
		t.Skipf("PostgreSQL at %s does not answer (run scripts/testdeps.sh, or set AS2GATE_TEST_POSTGRES): %v", Redacted(u), serverErr)
	}
	return u
}

// Redacted is u with its password masked.
func Redacted(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "the test server's URL"
	}
	return p.Redacted()
}

// Schema creates a schema of its own for one test, dropped with everything in it when the
// test ends, and returns a URL whose search_path names it: tests running at once never see
// each other's rows, and the store scopes its locks and notifications by schema too.
func Schema(t testing.TB) string {
	t.Helper()
	base := ServerURL(t)
	b := make([]byte, 8)
	rand.Read(b)
	schema := "as2gate_test_" + hex.EncodeToString(b)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting to the test server: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("creating schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("connecting to drop schema %s: %v", schema, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}
