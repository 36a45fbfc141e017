package storetest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/as2gate/as2gate/internal/store"
)

// RunConfigEntries runs the conformance tests of store.ConfigEntries. open must return a
// new, empty store for each call; the subtests run in parallel.
func RunConfigEntries(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"CreateAndRead", testEntryCreateAndRead},
		{"CreateRejects", testEntryCreateRejects},
		{"UpdateRevision", testEntryUpdateRevision},
		{"Delete", testEntryDelete},
		{"VersionAndEvents", testEntryVersionAndEvents},
		{"Base", testEntryBase},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func partnerEntry(name string) *store.ConfigEntry {
	return &store.ConfigEntry{
		Kind: store.EntryPartner, Name: name,
		Document: "as2_id: " + name + "\nurl: https://" + name + ".example/as2\ncerts: [cert.pem]\n",
		Material: map[string][]byte{"cert.pem": []byte("-----BEGIN CERTIFICATE-----\n" + name + "\n")},
	}
}

func testEntryCreateAndRead(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := partnerEntry("ACME")
	if err := s.CreateConfigEntry(ctx, e); err != nil {
		t.Fatal(err)
	}
	if e.Revision != 1 || e.CreatedAt.IsZero() || !e.UpdatedAt.Equal(e.CreatedAt) {
		t.Errorf("after create: revision %d, created %v, updated %v; want 1 and equal times", e.Revision, e.CreatedAt, e.UpdatedAt)
	}
	st := &store.ConfigEntry{Kind: store.EntryStation, Name: "ACME", Document: "as2_id: ACME\nkey: id.p12\n",
		Material: map[string][]byte{"id.p12": {0, 1, 2, 0xff}, "id.password": []byte("secret\n"), "empty": {}}}
	if err := s.CreateConfigEntry(ctx, st); err != nil {
		t.Fatalf("a station may share a partner's name (another kind): %v", err)
	}
	got, err := s.ConfigEntry(ctx, store.EntryPartner, "ACME")
	if err != nil {
		t.Fatal(err)
	}
	if got.Document != e.Document || got.Revision != 1 || !bytes.Equal(got.Material["cert.pem"], e.Material["cert.pem"]) || len(got.Material) != 1 {
		t.Errorf("ConfigEntry = %+v, want the created partner", got)
	}
	gs, err := s.ConfigEntry(ctx, store.EntryStation, "ACME")
	if err != nil {
		t.Fatal(err)
	}
	if len(gs.Material) != 3 || !bytes.Equal(gs.Material["id.p12"], []byte{0, 1, 2, 0xff}) || gs.Material["empty"] == nil {
		t.Errorf("station material = %v, want the binary key, the password and an empty file", gs.Material)
	}
	if _, err := s.ConfigEntry(ctx, store.EntryProfile, "ACME"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown entry: %v, want ErrNotFound", err)
	}
	if err := s.CreateConfigEntry(ctx, &store.ConfigEntry{Kind: store.EntryProfile, Name: "invoices", Document: "name: invoices\nheaders: {X-A: b}\n"}); err != nil {
		t.Fatal(err)
	}
	all, err := s.ConfigEntries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, a := range all {
		order = append(order, a.Kind+"/"+a.Name)
	}
	if want := []string{"partner/ACME", "profile/invoices", "station/ACME"}; len(order) != 3 || order[0] != want[0] || order[1] != want[1] || order[2] != want[2] {
		t.Errorf("ConfigEntries order = %v, want %v", order, want)
	}
	if len(all[2].Material) != 3 || len(all[0].Material) != 1 {
		t.Errorf("ConfigEntries material counts = %d, %d; want 1 and 3", len(all[0].Material), len(all[2].Material))
	}
}

func testEntryCreateRejects(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.CreateConfigEntry(ctx, partnerEntry("ACME")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateConfigEntry(ctx, partnerEntry("ACME")); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second create: %v, want ErrConflict", err)
	}
	for _, e := range []*store.ConfigEntry{
		{Kind: "listener", Name: "x", Document: "a: b"},
		{Kind: store.EntryPartner, Name: " ", Document: "a: b"},
		{Kind: store.EntryPartner, Name: "x", Document: ""},
		{Kind: store.EntryPartner, Name: "x", Document: "a: b", Material: map[string][]byte{"../key.pem": nil}},
	} {
		if err := s.CreateConfigEntry(ctx, e); err == nil || errors.Is(err, store.ErrConflict) {
			t.Errorf("CreateConfigEntry(%+v) = %v, want a refusal", e, err)
		}
	}
}

func testEntryUpdateRevision(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := partnerEntry("ACME")
	if err := s.CreateConfigEntry(ctx, e); err != nil {
		t.Fatal(err)
	}
	upd := &store.ConfigEntry{Kind: e.Kind, Name: e.Name, Document: "as2_id: ACME\nurl: https://new.example/as2\n",
		Material: map[string][]byte{"other.pem": []byte("x")}, Revision: 1}
	if err := s.UpdateConfigEntry(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if upd.Revision != 2 {
		t.Errorf("revision after update = %d, want 2", upd.Revision)
	}
	stale := &store.ConfigEntry{Kind: e.Kind, Name: e.Name, Document: "as2_id: ACME\nurl: https://stale.example/as2\n", Revision: 1}
	if err := s.UpdateConfigEntry(ctx, stale); !errors.Is(err, store.ErrConflict) {
		t.Errorf("update from revision 1 after revision 2: %v, want ErrConflict", err)
	}
	got, err := s.ConfigEntry(ctx, e.Kind, e.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Document != upd.Document || got.Revision != 2 || len(got.Material) != 1 || got.Material["other.pem"] == nil {
		t.Errorf("after a stale update the entry is %+v, want revision 2 with its material replaced", got)
	}
	any := &store.ConfigEntry{Kind: e.Kind, Name: e.Name, Document: "as2_id: ACME\nurl: https://any.example/as2\n"}
	if err := s.UpdateConfigEntry(ctx, any); err != nil || any.Revision != 3 {
		t.Errorf("update with revision 0: %v, revision %d; want revision 3", err, any.Revision)
	}
	missing := partnerEntry("NOBODY")
	if err := s.UpdateConfigEntry(ctx, missing); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update of a missing entry: %v, want ErrNotFound", err)
	}
}

func testEntryDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	e := partnerEntry("ACME")
	if err := s.CreateConfigEntry(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteConfigEntry(ctx, e.Kind, e.Name, 7); !errors.Is(err, store.ErrConflict) {
		t.Errorf("delete at a stale revision: %v, want ErrConflict", err)
	}
	if err := s.DeleteConfigEntry(ctx, e.Kind, e.Name, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConfigEntry(ctx, e.Kind, e.Name); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after delete: %v, want ErrNotFound", err)
	}
	if err := s.DeleteConfigEntry(ctx, e.Kind, e.Name, 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second delete: %v, want ErrNotFound", err)
	}
	// The name is free again, with its material gone.
	again := partnerEntry("ACME")
	again.Material = nil
	if err := s.CreateConfigEntry(ctx, again); err != nil {
		t.Fatal(err)
	}
	got, err := s.ConfigEntry(ctx, e.Kind, e.Name)
	if err != nil || got.Revision != 1 || len(got.Material) != 0 {
		t.Errorf("re-created entry = %+v, %v; want revision 1 without the old material", got, err)
	}
}

func testEntryVersionAndEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	v0, err := s.ConfigVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e := partnerEntry("ACME")
	if err := s.CreateConfigEntry(ctx, e); err != nil {
		t.Fatal(err)
	}
	v1, _ := s.ConfigVersion(ctx)
	if err := s.UpdateConfigEntry(ctx, &store.ConfigEntry{Kind: e.Kind, Name: e.Name, Document: e.Document}); err != nil {
		t.Fatal(err)
	}
	v2, _ := s.ConfigVersion(ctx)
	// A refused write leaves the counter alone.
	if err := s.UpdateConfigEntry(ctx, &store.ConfigEntry{Kind: e.Kind, Name: e.Name, Document: e.Document, Revision: 1}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale update: %v", err)
	}
	v2b, _ := s.ConfigVersion(ctx)
	if err := s.DeleteConfigEntry(ctx, e.Kind, e.Name, 0); err != nil {
		t.Fatal(err)
	}
	v3, err := s.ConfigVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !(v0 < v1 && v1 < v2 && v2 == v2b && v2 < v3) {
		t.Errorf("versions %d, %d, %d, %d, %d: want a move on each write and none on a refused one", v0, v1, v2, v2b, v3)
	}
	evs, err := s.Timeline(ctx, store.EventFilter{Partner: "ACME"})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	want := []string{"config_deleted", "config_updated", "config_created"}
	if len(types) != 3 || types[0] != want[0] || types[1] != want[1] || types[2] != want[2] {
		t.Errorf("events = %v, want %v (newest first)", types, want)
	}
}

// testEntryBase: a write made with the change counter it was validated at succeeds only
// while the counter is still there.
func testEntryBase(t *testing.T, s store.Store) {
	ctx := t.Context()
	v0, err := s.ConfigVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a := partnerEntry("A")
	a.Base = v0
	if err := s.CreateConfigEntry(ctx, a); err != nil {
		t.Fatalf("create at the current counter: %v", err)
	}
	// v0 is stale now: each kind of write made from it is refused and changes nothing.
	b := partnerEntry("B")
	b.Base = v0
	if err := s.CreateConfigEntry(ctx, b); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("create at a stale counter: %v, want ErrConflict", err)
	}
	if _, err := s.ConfigEntry(ctx, store.EntryPartner, "B"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused create was stored: %v", err)
	}
	upd := partnerEntry("A")
	upd.Document, upd.Base = "url: https://changed.example/as2\n", v0
	if err := s.UpdateConfigEntry(ctx, upd); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("update at a stale counter: %v, want ErrConflict", err)
	}
	if err := s.DeleteConfigEntryAt(ctx, store.EntryPartner, "A", 0, v0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete at a stale counter: %v, want ErrConflict", err)
	}
	got, err := s.ConfigEntry(ctx, store.EntryPartner, "A")
	if err != nil || got.Revision != 1 || got.Document != a.Document {
		t.Fatalf("after refused writes A is %+v, %v; want revision 1 unchanged", got, err)
	}
	v1, err := s.ConfigVersion(ctx)
	if err != nil || v1 != v0+1 {
		t.Fatalf("counter %d, %v; want %d (refused writes do not move it)", v1, err, v0+1)
	}
	if err := s.DeleteConfigEntryAt(ctx, store.EntryPartner, "A", 0, v1); err != nil {
		t.Fatalf("delete at the current counter: %v", err)
	}
}
