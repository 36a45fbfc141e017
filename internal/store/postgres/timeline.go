package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/as2gate/as2gate/internal/store"
)

// insertAttempt writes failed attempt a of message row and sets its ID, MessageRow, and At
// when zero.
func insertAttempt(ctx context.Context, tx pgx.Tx, row int64, a *store.Attempt, now time.Time) error {
	header, err := jsonText(a.Header)
	if err != nil {
		return fmt.Errorf("attempt header: %w", err)
	}
	at := a.At
	if at.IsZero() {
		at = now
	}
	var id int64
	err = tx.QueryRow(ctx, `INSERT INTO attempts (message_row, at, class, code,
		http_status, header, body_excerpt, error, action)
		VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9) RETURNING id`,
		row, store.UnixNano(at), a.Class, a.Code, a.HTTPStatus, header, a.BodyExcerpt, a.Error,
		a.Action).Scan(&id)
	if err != nil {
		return fmt.Errorf("attempt: %w", err)
	}
	a.ID, a.MessageRow, a.At = id, row, at
	return nil
}

// insertEvent writes ev and sets its ID, and At when zero. With m, the event is about that
// message: it takes its row, and its direction, partner and tag where ev leaves them empty.
func insertEvent(ctx context.Context, tx pgx.Tx, ev *store.Event, m *store.Message, now time.Time) error {
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
	err := tx.QueryRow(ctx, `INSERT INTO events (at, message_row, direction, partner,
		tag, type, detail) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		store.UnixNano(ev.At), nullID(ev.MessageRow), ev.Direction, ev.Partner, ev.Tag, ev.Type,
		ev.Detail).Scan(&ev.ID)
	if err != nil {
		return fmt.Errorf("event %s: %w", ev.Type, err)
	}
	return nil
}

// Attempts implements store.Store.
func (s *Store) Attempts(ctx context.Context, messageRow int64) ([]*store.Attempt, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, message_row, at, class, code, http_status,
		header::text, body_excerpt, error, action FROM attempts WHERE message_row = $1 ORDER BY id`,
		messageRow)
	if err != nil {
		return nil, fmt.Errorf("postgres: attempts of message %d: %w", messageRow, err)
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
			return nil, fmt.Errorf("postgres: attempts of message %d: %w", messageRow, err)
		}
		if err := fromJSON("header", header, &a.Header); err != nil {
			return nil, fmt.Errorf("postgres: attempt %d: %w", a.ID, err)
		}
		a.At = store.FromNano(at)
		out = append(out, &a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: attempts of message %d: %w", messageRow, err)
	}
	return out, nil
}

// AddEvent implements store.Store.
func (s *Store) AddEvent(ctx context.Context, ev *store.Event) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		return insertEvent(ctx, tx, ev, nil, s.clock())
	})
	if err != nil {
		return fmt.Errorf("postgres: add event: %w", err)
	}
	return nil
}

// Events implements store.Store.
func (s *Store) Events(ctx context.Context, partner, direction string, limit int, before int64) ([]*store.Event, error) {
	return s.Timeline(ctx, store.EventFilter{Partner: partner, Direction: direction, Limit: limit, Before: before})
}

// Timeline implements store.Store.
func (s *Store) Timeline(ctx context.Context, f store.EventFilter) ([]*store.Event, error) {
	var w where
	w.equal("e.partner", f.Partner)
	w.equal("e.direction", f.Direction)
	w.equal("e.tag", f.Tag)
	w.between("e.at", f.From, f.To)
	w.before("e.id", f.Before)
	query := `SELECT e.id, e.at, e.message_row, e.direction, e.partner, e.tag, e.type, e.detail
		FROM events e`
	if f.State != "" {
		// The message's state now, not when the event was written: "the timeline of the
		// messages that failed".
		query += ` JOIN messages m ON m.id = e.message_row`
		w.equal("m.state", f.State)
	}
	query += w.String() + ` ORDER BY e.id DESC LIMIT ` + w.arg(limitOr(f.Limit))
	rows, err := s.pool.Query(ctx, query, w.args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: events: %w", err)
	}
	defer rows.Close()
	var out []*store.Event
	for rows.Next() {
		var (
			ev  store.Event
			at  int64
			row *int64
		)
		if err := rows.Scan(&ev.ID, &at, &row, &ev.Direction, &ev.Partner, &ev.Tag, &ev.Type,
			&ev.Detail); err != nil {
			return nil, fmt.Errorf("postgres: events: %w", err)
		}
		ev.At = store.FromNano(at)
		if row != nil {
			ev.MessageRow = *row
		}
		out = append(out, &ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: events: %w", err)
	}
	return out, nil
}

// Failures implements store.Store.
func (s *Store) Failures(ctx context.Context, f store.FailureFilter) ([]*store.Failure, error) {
	var w where
	w.equal("m.partner", f.Partner)
	w.equal("a.class", f.Class)
	w.equal("a.code", f.Code)
	w.between("a.at", f.From, f.To)
	w.before("a.id", f.Before)
	query := `SELECT a.id, a.message_row, a.at, a.class, a.code, a.http_status, a.header::text,
		a.body_excerpt, a.error, a.action, m.message_id, m.partner, m.direction
		FROM attempts a JOIN messages m ON m.id = a.message_row` +
		w.String() + ` ORDER BY a.id DESC LIMIT ` + w.arg(limitOr(f.Limit))
	rows, err := s.pool.Query(ctx, query, w.args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: failures: %w", err)
	}
	defer rows.Close()
	var out []*store.Failure
	for rows.Next() {
		var (
			fl     store.Failure
			at     int64
			header string
		)
		if err := rows.Scan(&fl.ID, &fl.MessageRow, &at, &fl.Class, &fl.Code, &fl.HTTPStatus,
			&header, &fl.BodyExcerpt, &fl.Error, &fl.Action, &fl.MessageID, &fl.Partner,
			&fl.Direction); err != nil {
			return nil, fmt.Errorf("postgres: failures: %w", err)
		}
		if err := fromJSON("header", header, &fl.Header); err != nil {
			return nil, fmt.Errorf("postgres: attempt %d: %w", fl.ID, err)
		}
		fl.At = store.FromNano(at)
		out = append(out, &fl)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: failures: %w", err)
	}
	return out, nil
}
