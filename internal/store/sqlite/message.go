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

// messageColumns are the columns scanMessage reads, in its order.
const messageColumns = `id, direction, kind, message_id, station, partner, subject, tag, state,
	files, wire, wire_header, mic, mdn_mode, mdn, url, related_id, attempts, next_attempt_at,
	lease_owner, lease_until, claimed_from, last_error, last_code, created_at, updated_at, delivered_at,
	retried_at, profile`

// defaultLimit is the page size of a list that does not ask for one.
const defaultLimit = 50

type scanner interface {
	Scan(dest ...any) error
}

func scanMessage(row scanner) (*store.Message, error) {
	var (
		m                                  store.Message
		files, header, mdn                 string
		related                            sql.NullInt64
		next, leaseUntil, created, updated int64
		delivered, retried                 int64
	)
	err := row.Scan(&m.ID, &m.Direction, &m.Kind, &m.MessageID, &m.Station, &m.Partner,
		&m.Subject, &m.Tag, &m.State, &files, &m.Wire, &header, &m.MIC, &m.MDNMode, &mdn,
		&m.URL, &related, &m.Attempts, &next, &m.LeaseOwner, &leaseUntil, &m.ClaimedFrom,
		&m.LastError, &m.LastCode, &created, &updated, &delivered, &retried, &m.Profile)
	if err != nil {
		return nil, err
	}
	m.DeliveredAt = store.FromNano(delivered)
	m.RetriedAt = store.FromNano(retried)
	if err := fromJSON("files", files, &m.Files); err != nil {
		return nil, fmt.Errorf("message %d: %w", m.ID, err)
	}
	if err := fromJSON("wire_header", header, &m.WireHeader); err != nil {
		return nil, fmt.Errorf("message %d: %w", m.ID, err)
	}
	if err := fromJSON("mdn", mdn, &m.MDN); err != nil {
		return nil, fmt.Errorf("message %d: %w", m.ID, err)
	}
	m.RelatedID = related.Int64
	m.NextAttemptAt = store.FromNano(next)
	m.LeaseUntil = store.FromNano(leaseUntil)
	m.CreatedAt = store.FromNano(created)
	m.UpdatedAt = store.FromNano(updated)
	return &m, nil
}

// queryMessages runs a query that selects messageColumns and collects the rows.
func queryMessages(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args ...any) ([]*store.Message, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*store.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// CreateMessage implements store.Store.
func (s *Store) CreateMessage(ctx context.Context, m *store.Message, ev *store.Event) error {
	now := s.clock()
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := insertMessage(ctx, tx, m, now); err != nil {
			return err
		}
		if ev == nil {
			return nil
		}
		return insertEvent(ctx, tx, ev, m, now)
	})
	if err != nil {
		m.ID = 0
		return fmt.Errorf("sqlite: create message %s: %w", m.MessageID, err)
	}
	return nil
}

// CreateInbound implements store.Store.
func (s *Store) CreateInbound(ctx context.Context, m *store.Message, mdnJob *store.Message, ev *store.Event, dedupSince time.Time) error {
	if m.Direction != store.Inbound {
		return fmt.Errorf("sqlite: create inbound %s: direction %q is not inbound", m.MessageID, m.Direction)
	}
	if mdnJob != nil && (mdnJob.Direction != store.Outbound || mdnJob.Kind != store.KindMDN) {
		return fmt.Errorf("sqlite: create inbound %s: the MDN job must be an outbound row of kind mdn", m.MessageID)
	}
	now := s.clock()
	var dup *store.Message
	err := s.write(ctx, func(tx *sql.Tx) error {
		if !dedupSince.IsZero() {
			// The writer transaction is exclusive (BEGIN IMMEDIATE): no other copy can be
			// inserted between this check and the insert below.
			d, err := scanMessage(tx.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM messages
				WHERE direction = 'in' AND station = ? AND partner = ? AND message_id = ? AND created_at >= ?
				ORDER BY created_at DESC, id DESC LIMIT 1`,
				m.Station, m.Partner, m.MessageID, store.UnixNano(dedupSince)))
			if err == nil {
				dup = d
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if err := insertMessage(ctx, tx, m, now); err != nil {
			return err
		}
		if mdnJob != nil {
			mdnJob.RelatedID = m.ID
			if err := insertMessage(ctx, tx, mdnJob, now); err != nil {
				return fmt.Errorf("MDN job: %w", err)
			}
		}
		if ev == nil {
			return nil
		}
		return insertEvent(ctx, tx, ev, m, now)
	})
	if err != nil || dup != nil {
		m.ID = 0
		if mdnJob != nil {
			mdnJob.ID, mdnJob.RelatedID = 0, 0
		}
	}
	if err != nil {
		return fmt.Errorf("sqlite: create inbound %s: %w", m.MessageID, err)
	}
	if dup != nil {
		return &store.DuplicateError{Existing: dup}
	}
	return nil
}

// MarkDelivered implements store.Store.
func (s *Store) MarkDelivered(ctx context.Context, id int64, at time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE messages SET delivered_at = ?, updated_at = ?
			WHERE id = ? AND direction = 'in'`, store.UnixNano(at), store.UnixNano(s.clock()), id)
		if err != nil {
			return fmt.Errorf("sqlite: mark %d delivered: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("sqlite: inbound message %d: %w", id, store.ErrNotFound)
		}
		return nil
	})
}

// Undelivered implements store.Store.
func (s *Store) Undelivered(ctx context.Context, limit int) ([]*store.Message, error) {
	if limit <= 0 {
		limit = defaultLimit
	}
	ms, err := queryMessages(ctx, s.r, `SELECT `+messageColumns+` FROM messages
		WHERE direction = 'in' AND state = 'received' AND delivered_at = 0
		ORDER BY id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: undelivered messages: %w", err)
	}
	return ms, nil
}

// insertMessage inserts m in tx and sets its ID and times.
func insertMessage(ctx context.Context, tx *sql.Tx, m *store.Message, now time.Time) error {
	if err := store.CheckMessage(m); err != nil {
		return err
	}
	files, err := jsonText(m.Files)
	if err != nil {
		return fmt.Errorf("files: %w", err)
	}
	header, err := jsonText(m.WireHeader)
	if err != nil {
		return fmt.Errorf("wire header: %w", err)
	}
	mdn, err := jsonText(m.MDN)
	if err != nil {
		return fmt.Errorf("MDN: %w", err)
	}
	var id int64
	err = tx.QueryRowContext(ctx, `INSERT INTO messages (direction, kind, message_id,
		station, partner, subject, tag, state, files, wire, wire_header, mic, mdn_mode, mdn,
		url, related_id, attempts, next_attempt_at, lease_owner, lease_until, claimed_from,
		last_error, last_code, created_at, updated_at, delivered_at, profile)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		RETURNING id`,
		m.Direction, m.Kind, m.MessageID, m.Station, m.Partner, m.Subject, m.Tag, m.State,
		files, m.Wire, header, m.MIC, m.MDNMode, mdn, m.URL, nullID(m.RelatedID), m.Attempts,
		store.UnixNano(m.NextAttemptAt), m.LeaseOwner, store.UnixNano(m.LeaseUntil), m.ClaimedFrom,
		m.LastError, m.LastCode, store.UnixNano(now), store.UnixNano(now), store.UnixNano(m.DeliveredAt), m.Profile).Scan(&id)
	if err != nil {
		return err
	}
	m.ID, m.CreatedAt, m.UpdatedAt = id, now, now
	return nil
}

// GetMessage implements store.Store.
func (s *Store) GetMessage(ctx context.Context, id int64) (*store.Message, error) {
	m, err := scanMessage(s.r.QueryRowContext(ctx,
		`SELECT `+messageColumns+` FROM messages WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: message %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get message %d: %w", id, err)
	}
	return m, nil
}

// boxes are the WHERE clauses of the console's mailboxes (see store.Filter).
var boxes = map[string]string{
	"outbox":   `direction = 'out' AND kind = 'message' AND state IN ('queued', 'sending', 'awaiting_mdn') AND attempts = 0`,
	"queued":   `direction = 'out' AND kind = 'message' AND state IN ('queued', 'sending', 'awaiting_mdn') AND attempts > 0`,
	"sent":     `direction = 'out' AND kind = 'message' AND state = 'sent'`,
	"failed":   `direction = 'out' AND kind = 'message' AND state = 'failed'`,
	"received": `direction = 'in' AND state IN ('received', 'suspended')`,
}

// ListMessages implements store.Store.
func (s *Store) ListMessages(ctx context.Context, f store.Filter) ([]*store.Message, error) {
	var (
		where []string
		args  []any
	)
	if f.Box != "" {
		clause, ok := boxes[f.Box]
		if !ok {
			return nil, fmt.Errorf("sqlite: list messages: unknown box %q", f.Box)
		}
		where = append(where, clause)
	}
	for _, c := range []struct{ column, value string }{
		{"direction", f.Direction},
		{"partner", f.Partner},
		{"state", f.State},
		{"tag", f.Tag},
	} {
		if c.value != "" {
			where = append(where, c.column+" = ?")
			args = append(args, c.value)
		}
	}
	if f.Q != "" {
		// The file names live in the files JSON column; json_each reads them one by one
		// so that the search does not match content types or digests.
		where = append(where, `(subject LIKE ? ESCAPE '\' OR message_id LIKE ? ESCAPE '\'
			OR EXISTS (SELECT 1 FROM json_each(messages.files)
				WHERE json_extract(value, '$.name') LIKE ? ESCAPE '\'))`)
		p := likePattern(f.Q)
		args = append(args, p, p, p)
	}
	if !f.From.IsZero() {
		where = append(where, "created_at >= ?")
		args = append(args, store.UnixNano(f.From))
	}
	if !f.To.IsZero() {
		where = append(where, "created_at < ?")
		args = append(args, store.UnixNano(f.To))
	}
	if f.Before != 0 {
		where = append(where, "id < ?")
		args = append(args, f.Before)
	}
	query := `SELECT ` + messageColumns + ` FROM messages`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limitOr(f.Limit))
	ms, err := queryMessages(ctx, s.r, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list messages: %w", err)
	}
	return ms, nil
}

func limitOr(n int) int {
	if n <= 0 {
		return defaultLimit
	}
	return n
}

// FindByMessageID implements store.Store.
func (s *Store) FindByMessageID(ctx context.Context, direction, messageID string) (*store.Message, error) {
	m, err := scanMessage(s.r.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE message_id = ? AND direction = ? ORDER BY id DESC LIMIT 1`, messageID, direction))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: %s message %s: %w", direction, messageID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: find message %s: %w", messageID, err)
	}
	return m, nil
}

// FindDuplicate implements store.Store.
func (s *Store) FindDuplicate(ctx context.Context, station, partner, messageID string, since time.Time) (*store.Message, error) {
	m, err := scanMessage(s.r.QueryRowContext(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE direction = 'in' AND station = ? AND partner = ? AND message_id = ? AND created_at >= ?
		ORDER BY created_at DESC, id DESC LIMIT 1`,
		station, partner, messageID, store.UnixNano(since)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: message %s from %s to %s: %w", messageID, partner, station, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: find duplicate %s: %w", messageID, err)
	}
	return m, nil
}
