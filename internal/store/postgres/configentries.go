package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/as2gate/as2gate/internal/store"
)

// Writes of configuration entries are safe between nodes without an explicit lock: the
// revision is checked by the UPDATE or DELETE that writes (which, under READ COMMITTED,
// re-reads a row another transaction changed meanwhile), a create that loses a race meets
// the primary key, and the change counter moves with UPDATE version = version + 1 on its
// single row, whose lock puts every write in one order. Each transaction locks the entry's
// row before the counter's, so two writes never wait on each other in a circle.

// ConfigEntries implements store.ConfigEntries.
func (s *Store) ConfigEntries(ctx context.Context) ([]*store.ConfigEntry, error) {
	out, err := s.readEntries(ctx, `SELECT kind, name, document, revision, created_at, updated_at
		FROM config_entries ORDER BY kind COLLATE "C", name COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("postgres: config entries: %w", err)
	}
	return out, nil
}

// ConfigEntry implements store.ConfigEntries.
func (s *Store) ConfigEntry(ctx context.Context, kind, name string) (*store.ConfigEntry, error) {
	out, err := s.readEntries(ctx, `SELECT kind, name, document, revision, created_at, updated_at
		FROM config_entries WHERE kind = $1 AND name = $2`, kind, name)
	if err != nil {
		return nil, fmt.Errorf("postgres: config entry %s %q: %w", kind, name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("postgres: config entry %s %q: %w", kind, name, store.ErrNotFound)
	}
	return out[0], nil
}

// readEntries reads entries and their material from one snapshot (REPEATABLE READ), so
// that an entry never comes with another revision's files.
func (s *Store) readEntries(ctx context.Context, query string, args ...any) ([]*store.ConfigEntry, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var out []*store.ConfigEntry
	byKey := map[[2]string]*store.ConfigEntry{}
	for rows.Next() {
		var (
			e                store.ConfigEntry
			created, updated int64
		)
		if err := rows.Scan(&e.Kind, &e.Name, &e.Document, &e.Revision, &created, &updated); err != nil {
			rows.Close()
			return nil, err
		}
		e.CreatedAt, e.UpdatedAt = store.FromNano(created), store.FromNano(updated)
		e.Material = map[string][]byte{}
		out = append(out, &e)
		byKey[[2]string{e.Kind, e.Name}] = &e
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	mq := `SELECT kind, name, file, data FROM config_material`
	var margs []any
	if len(out) == 1 {
		mq += ` WHERE kind = $1 AND name = $2`
		margs = []any{out[0].Kind, out[0].Name}
	}
	mrows, err := tx.Query(ctx, mq, margs...)
	if err != nil {
		return nil, err
	}
	defer mrows.Close()
	for mrows.Next() {
		var kind, name, file string
		var data []byte
		if err := mrows.Scan(&kind, &name, &file, &data); err != nil {
			return nil, err
		}
		if e := byKey[[2]string{kind, name}]; e != nil {
			if data == nil {
				data = []byte{} // an empty file is a file, not a missing one
			}
			e.Material[file] = data
		}
	}
	return out, mrows.Err()
}

// CreateConfigEntry implements store.ConfigEntries.
func (s *Store) CreateConfigEntry(ctx context.Context, e *store.ConfigEntry) error {
	if err := store.CheckConfigEntry(e); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	now := s.clock()
	err := s.write(ctx, func(tx pgx.Tx) error {
		// ON CONFLICT waits for a concurrent insert of the same key and then does nothing,
		// where a unique violation would abort the transaction.
		tag, err := tx.Exec(ctx, `INSERT INTO config_entries (kind, name, document, revision, created_at, updated_at)
			VALUES ($1, $2, $3, 1, $4, $4) ON CONFLICT (kind, name) DO NOTHING`,
			e.Kind, e.Name, e.Document, store.UnixNano(now))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("%s %q exists: %w", e.Kind, e.Name, store.ErrConflict)
		}
		return writeMaterial(ctx, tx, e, "config_created", 1, now)
	})
	if err != nil {
		return fmt.Errorf("postgres: create config entry %s %q: %w", e.Kind, e.Name, err)
	}
	e.Revision, e.CreatedAt, e.UpdatedAt = 1, now, now
	return nil
}

// UpdateConfigEntry implements store.ConfigEntries.
func (s *Store) UpdateConfigEntry(ctx context.Context, e *store.ConfigEntry) error {
	if err := store.CheckConfigEntry(e); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	now := s.clock()
	var rev, created int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE config_entries SET document = $3, revision = revision + 1, updated_at = $4
			WHERE kind = $1 AND name = $2 AND ($5::bigint = 0 OR revision = $5::bigint) RETURNING revision, created_at`,
			e.Kind, e.Name, e.Document, store.UnixNano(now), e.Revision).Scan(&rev, &created)
		if errors.Is(err, pgx.ErrNoRows) {
			return whyNoRow(ctx, tx, e.Kind, e.Name, e.Revision)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM config_material WHERE kind = $1 AND name = $2`, e.Kind, e.Name); err != nil {
			return err
		}
		return writeMaterial(ctx, tx, e, "config_updated", rev, now)
	})
	if err != nil {
		return fmt.Errorf("postgres: update config entry %s %q: %w", e.Kind, e.Name, err)
	}
	e.Revision, e.CreatedAt, e.UpdatedAt = rev, store.FromNano(created), now
	return nil
}

// DeleteConfigEntry implements store.ConfigEntries. The material goes with the entry (ON
// DELETE CASCADE).
func (s *Store) DeleteConfigEntry(ctx context.Context, kind, name string, revision int64) error {
	return s.DeleteConfigEntryAt(ctx, kind, name, revision, 0)
}

// DeleteConfigEntryAt implements store.ConfigEntries.
func (s *Store) DeleteConfigEntryAt(ctx context.Context, kind, name string, revision, base int64) error {
	now := s.clock()
	err := s.write(ctx, func(tx pgx.Tx) error {
		var rev int64
		err := tx.QueryRow(ctx, `DELETE FROM config_entries WHERE kind = $1 AND name = $2 AND ($3::bigint = 0 OR revision = $3::bigint)
			RETURNING revision`, kind, name, revision).Scan(&rev)
		if errors.Is(err, pgx.ErrNoRows) {
			return whyNoRow(ctx, tx, kind, name, revision)
		}
		if err != nil {
			return err
		}
		return changed(ctx, tx, kind, name, base, "config_deleted", fmt.Sprintf("%s %s deleted at revision %d", kind, name, rev), now)
	})
	if err != nil {
		return fmt.Errorf("postgres: delete config entry %s %q: %w", kind, name, err)
	}
	return nil
}

// whyNoRow tells, after a write that matched no row, whether the entry is missing or at
// another revision than want.
func whyNoRow(ctx context.Context, tx pgx.Tx, kind, name string, want int64) error {
	var rev int64
	err := tx.QueryRow(ctx, `SELECT revision FROM config_entries WHERE kind = $1 AND name = $2`, kind, name).Scan(&rev)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("no %s %q: %w", kind, name, store.ErrNotFound)
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%s %q is at revision %d, not %d: %w", kind, name, rev, want, store.ErrConflict)
}

// writeMaterial inserts the entry's files, then records the change.
func writeMaterial(ctx context.Context, tx pgx.Tx, e *store.ConfigEntry, event string, rev int64, now time.Time) error {
	for f, data := range e.Material {
		if data == nil {
			data = []byte{}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO config_material (kind, name, file, data) VALUES ($1, $2, $3, $4)`,
			e.Kind, e.Name, f, data); err != nil {
			return err
		}
	}
	verb := "created"
	if event == "config_updated" {
		verb = "updated"
	}
	return changed(ctx, tx, e.Kind, e.Name, e.Base, event, fmt.Sprintf("%s %s %s, revision %d", e.Kind, e.Name, verb, rev), now)
}

// changed moves the change counter, provided it is still base (0: whatever it is), and
// writes the timeline event. The counter's row lock orders writers of every node, and a
// writer that waited re-reads the version before its condition is checked.
func changed(ctx context.Context, tx pgx.Tx, kind, name string, base int64, event, detail string, now time.Time) error {
	tag, err := tx.Exec(ctx, `UPDATE config_version SET version = version + 1 WHERE id = 1 AND ($1::bigint = 0 OR version = $1)`, base)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("the partners, stations or profiles changed meanwhile (another node?): read them again: %w", store.ErrConflict)
	}
	ev := &store.Event{Type: event, Detail: detail}
	if kind == store.EntryPartner {
		ev.Partner = name
	}
	return insertEvent(ctx, tx, ev, nil, now)
}

// ConfigVersion implements store.ConfigEntries.
func (s *Store) ConfigVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, `SELECT version FROM config_version WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres: config version: %w", err)
	}
	return v, nil
}
