package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// claimDue lists the due rows, oldest due first: by next_attempt_at when queued or awaiting
// an MDN, by the lease when a worker holds the row and the lease has run out. ?2 is the
// number of rows wanted, or -1 for all of them.
const claimDue = `
SELECT id, partner FROM (
	SELECT id, partner, next_attempt_at AS due_at FROM messages
	WHERE state IN ('queued', 'awaiting_mdn') AND next_attempt_at <= ?1
	UNION ALL
	SELECT id, partner, lease_until AS due_at FROM messages
	WHERE state = 'sending' AND lease_until <= ?1
) ORDER BY due_at, id LIMIT ?2`

// claimActive counts each partner's rows in flight under a live lease.
const claimActive = `
SELECT partner, COUNT(*) FROM messages
WHERE state = 'sending' AND lease_until > ? GROUP BY partner`

// Claim implements store.Store. The selection and the update run in one write transaction,
// and writes are serialised, so two claims never take the same row.
func (s *Store) Claim(ctx context.Context, r store.ClaimRequest) ([]*store.Message, error) {
	switch {
	case r.Now.IsZero():
		return nil, errors.New("sqlite: claim: no Now")
	case r.Owner == "":
		return nil, errors.New("sqlite: claim: no owner")
	case r.Lease <= 0:
		return nil, fmt.Errorf("sqlite: claim: lease %v is not positive", r.Lease)
	case r.Limit <= 0:
		return nil, fmt.Errorf("sqlite: claim: limit %d is not positive", r.Limit)
	case r.PerPartner < 0:
		return nil, fmt.Errorf("sqlite: claim: per-partner limit %d is negative", r.PerPartner)
	}
	now := store.UnixNano(r.Now)
	until := store.UnixNano(r.Now.Add(r.Lease))
	var claimed []*store.Message
	err := s.write(ctx, func(tx *sql.Tx) error {
		ids, err := claimable(ctx, tx, r, now)
		if err != nil || len(ids) == 0 {
			return err
		}
		// The IDs go in as one JSON array, whatever the limit: no statement to build, and no
		// bound on the number of SQL variables to meet.
		list, err := jsonText(ids)
		if err != nil {
			return err
		}
		// A row reclaimed from a lost worker keeps claimed_from: it says what the row was
		// claimed for the first time.
		ms, err := queryMessages(ctx, tx, `UPDATE messages SET state = 'sending',
			claimed_from = CASE state WHEN 'sending' THEN claimed_from ELSE state END,
			lease_owner = ?, lease_until = ?, updated_at = ?
			WHERE id IN (SELECT value FROM json_each(?))
			RETURNING `+messageColumns, r.Owner, until, store.UnixNano(s.clock()), list)
		if err != nil {
			return err
		}
		// RETURNING gives no order: put the rows back in due order.
		order := make(map[int64]int, len(ids))
		for i, id := range ids {
			order[id] = i
		}
		slices.SortFunc(ms, func(a, b *store.Message) int { return order[a.ID] - order[b.ID] })
		claimed = ms
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim for %s: %w", r.Owner, err)
	}
	return claimed, nil
}

// claimable picks the IDs a claim takes, in due order. Without a per-partner limit the
// database stops at the limit; with one, the due rows stream past a count of each partner's
// rows in flight, which costs far less than ranking them with a window function in SQL.
func claimable(ctx context.Context, tx *sql.Tx, r store.ClaimRequest, now int64) ([]int64, error) {
	active := map[string]int{}
	limit := r.Limit
	limited := r.PerPartner > 0
	for _, n := range r.PartnerLimits {
		limited = limited || n > 0
	}
	if limited {
		limit = -1
		counts, err := tx.QueryContext(ctx, claimActive, now)
		if err != nil {
			return nil, err
		}
		defer counts.Close()
		for counts.Next() {
			var (
				partner string
				n       int
			)
			if err := counts.Scan(&partner, &n); err != nil {
				return nil, err
			}
			active[partner] = n
		}
		if err := counts.Err(); err != nil {
			return nil, err
		}
	}
	rows, err := tx.QueryContext(ctx, claimDue, now, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for len(ids) < r.Limit && rows.Next() {
		var (
			id      int64
			partner string
		)
		if err := rows.Scan(&id, &partner); err != nil {
			return nil, err
		}
		max := r.PerPartner
		if n, ok := r.PartnerLimits[partner]; ok {
			max = n
		}
		if max > 0 {
			if active[partner] >= max {
				continue
			}
			active[partner]++
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// leased reads the row id inside tx and checks that owner holds its lease.
func leased(ctx context.Context, tx *sql.Tx, id int64, owner string) (*store.Message, error) {
	m, err := lockedMessage(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if m.State != store.StateSending || m.LeaseOwner != owner {
		return nil, fmt.Errorf("message %d is %s, leased to %q, not to %q: %w",
			id, m.State, m.LeaseOwner, owner, store.ErrConflict)
	}
	return m, nil
}

// lockedMessage reads the row id inside a write transaction, which holds the write lock.
func lockedMessage(ctx context.Context, tx *sql.Tx, id int64) (*store.Message, error) {
	m, err := scanMessage(tx.QueryRowContext(ctx,
		`SELECT `+messageColumns+` FROM messages WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("message %d: %w", id, store.ErrNotFound)
	}
	return m, err
}

// SetWire implements store.Store. The wire message is set once: a second call with other
// bytes is a conflict, since every retry must send the same bytes; the same bytes again are
// accepted, so that a worker may repeat a call whose answer it lost.
func (s *Store) SetWire(ctx context.Context, id int64, owner, wire string, header http.Header, mic string) error {
	if wire == "" {
		return fmt.Errorf("sqlite: set wire of message %d: no wire key", id)
	}
	h, err := jsonText(header)
	if err != nil {
		return fmt.Errorf("sqlite: set wire of message %d: header: %w", id, err)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		m, err := leased(ctx, tx, id, owner)
		if err != nil {
			return err
		}
		if m.Wire != "" && m.Wire != wire {
			return fmt.Errorf("message %d already has wire %s: %w", id, m.Wire, store.ErrConflict)
		}
		_, err = tx.ExecContext(ctx, `UPDATE messages SET wire = ?, wire_header = ?, mic = ?,
			updated_at = ? WHERE id = ?`, wire, h, mic, store.UnixNano(s.clock()), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: set wire: %w", err)
	}
	return nil
}

// Finish implements store.Store.
func (s *Store) Finish(ctx context.Context, id int64, owner string, o store.Outcome) error {
	if err := store.CheckOutcome(o, store.StateQueued, store.StateAwaitingMDN, store.StateSent, store.StateFailed); err != nil {
		return fmt.Errorf("sqlite: finish message %d: %w", id, err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		m, err := leased(ctx, tx, id, owner)
		if err != nil {
			return err
		}
		return s.record(ctx, tx, m, o)
	})
	if err != nil {
		return fmt.Errorf("sqlite: finish: %w", err)
	}
	return nil
}

// CompleteMDN implements store.Store. It drops any lease: a worker that still holds one gets
// ErrConflict when it finishes.
func (s *Store) CompleteMDN(ctx context.Context, id int64, o store.Outcome) error {
	if err := store.CheckOutcome(o, store.StateSent, store.StateFailed, store.StateQueued); err != nil {
		return fmt.Errorf("sqlite: complete MDN of message %d: %w", id, err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		m, err := lockedMessage(ctx, tx, id)
		if err != nil {
			return err
		}
		if m.Direction != store.Outbound || (m.State != store.StateAwaitingMDN && m.State != store.StateSending) {
			return fmt.Errorf("%s message %d is %s, not waiting for an MDN: %w",
				m.Direction, id, m.State, store.ErrConflict)
		}
		return s.record(ctx, tx, m, o)
	})
	if err != nil {
		return fmt.Errorf("sqlite: complete MDN: %w", err)
	}
	return nil
}

// record writes outcome o of message m: the new state, the receipt, the failed attempt and
// the event, and drops the lease.
func (s *Store) record(ctx context.Context, tx *sql.Tx, m *store.Message, o store.Outcome) error {
	now := s.clock()
	attempts, lastError, lastCode := m.Attempts, m.LastError, m.LastCode
	if a := o.Attempt; a != nil {
		attempts++
		lastError, lastCode = a.Error, a.Code
	}
	mdn := m.MDN
	if o.MDN != nil {
		mdn = o.MDN
	}
	mdnText, err := jsonText(mdn)
	if err != nil {
		return fmt.Errorf("MDN: %w", err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE messages SET state = ?, next_attempt_at = ?, mdn = ?,
		attempts = ?, last_error = ?, last_code = ?,
		lease_owner = '', lease_until = 0, claimed_from = '', updated_at = ?
		WHERE id = ?`,
		o.State, store.UnixNano(o.NextAttemptAt), mdnText, attempts, lastError, lastCode,
		store.UnixNano(now), m.ID)
	if err != nil {
		return err
	}
	if o.Attempt != nil {
		if err := insertAttempt(ctx, tx, m.ID, o.Attempt, now); err != nil {
			return err
		}
	}
	if o.Event != nil {
		if err := insertEvent(ctx, tx, o.Event, m, now); err != nil {
			return err
		}
	}
	return nil
}

// Release implements store.Store.
func (s *Store) Release(ctx context.Context, id int64, owner string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		m, err := leased(ctx, tx, id, owner)
		if err != nil {
			return err
		}
		now := s.clock()
		state, next := store.StateQueued, now
		if m.ClaimedFrom == store.StateAwaitingMDN {
			state, next = store.StateAwaitingMDN, m.NextAttemptAt
		}
		_, err = tx.ExecContext(ctx, `UPDATE messages SET state = ?, next_attempt_at = ?,
			lease_owner = '', lease_until = 0, claimed_from = '', updated_at = ?
			WHERE id = ?`, state, store.UnixNano(next), store.UnixNano(now), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: release: %w", err)
	}
	return nil
}

// NextDue implements store.Store. Each arm reads the first entry of the due index for its
// state, so the answer costs two index lookups however long the queue is.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	var next sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT MIN(t) FROM (
		SELECT MIN(next_attempt_at) AS t FROM messages WHERE state = 'queued'
		UNION ALL
		SELECT MIN(next_attempt_at) FROM messages WHERE state = 'awaiting_mdn')`).Scan(&next)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("sqlite: next due: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return store.FromNano(next.Int64), true, nil
}
