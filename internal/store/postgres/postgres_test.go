package postgres

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

	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/storetest"
)

// defaultTestURL is the server the tests use unless AS2GATE_TEST_POSTGRES names another:
// the machine's own, as scripts/testdeps.sh sets it up.
const defaultTestURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var (
	serverOnce sync.Once
	serverErr  error
)

// serverURL returns the test server's URL. A server that does not answer skips the test,
// or fails it in CI (CI=true), where the server is part of the setup.
func serverURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("AS2GATE_TEST_POSTGRES")
	if u == "" {
		u = defaultTestURL
	}
	serverOnce.Do(func() {
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
			t.Fatalf("PostgreSQL at %s does not answer (run scripts/testdeps.sh): %v", redacted(u), serverErr)
		}
		t.Skipf("PostgreSQL at %s does not answer (run scripts/testdeps.sh, or set AS2GATE_TEST_POSTGRES): %v", redacted(u), serverErr)
	}
	return u
}

func redacted(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "the test URL"
	}
	return p.Redacted()
}

// testSchema creates a schema of its own for one test, dropped when the test ends, and
// returns a URL whose search_path names it: tests running at once never see each other's
// rows, locks or notifications.
func testSchema(t testing.TB) string {
	t.Helper()
	base := serverURL(t)
	b := make([]byte, 8)
	rand.Read(b)
	schema := "as2gate_test_" + hex.EncodeToString(b)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connecting: %v", err)
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

// openURL opens a store on url and closes it when the test ends.
func openURL(t testing.TB, u string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), u, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store {
		return openURL(t, testSchema(t))
	})
}
