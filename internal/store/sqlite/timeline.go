package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// insertAttempt writes failed attempt a of message row and sets its ID, MessageRow, and At
// when zero.
func insertAttempt(ctx context.Context, tx *sql.Tx, row int64, a *store.Attempt, now time.Time) error {
	header, err := jsonText(a.Header)
	if err != nil {
		return fmt.Errorf("attempt header: %w", err)
	}
	at := a.At
	if at.IsZero() {
		at = now
	}
	var id int64
	err = tx.QueryRowContext(ctx, `INSERT INTO attempts (message_row, at, class, code,
		http_status, header, body_excerpt, error, action)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		row, unixNano(at), a.Class, a.Code, a.HTTPStatus, header, a.BodyExcerpt, a.Error,
		a.Action).Scan(&id)
	if err != nil {
		return fmt.Errorf("attempt: %w", err)
	}
	a.ID, a.MessageRow, a.At = id, row, at
	return nil
}

// insertEvent writes ev and sets its ID, and At when zero. With m, the event is about that
// message: it takes its row, and its direction, partner and tag where ev leaves them empty.
func insertEvent(ctx context.Context, tx *sql.Tx, ev *store.Event, m *store.Message, now time.Time) error {
	if ev.Type == "" {
		return errors.New("event without a type")
	}
	if m != nil {
		ev.MessageRow = m.ID
		if ev.Direction == "" {
			ev.Direction = m.Direction
		}
		if ev.Partner == "" {
			ev.Partner = m.Partner
		}
		if ev.Tag == "" {
			ev.Tag = m.Tag
		}
	}
	if ev.At.IsZero() {
		ev.At = now
	}
	err := tx.QueryRowContext(ctx, `INSERT INTO events (at, message_row, direction, partner,
		tag, type, detail) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		unixNano(ev.At), nullID(ev.MessageRow), ev.Direction, ev.Partner, ev.Tag, ev.Type,
		ev.Detail).Scan(&ev.ID)
	if err != nil {
		return fmt.Errorf("event %s: %w", ev.Type, err)
	}
	return nil
}

// Attempts implements store.Store.
func (s *Store) Attempts(ctx context.Context, messageRow int64) ([]*store.Attempt, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, message_row, at, class, code, http_status,
		header, body_excerpt, error, action FROM attempts WHERE message_row = ? ORDER BY id`,
		messageRow)
	if err != nil {
		return nil, fmt.Errorf("sqlite: attempts of message %d: %w", messageRow, err)
	}
	defer rows.Close()
	var out []*store.Attempt
	for rows.Next() {
		var (
			a      store.Attempt
			at     int64
			header string
		)
		if err := rows.Scan(&a.ID, &a.MessageRow, &at, &a.Class, &a.Code, &a.HTTPStatus,
			&header, &a.BodyExcerpt, &a.Error, &a.Action); err != nil {
			return nil, fmt.Errorf("sqlite: attempts of message %d: %w", messageRow, err)
		}
		if err := fromJSON("header", header, &a.Header); err != nil {
			return nil, fmt.Errorf("sqlite: attempt %d: %w", a.ID, err)
		}
		a.At = fromNano(at)
		out = append(out, &a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: attempts of message %d: %w", messageRow, err)
	}
	return out, nil
}

// AddEvent implements store.Store.
func (s *Store) AddEvent(ctx context.Context, ev *store.Event) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		return insertEvent(ctx, tx, ev, nil, s.clock())
	})
	if err != nil {
		return fmt.Errorf("sqlite: add event: %w", err)
	}
	return nil
}

// Events implements store.Store.
func (s *Store) Events(ctx context.Context, partner, direction string, limit int, before int64) ([]*store.Event, error) {
	var (
		where []string
		args  []any
	)
	if partner != "" {
		where = append(where, "partner = ?")
		args = append(args, partner)
	}
	if direction != "" {
		where = append(where, "direction = ?")
		args = append(args, direction)
	}
	if before != 0 {
		where = append(where, "id < ?")
		args = append(args, before)
	}
	query := `SELECT id, at, message_row, direction, partner, tag, type, detail FROM events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limitOr(limit))
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", err)
	}
	defer rows.Close()
	var out []*store.Event
	for rows.Next() {
		var (
			ev  store.Event
			at  int64
			row sql.NullInt64
		)
		if err := rows.Scan(&ev.ID, &at, &row, &ev.Direction, &ev.Partner, &ev.Tag, &ev.Type,
			&ev.Detail); err != nil {
			return nil, fmt.Errorf("sqlite: events: %w", err)
		}
		ev.At, ev.MessageRow = fromNano(at), row.Int64
		out = append(out, &ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", err)
	}
	return out, nil
}
