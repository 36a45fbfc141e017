package postgres

import (
	"context"
	"testing"

	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/postgres/pgtest"
	"github.com/as2gate/as2gate/internal/store/storetest"
)

func testSchema(t testing.TB) string { return pgtest.Schema(t) }

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
