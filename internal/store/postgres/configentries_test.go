package postgres

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/storetest"
)

func TestConfigEntriesConformance(t *testing.T) {
	t.Parallel()
	storetest.RunConfigEntries(t, func(t *testing.T) store.Store {
		return openURL(t, testSchema(t))
	})
}

// TestConfigVersionShared shows the change counter as a second node sees it: two stores,
// each with its own pool, on one schema.
func TestConfigVersionShared(t *testing.T) {
	t.Parallel()
	u := testSchema(t)
	a, b := openURL(t, u), openURL(t, u)
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

// TestConfigWritesConcurrent has two nodes write at once: every write that succeeds moves
// the counter exactly once, a refused one not at all, and of several updates or deletes
// made from one revision exactly one succeeds.
func TestConfigWritesConcurrent(t *testing.T) {
	t.Parallel()
	u := testSchema(t)
	nodes := []*Store{openURL(t, u), openURL(t, u)}
	ctx := t.Context()
	const perNode = 8
	shared := &store.ConfigEntry{Kind: store.EntryPartner, Name: "shared", Document: "as2_id: shared\n"}
	if err := nodes[0].CreateConfigEntry(ctx, shared); err != nil {
		t.Fatal(err)
	}
	v0, err := nodes[0].ConfigVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// run starts fn on every worker of both nodes at once and counts the successes.
	run := func(fn func(s *Store, node, i int) error) (ok, conflicts int) {
		var (
			mu    sync.Mutex
			wg    sync.WaitGroup
			start = make(chan struct{})
		)
		for n, s := range nodes {
			for i := range perNode {
				wg.Go(func() {
					<-start
					err := fn(s, n, i)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						ok++
					case errors.Is(err, store.ErrConflict):
						conflicts++
					default:
						t.Errorf("node %d worker %d: %v", n, i, err)
					}
				})
			}
		}
		close(start)
		wg.Wait()
		return ok, conflicts
	}

	// Distinct creates, each also racing a create of one common name.
	created, dup := run(func(s *Store, node, i int) error {
		name := fmt.Sprintf("p%d-%d", node, i)
		if err := s.CreateConfigEntry(ctx, &store.ConfigEntry{Kind: store.EntryProfile, Name: name, Document: "name: " + name + "\n"}); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
		return s.CreateConfigEntry(ctx, &store.ConfigEntry{Kind: store.EntryStation, Name: "common", Document: "as2_id: common\n"})
	})
	if created != 1 || dup != 2*perNode-1 {
		t.Errorf("creates of one name: %d succeeded, %d conflicts; want 1 and %d", created, dup, 2*perNode-1)
	}
	updated, stale := run(func(s *Store, node, i int) error {
		return s.UpdateConfigEntry(ctx, &store.ConfigEntry{Kind: shared.Kind, Name: shared.Name, Revision: 1,
			Document: fmt.Sprintf("as2_id: shared\n# node %d worker %d\n", node, i),
			Material: map[string][]byte{"cert.pem": fmt.Appendf(nil, "%d-%d", node, i)}})
	})
	if updated != 1 || stale != 2*perNode-1 {
		t.Errorf("updates from revision 1: %d succeeded, %d conflicts; want 1 and %d", updated, stale, 2*perNode-1)
	}
	e, err := nodes[1].ConfigEntry(ctx, shared.Kind, shared.Name)
	if err != nil {
		t.Fatal(err)
	}
	if e.Revision != 2 || len(e.Material) != 1 {
		t.Errorf("after the race: revision %d, material %v; want revision 2 and the winner's one file", e.Revision, e.Material)
	}
	deleted, gone := run(func(s *Store, node, i int) error {
		err := s.DeleteConfigEntry(ctx, shared.Kind, shared.Name, 2)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w (%w)", store.ErrConflict, err) // gone already: lost the race
		}
		return err
	})
	if deleted != 1 || gone != 2*perNode-1 {
		t.Errorf("deletes at revision 2: %d succeeded, %d refused; want 1 and %d", deleted, gone, 2*perNode-1)
	}

	v1, err := nodes[1].ConfigVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 16 distinct creates, one common create, one update, one delete.
	if want := int64(2*perNode + 1 + 1 + 1); v1-v0 != want {
		t.Errorf("the counter moved by %d for %d writes", v1-v0, want)
	}
	all, err := nodes[0].ConfigEntries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2*perNode+1 {
		t.Errorf("%d entries after the races, want %d", len(all), 2*perNode+1)
	}
}
