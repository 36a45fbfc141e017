package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/storetest"
)

func TestConfigEntriesConformance(t *testing.T) {
	t.Parallel()
	storetest.RunConfigEntries(t, func(t *testing.T) store.Store {
		return open(t, filepath.Join(t.TempDir(), "as2gate.db"))
	})
}

// TestConfigVersionShared shows the change counter as a second node sees it: two stores
// opened on one database file.
func TestConfigVersionShared(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "as2gate.db")
	a, b := open(t, path), open(t, path)
	ctx := t.Context()
	before, err := b.ConfigVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.CreateConfigEntry(ctx, &store.ConfigEntry{Kind: store.EntryProfile, Name: "p", Document: "name: p\nheaders: {X-A: b}\n"}); err != nil {
		t.Fatal(err)
	}
	after, err := b.ConfigVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("the other store's counter stayed at %d after a write (was %d)", after, before)
	}
	if e, err := b.ConfigEntry(ctx, store.EntryProfile, "p"); err != nil || e.Revision != 1 {
		t.Errorf("the other store reads %+v, %v", e, err)
	}
}
