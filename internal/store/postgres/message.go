package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/as2gate/as2gate/internal/store"
)

// messageColumns are the columns scanMessage reads, in its order. JSONB comes back as its
// text.
const messageColumns = `id, direction, kind, message_id, station, partner, subject, tag, state,
	files::text, wire, wire_header::text, mic, mdn_mode, mdn::text, url, related_id, attempts,
	next_attempt_at, lease_owner, lease_until, claimed_from, last_error, last_code, created_at,
	updated_at, delivered_at, retried_at, profile`

// defaultLimit is the page size of a list that does not ask for one.
const defaultLimit = 50

func limitOr(n int) int {
	if n <= 0 {
		return defaultLimit
	}
	return n
}

func scanMessage(row pgx.Row) (*store.Message, error) {
	var (
		m                                  store.Message
		files, header, mdn                 string
		related                            *int64
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
	if err := fromJSON("files", files, &m.Files); err != nil {
		return nil, fmt.Errorf("message %d: %w", m.ID, err)
	}
	if err := fromJSON("wire_header", header, &m.WireHeader); err != nil {
		return nil, fmt.Errorf("message %d: %w", m.ID, err)
	}
	if err := fromJSON("mdn", mdn, &m.MDN); err != nil {
		return nil, fmt.Errorf("message %d: %w", m.ID, err)
	}
	if related != nil {
		m.RelatedID = *related
	}
	m.NextAttemptAt = store.FromNano(next)
	m.LeaseUntil = store.FromNano(leaseUntil)
	m.CreatedAt = store.FromNano(created)
	m.UpdatedAt = store.FromNano(updated)
	m.DeliveredAt = store.FromNano(delivered)
	m.RetriedAt = store.FromNano(retried)
	return &m, nil
}

// queryMessages runs a query that selects messageColumns and collects the rows.
func queryMessages(ctx context.Context, q interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}, query string, args ...any) ([]*store.Message, error) {
	rows, err := q.Query(ctx, query, args...)
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
	err := s.write(ctx, func(tx pgx.Tx) error {
		if err := insertMessage(ctx, tx, m, now); err != nil {
			return err
		}
		if m.Direction == store.Outbound {
			if err := s.notifyDue(ctx, tx); err != nil {
				return err
			}
		}
		if ev == nil {
			return nil
		}
		return insertEvent(ctx, tx, ev, m, now)
	})
	if err != nil {
		m.ID = 0
		return fmt.Errorf("postgres: create message %s: %w", m.MessageID, err)
	}
	return nil
}

// dedupLock serialises the transactions that look for and insert one partner's Message-ID
// to one station, on every node: under READ COMMITTED a plain check-then-insert lets two
// copies through. The lock is a transaction advisory lock, released at commit, after which
// the next holder's statements see the inserted row.
const dedupLock = `SELECT pg_advisory_xact_lock($1, hashtext($2 || chr(31) || $3 || chr(31) || $4 || chr(31) || $5))`

// CreateInbound implements store.Store.
func (s *Store) CreateInbound(ctx context.Context, m *store.Message, mdnJob *store.Message, ev *store.Event, dedupSince time.Time) error {
	if m.Direction != store.Inbound {
		return fmt.Errorf("postgres: create inbound %s: direction %q is not inbound", m.MessageID, m.Direction)
	}
	if mdnJob != nil && (mdnJob.Direction != store.Outbound || mdnJob.Kind != store.KindMDN) {
		return fmt.Errorf("postgres: create inbound %s: the MDN job must be an outbound row of kind mdn", m.MessageID)
	}
	now := s.clock()
	var dup *store.Message
	err := s.write(ctx, func(tx pgx.Tx) error {
		dup = nil
		if !dedupSince.IsZero() {
			if _, err := tx.Exec(ctx, dedupLock, lockInbound, s.scope, m.Station, m.Partner, m.MessageID); err != nil {
				return err
			}
			d, err := scanMessage(tx.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages
				WHERE direction = 'in' AND station = $1 AND partner = $2 AND message_id = $3 AND created_at >= $4
				ORDER BY created_at DESC, id DESC LIMIT 1`,
				m.Station, m.Partner, m.MessageID, store.UnixNano(dedupSince)))
			if err == nil {
				dup = d
				return nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
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
			if err := s.notifyDue(ctx, tx); err != nil {
				return err
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
		return fmt.Errorf("postgres: create inbound %s: %w", m.MessageID, err)
	}
	if dup != nil {
		return &store.DuplicateError{Existing: dup}
	}
	return nil
}

// MarkDelivered implements store.Store.
func (s *Store) MarkDelivered(ctx context.Context, id int64, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE messages SET delivered_at = $1, updated_at = $2
		WHERE id = $3 AND direction = 'in'`, store.UnixNano(at), store.UnixNano(s.clock()), id)
	if err != nil {
		return fmt.Errorf("postgres: mark %d delivered: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: inbound message %d: %w", id, store.ErrNotFound)
	}
	return nil
}

// Undelivered implements store.Store.
func (s *Store) Undelivered(ctx context.Context, limit int) ([]*store.Message, error) {
	ms, err := queryMessages(ctx, s.pool, `SELECT `+messageColumns+` FROM messages
		WHERE direction = 'in' AND state = 'received' AND delivered_at = 0
		ORDER BY id LIMIT $1`, limitOr(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: undelivered messages: %w", err)
	}
	return ms, nil
}

// insertMessage inserts m in tx and sets its ID and times.
func insertMessage(ctx context.Context, tx pgx.Tx, m *store.Message, now time.Time) error {
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
	err = tx.QueryRow(ctx, `INSERT INTO messages (direction, kind, message_id,
		station, partner, subject, tag, state, files, wire, wire_header, mic, mdn_mode, mdn,
		url, related_id, attempts, next_attempt_at, lease_owner, lease_until, claimed_from,
		last_error, last_code, created_at, updated_at, delivered_at, profile)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11::jsonb, $12, $13, $14::jsonb,
		$15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)
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
	m, err := scanMessage(s.pool.QueryRow(ctx,
		`SELECT `+messageColumns+` FROM messages WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: message %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get message %d: %w", id, err)
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
	var w where
	if f.Box != "" {
		clause, ok := boxes[f.Box]
		if !ok {
			return nil, fmt.Errorf("postgres: list messages: unknown box %q", f.Box)
		}
		w.conds = append(w.conds, clause)
	}
	w.equal("direction", f.Direction)
	w.equal("partner", f.Partner)
	w.equal("state", f.State)
	w.equal("tag", f.Tag)
	if f.Q != "" {
		// The file names live in the files JSONB array; each name is matched on its own so
		// that the search does not match content types or digests.
		p := w.arg(likePattern(f.Q))
		w.conds = append(w.conds, `(subject ILIKE `+p+` ESCAPE '\' OR message_id ILIKE `+p+` ESCAPE '\'
			OR (jsonb_typeof(files) = 'array' AND EXISTS (SELECT 1 FROM jsonb_array_elements(files) f
				WHERE f->>'name' ILIKE `+p+` ESCAPE '\')))`)
	}
	w.between("created_at", f.From, f.To)
	w.before("id", f.Before)
	query := `SELECT ` + messageColumns + ` FROM messages` + w.String() +
		` ORDER BY id DESC LIMIT ` + w.arg(limitOr(f.Limit))
	ms, err := queryMessages(ctx, s.pool, query, w.args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list messages: %w", err)
	}
	return ms, nil
}

// FindByMessageID implements store.Store.
func (s *Store) FindByMessageID(ctx context.Context, direction, messageID string) (*store.Message, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE message_id = $1 AND direction = $2 ORDER BY id DESC LIMIT 1`, messageID, direction))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: %s message %s: %w", direction, messageID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: find message %s: %w", messageID, err)
	}
	return m, nil
}

// FindDuplicate implements store.Store.
func (s *Store) FindDuplicate(ctx context.Context, station, partner, messageID string, since time.Time) (*store.Message, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE direction = 'in' AND station = $1 AND partner = $2 AND message_id = $3 AND created_at >= $4
		ORDER BY created_at DESC, id DESC LIMIT 1`,
		station, partner, messageID, store.UnixNano(since)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: message %s from %s to %s: %w", messageID, partner, station, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: find duplicate %s: %w", messageID, err)
	}
	return m, nil
}
