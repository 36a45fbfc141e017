package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// ConfigEntries implements store.ConfigEntries.
func (s *Store) ConfigEntries(ctx context.Context) ([]*store.ConfigEntry, error) {
	out, err := s.readEntries(ctx, `SELECT kind, name, document, revision, created_at, updated_at
		FROM config_entries ORDER BY kind, name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: config entries: %w", err)
	}
	return out, nil
}

// ConfigEntry implements store.ConfigEntries.
func (s *Store) ConfigEntry(ctx context.Context, kind, name string) (*store.ConfigEntry, error) {
	out, err := s.readEntries(ctx, `SELECT kind, name, document, revision, created_at, updated_at
		FROM config_entries WHERE kind = ? AND name = ?`, kind, name)
	if err != nil {
		return nil, fmt.Errorf("sqlite: config entry %s %q: %w", kind, name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sqlite: config entry %s %q: %w", kind, name, store.ErrNotFound)
	}
	return out[0], nil
}

// readEntries reads entries and their material in one read transaction, so that an entry
// never comes with another revision's files.
func (s *Store) readEntries(ctx context.Context, query string, args ...any) ([]*store.ConfigEntry, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, query, args...)
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
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	mq := `SELECT kind, name, file, data FROM config_material`
	var margs []any
	if len(out) == 1 {
		mq += ` WHERE kind = ? AND name = ?`
		margs = []any{out[0].Kind, out[0].Name}
	}
	mrows, err := tx.QueryContext(ctx, mq, margs...)
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
		return fmt.Errorf("sqlite: %w", err)
	}
	now := s.clock()
	err := s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM config_entries WHERE kind = ? AND name = ?`, e.Kind, e.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%s %q exists: %w", e.Kind, e.Name, store.ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO config_entries (kind, name, document, revision, created_at, updated_at)
			VALUES (?, ?, ?, 1, ?, ?)`, e.Kind, e.Name, e.Document, store.UnixNano(now), store.UnixNano(now)); err != nil {
			return err
		}
		return writeMaterial(ctx, tx, e, "config_created", 1, now)
	})
	if err != nil {
		return fmt.Errorf("sqlite: create config entry %s %q: %w", e.Kind, e.Name, err)
	}
	e.Revision, e.CreatedAt, e.UpdatedAt = 1, now, now
	return nil
}

// UpdateConfigEntry implements store.ConfigEntries.
func (s *Store) UpdateConfigEntry(ctx context.Context, e *store.ConfigEntry) error {
	if err := store.CheckConfigEntry(e); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	now := s.clock()
	var rev int64
	var created int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := currentRevision(ctx, tx, e.Kind, e.Name, e.Revision, &rev, &created); err != nil {
			return err
		}
		rev++
		if _, err := tx.ExecContext(ctx, `UPDATE config_entries SET document = ?, revision = ?, updated_at = ?
			WHERE kind = ? AND name = ?`, e.Document, rev, store.UnixNano(now), e.Kind, e.Name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM config_material WHERE kind = ? AND name = ?`, e.Kind, e.Name); err != nil {
			return err
		}
		return writeMaterial(ctx, tx, e, "config_updated", rev, now)
	})
	if err != nil {
		return fmt.Errorf("sqlite: update config entry %s %q: %w", e.Kind, e.Name, err)
	}
	e.Revision, e.CreatedAt, e.UpdatedAt = rev, store.FromNano(created), now
	return nil
}

// DeleteConfigEntry implements store.ConfigEntries.
func (s *Store) DeleteConfigEntry(ctx context.Context, kind, name string, revision int64) error {
	return s.DeleteConfigEntryAt(ctx, kind, name, revision, 0)
}

// DeleteConfigEntryAt implements store.ConfigEntries.
func (s *Store) DeleteConfigEntryAt(ctx context.Context, kind, name string, revision, base int64) error {
	now := s.clock()
	err := s.write(ctx, func(tx *sql.Tx) error {
		var rev, created int64
		if err := currentRevision(ctx, tx, kind, name, revision, &rev, &created); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM config_material WHERE kind = ? AND name = ?`, kind, name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM config_entries WHERE kind = ? AND name = ?`, kind, name); err != nil {
			return err
		}
		return changed(ctx, tx, kind, name, base, "config_deleted", fmt.Sprintf("%s %s deleted at revision %d", kind, name, rev), now)
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete config entry %s %q: %w", kind, name, err)
	}
	return nil
}

// currentRevision reads the entry's revision and checks it against want (0: any).
func currentRevision(ctx context.Context, tx *sql.Tx, kind, name string, want int64, rev, created *int64) error {
	err := tx.QueryRowContext(ctx, `SELECT revision, created_at FROM config_entries WHERE kind = ? AND name = ?`, kind, name).Scan(rev, created)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("no %s %q: %w", kind, name, store.ErrNotFound)
	}
	if err != nil {
		return err
	}
	if want != 0 && want != *rev {
		return fmt.Errorf("%s %q is at revision %d, not %d: %w", kind, name, *rev, want, store.ErrConflict)
	}
	return nil
}

// writeMaterial inserts the entry's files, then records the change.
func writeMaterial(ctx context.Context, tx *sql.Tx, e *store.ConfigEntry, event string, rev int64, now time.Time) error {
	for f, data := range e.Material {
		if data == nil {
			data = []byte{}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO config_material (kind, name, file, data) VALUES (?, ?, ?, ?)`,
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
// writes the timeline event.
func changed(ctx context.Context, tx *sql.Tx, kind, name string, base int64, event, detail string, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE config_version SET version = version + 1 WHERE id = 1 AND (? = 0 OR version = ?)`, base, base)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
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
	if err := s.r.QueryRowContext(ctx, `SELECT version FROM config_version WHERE id = 1`).Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: config version: %w", err)
	}
	return v, nil
}
