package sqlite

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/storetest"
)

func open(t testing.TB, path string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
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
		return open(t, filepath.Join(t.TempDir(), "as2gate.db"))
	})
}

// TestSettings checks the connection settings the durability argument rests on, on the
// writer and on a reader.
func TestSettings(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "as2gate.db"))
	ctx := t.Context()
	tests := []struct {
		name   string
		reader bool
		pragma string
		want   string
	}{
		{"writer journal", false, "journal_mode", "wal"},
		{"writer sync", false, "synchronous", "2"},
		{"writer foreign keys", false, "foreign_keys", "1"},
		{"writer busy timeout", false, "busy_timeout", "5000"},
		{"writer writable", false, "query_only", "0"},
		{"reader journal", true, "journal_mode", "wal"},
		{"reader foreign keys", true, "foreign_keys", "1"},
		{"reader read-only", true, "query_only", "1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := s.w
			if tc.reader {
				db = s.r
			}
			var got string
			if err := db.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
			}
			if got != tc.want {
				t.Errorf("PRAGMA %s = %s, want %s", tc.pragma, got, tc.want)
			}
		})
	}
	if _, err := s.r.ExecContext(ctx, "DELETE FROM messages"); err == nil {
		t.Error("a write on the read pool succeeded, want it refused")
	}
}

// TestDurability writes through one Store, closes it, and reads everything back through a
// second one on the same file.
func TestDurability(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "as2gate.db")
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Second)

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	m := &store.Message{
		Direction: store.Outbound, Kind: store.KindMessage, MessageID: "<durable@as2gate.test>",
		Station: "GATEWAY", Partner: "PARTNERX", State: store.StateQueued, NextAttemptAt: now,
		Files: []store.File{{Name: "a.edi", ContentType: "application/edi-x12", Size: 3, SHA256: strings.Repeat("ab", 32)}},
	}
	if err := s.CreateMessage(ctx, m, &store.Event{Type: "submitted"}); err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}
	if _, err := s.Claim(ctx, store.ClaimRequest{Now: now, Owner: "w1", Lease: time.Minute, Limit: 1}); err != nil {
		t.Fatalf("Claim: %v", err)
	}
	fail := &store.Attempt{Class: store.ClassTransient, Code: "connect_refused", Error: "connection refused"}
	if err := s.Finish(ctx, m.ID, "w1", store.Outcome{State: store.StateQueued, NextAttemptAt: now.Add(time.Minute), Attempt: fail}); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	before, err := s.GetMessage(ctx, m.ID)
	if err != nil {
		t.Fatalf("GetMessage: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = open(t, path)
	after, err := s.GetMessage(ctx, m.ID)
	if err != nil {
		t.Fatalf("GetMessage after reopening: %v", err)
	}
	if after.State != store.StateQueued || after.Attempts != 1 || !after.NextAttemptAt.Equal(now.Add(time.Minute)) ||
		!after.UpdatedAt.Equal(before.UpdatedAt) || len(after.Files) != 1 || after.Files[0] != m.Files[0] {
		t.Errorf("after reopening: %+v\nbefore closing: %+v", after, before)
	}
	if attempts, err := s.Attempts(ctx, m.ID); err != nil || len(attempts) != 1 || attempts[0].Code != "connect_refused" {
		t.Errorf("Attempts after reopening = %d, %v; want the connect_refused attempt", len(attempts), err)
	}
	if evs, err := s.Events(ctx, "", "", 0, 0); err != nil || len(evs) != 1 || evs[0].MessageRow != m.ID {
		t.Errorf("Events after reopening = %d, %v; want the submitted event", len(evs), err)
	}
	// The timer survived: the retry is due at its time, not before.
	if next, ok, err := s.NextDue(ctx); err != nil || !ok || !next.Equal(now.Add(time.Minute)) {
		t.Errorf("NextDue after reopening = %v, %t, %v; want %v", next, ok, err, now.Add(time.Minute))
	}
}

// TestMigrationsIdempotent opens a database three times and migrates it once more by hand:
// the schema and the recorded versions stay as the first open left them.
func TestMigrationsIdempotent(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "as2gate.db")
	ctx := t.Context()

	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("embedded migrations: %v, %v", files, err)
	}
	schema := func(s *Store) (string, int) {
		t.Helper()
		var sqls []string
		rows, err := s.r.QueryContext(ctx, `SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY name`)
		if err != nil {
			t.Fatalf("reading the schema: %v", err)
		}
		defer rows.Close()
		for rows.Next() {
			var q string
			if err := rows.Scan(&q); err != nil {
				t.Fatalf("reading the schema: %v", err)
			}
			sqls = append(sqls, q)
		}
		var versions int
		if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM goose_db_version WHERE version_id > 0`).Scan(&versions); err != nil {
			t.Fatalf("reading goose_db_version: %v", err)
		}
		return strings.Join(sqls, "\n"), versions
	}

	first, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("first Open: %v", err)
	}
	wantSchema, wantVersions := schema(first)
	if wantVersions != len(files) {
		t.Errorf("%d versions recorded, want one per migration (%d)", wantVersions, len(files))
	}
	if !strings.Contains(wantSchema, "CREATE TABLE messages") {
		t.Errorf("schema without the messages table:\n%s", wantSchema)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for i := range 2 {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("Open %d: %v", i+2, err)
		}
		if err := migrate(ctx, s.w); err != nil {
			t.Errorf("migrating an up-to-date database: %v", err)
		}
		gotSchema, gotVersions := schema(s)
		if gotSchema != wantSchema || gotVersions != wantVersions {
			t.Errorf("open %d changed the database: %d versions, schema\n%s", i+2, gotVersions, gotSchema)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

func TestOpenPaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Characters that a connection string would otherwise read as parameters or escapes.
	name := filepath.Join(dir, "odd ?name#%41.db")
	s := open(t, name)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if _, err := os.Stat(name); err != nil {
		t.Errorf("database file: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "odd ?name#%41.db") {
			t.Errorf("unexpected file %q beside the database", e.Name())
		}
	}
}

func TestOpenRejects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		opts []Option
	}{
		{"no path", "", nil},
		{"missing folder", filepath.Join(dir, "missing", "as2gate.db"), nil},
		{"a folder", dir, nil},
		{"no readers", filepath.Join(dir, "a.db"), []Option{WithReaders(0)}},
		{"negative busy timeout", filepath.Join(dir, "b.db"), []Option{WithBusyTimeout(-time.Second)}},
		{"no clock", filepath.Join(dir, "c.db"), []Option{WithNow(nil)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.Context(), tc.path, tc.opts...)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded, want an error", tc.path)
			}
			if !strings.HasPrefix(err.Error(), "sqlite: ") {
				t.Errorf("error %q does not name the package", err)
			}
		})
	}
}

func TestOpenNotADatabase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "as2gate.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database\n", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(t.Context(), path); err == nil {
		s.Close()
		t.Fatal("Open of a text file succeeded, want an error")
	}
}

func TestClock(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
	s := open(t, filepath.Join(t.TempDir(), "as2gate.db"), WithNow(func() time.Time { return at }))
	ctx := t.Context()
	m := &store.Message{Direction: store.Inbound, MessageID: "<clock@as2gate.test>", Station: "GATEWAY",
		Partner: "PARTNERX", State: store.StateReceived}
	if err := s.CreateMessage(ctx, m, nil); err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}
	got, err := s.GetMessage(ctx, m.ID)
	if err != nil {
		t.Fatalf("GetMessage: %v", err)
	}
	if !got.CreatedAt.Equal(at) || got.CreatedAt.Location() != time.UTC || got.CreatedAt != m.CreatedAt {
		t.Errorf("CreatedAt = %v, set on the record %v; want %v in UTC", got.CreatedAt, m.CreatedAt, at)
	}
	if _, err := s.FindDuplicate(ctx, "GATEWAY", "PARTNERX", m.MessageID, at); err != nil {
		t.Errorf("FindDuplicate at the creation time: %v", err)
	}
	if _, err := s.FindDuplicate(ctx, "GATEWAY", "PARTNERX", m.MessageID, at.Add(time.Nanosecond)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FindDuplicate after the creation time = %v, want ErrNotFound", err)
	}
}

func BenchmarkCreateMessage(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "as2gate.db"))
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m := &store.Message{Direction: store.Outbound, Kind: store.KindMessage, MessageID: "<bench@as2gate.test>",
			Station: "GATEWAY", Partner: "PARTNERX", State: store.StateQueued}
		if err := s.CreateMessage(ctx, m, &store.Event{Type: "submitted"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClaimFinish measures one pass of a row through the queue: claim, then finish.
func BenchmarkClaimFinish(b *testing.B) {
	s := open(b, filepath.Join(b.TempDir(), "as2gate.db"))
	ctx := context.Background()
	now := time.Now()
	for range 1000 {
		m := &store.Message{Direction: store.Outbound, Kind: store.KindMessage, MessageID: "<bench@as2gate.test>",
			Station: "GATEWAY", Partner: "PARTNERX", State: store.StateQueued, NextAttemptAt: now}
		if err := s.CreateMessage(ctx, m, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		ms, err := s.Claim(ctx, store.ClaimRequest{Now: now, Owner: "w1", Lease: time.Minute, Limit: 1, PerPartner: 4})
		if err != nil || len(ms) != 1 {
			b.Fatalf("Claim = %d rows, %v", len(ms), err)
		}
		err = s.Finish(ctx, ms[0].ID, "w1", store.Outcome{State: store.StateQueued, NextAttemptAt: now,
			Attempt: &store.Attempt{Class: store.ClassTransient, Code: "http_503"}})
		if err != nil {
			b.Fatal(err)
		}
	}
}
