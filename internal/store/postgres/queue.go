package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/as2gate/as2gate/internal/store"
)

// isDue is the condition of a claimable row at $1: queued or awaiting an MDN and due, or in
// sending under a lease that has run out (its node stopped or died).
const isDue = `((state IN ('queued', 'awaiting_mdn') AND next_attempt_at <= $1)
	OR (state = 'sending' AND lease_until <= $1))`

// dueAt orders claimable rows, oldest due first: by next_attempt_at when queued or awaiting
// an MDN, by the lease when a worker held the row.
const dueAt = `CASE WHEN state = 'sending' THEN lease_until ELSE next_attempt_at END`

// Claim implements store.Store.
//
// Without a per-partner limit the due rows are locked with FOR UPDATE SKIP LOCKED up to the
// limit: concurrent claims on any node take disjoint rows and never wait for each other. A
// per-partner limit needs more, since SKIP LOCKED does not count the rows another
// transaction is claiming: the claim takes a transaction advisory lock on each partner with
// due rows and a free slot, in one global order (no deadlock), counts each partner's rows in
// flight once it holds the lock, and only then picks and locks rows. Two claims for one
// partner run one after the other, and the second sees the first's rows in flight; claims
// for other partners, and claims while every partner is at its limit, do not wait.
func (s *Store) Claim(ctx context.Context, r store.ClaimRequest) ([]*store.Message, error) {
	switch {
	case r.Now.IsZero():
		return nil, errors.New("postgres: claim: no Now")
	case r.Owner == "":
		return nil, errors.New("postgres: claim: no owner")
	case r.Lease <= 0:
		return nil, fmt.Errorf("postgres: claim: lease %v is not positive", r.Lease)
	case r.Limit <= 0:
		return nil, fmt.Errorf("postgres: claim: limit %d is not positive", r.Limit)
	case r.PerPartner < 0:
		return nil, fmt.Errorf("postgres: claim: per-partner limit %d is negative", r.PerPartner)
	}
	now := store.UnixNano(r.Now)
	until := store.UnixNano(r.Now.Add(r.Lease))
	limited := r.PerPartner > 0
	for _, n := range r.PartnerLimits {
		limited = limited || n > 0
	}
	var claimed []*store.Message
	err := s.write(ctx, func(tx pgx.Tx) error {
		claimed = nil
		var (
			ids []int64
			err error
		)
		if limited {
			ids, err = s.claimLimited(ctx, tx, r, now)
		} else {
			ids, err = collectIDs(tx.Query(ctx, `SELECT id FROM messages WHERE `+isDue+`
				ORDER BY `+dueAt+`, id LIMIT $2 FOR UPDATE SKIP LOCKED`, now, r.Limit))
		}
		if err != nil || len(ids) == 0 {
			return err
		}
		// A row reclaimed from a lost worker keeps claimed_from: it says what the row was
		// claimed for the first time.
		ms, err := queryMessages(ctx, tx, `UPDATE messages SET state = 'sending',
			claimed_from = CASE state WHEN 'sending' THEN claimed_from ELSE state END,
			lease_owner = $1, lease_until = $2, updated_at = $3
			WHERE id = ANY($4) RETURNING `+messageColumns, r.Owner, until, store.UnixNano(s.clock()), ids)
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
		return nil, fmt.Errorf("postgres: claim for %s: %w", r.Owner, err)
	}
	return claimed, nil
}

// claimLimited picks and locks the rows of a claim under per-partner limits, in due order.
func (s *Store) claimLimited(ctx context.Context, tx pgx.Tx, r store.ClaimRequest, now int64) ([]int64, error) {
	limitOf := func(partner string) int {
		if n, ok := r.PartnerLimits[partner]; ok {
			return n
		}
		return r.PerPartner
	}
	partners, err := collectStrings(tx.Query(ctx, `SELECT DISTINCT partner FROM messages WHERE `+isDue, now))
	if err != nil {
		return nil, err
	}
	var limited []string
	for _, p := range partners {
		if limitOf(p) > 0 {
			limited = append(limited, p)
		}
	}
	// A first count, without locks, leaves out the partners at their limit: a backlog whose
	// partners are all busy is answered without waiting for anyone. A slot that frees up
	// meanwhile is not lost: the Finish that frees it notifies, and the next claim sees it.
	active, err := inFlight(ctx, tx, now, limited)
	if err != nil {
		return nil, err
	}
	var locked []string // the partners with a limit and a free slot
	for _, p := range limited {
		if active[p] < limitOf(p) {
			locked = append(locked, p)
		}
	}
	if len(locked) > 0 {
		// The locks are taken in the order of their keys, the same on every node, so two
		// claims never wait for each other in a cycle.
		if _, err := tx.Exec(ctx, `SELECT count(pg_advisory_xact_lock($1, k)) FROM (
			SELECT DISTINCT hashtext($2 || chr(31) || p) AS k FROM unnest($3::text[]) AS p ORDER BY k) AS keys`,
			lockPartner, s.scope, locked); err != nil {
			return nil, fmt.Errorf("locking partners: %w", err)
		}
		// This statement starts after the locks are held, so it sees every claim committed
		// by the transactions that held them before.
		if active, err = inFlight(ctx, tx, now, locked); err != nil {
			return nil, err
		}
	}
	// Each partner's free slots, for every partner that had due rows: a partner with a
	// limit gets what its lock and count leave, one without as many as the claim takes. A
	// partner whose first due row appeared after the partners were read is not locked: its
	// rows wait for the next claim. The database ranks each partner's due rows and returns
	// only those within its slots, so a long queue costs a sort, not a transfer.
	free := make([]int, len(partners))
	for i, p := range partners {
		switch n := limitOf(p); {
		case n <= 0:
			free[i] = r.Limit
		case slices.Contains(locked, p):
			free[i] = min(r.Limit, n-min(n, active[p]))
		}
	}
	picked, err := collectIDs(tx.Query(ctx, `SELECT id FROM (
		SELECT m.id, `+dueAt+` AS due, c.free,
			row_number() OVER (PARTITION BY m.partner ORDER BY `+dueAt+`, m.id) AS rank
		FROM messages m JOIN unnest($2::text[], $3::int[]) AS c (partner, free) ON c.partner = m.partner
		WHERE `+isDue+`) AS ranked
		WHERE rank <= free ORDER BY due, id LIMIT $4`, now, partners, free, r.Limit))
	if err != nil || len(picked) == 0 {
		return nil, err
	}
	// A row another claim locked without a per-partner limit, or that a worker is
	// finishing, is passed over; the condition is checked again on the row's newest version.
	got, err := collectIDs(tx.Query(ctx, `SELECT id FROM messages WHERE id = ANY($2) AND `+isDue+`
		FOR UPDATE SKIP LOCKED`, now, picked))
	if err != nil {
		return nil, err
	}
	out := picked[:0]
	for _, id := range picked {
		if slices.Contains(got, id) {
			out = append(out, id)
		}
	}
	return out, nil
}

// inFlight counts the rows of partners in flight under a live lease.
func inFlight(ctx context.Context, tx pgx.Tx, now int64, partners []string) (map[string]int, error) {
	active := map[string]int{}
	if len(partners) == 0 {
		return active, nil
	}
	rows, err := tx.Query(ctx, `SELECT partner, count(*) FROM messages
		WHERE state = 'sending' AND lease_until > $1 AND partner = ANY($2) GROUP BY partner`, now, partners)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			p string
			n int
		)
		if err := rows.Scan(&p, &n); err != nil {
			return nil, err
		}
		active[p] = n
	}
	return active, rows.Err()
}

func collectIDs(rows pgx.Rows, err error) ([]int64, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

func collectStrings(rows pgx.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// leased locks the row id inside tx and checks that owner holds its lease.
func leased(ctx context.Context, tx pgx.Tx, id int64, owner string) (*store.Message, error) {
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

// lockedMessage reads the row id inside tx and locks it until tx ends, so that its state
// cannot change under the caller.
func lockedMessage(ctx context.Context, tx pgx.Tx, id int64) (*store.Message, error) {
	m, err := scanMessage(tx.QueryRow(ctx,
		`SELECT `+messageColumns+` FROM messages WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("message %d: %w", id, store.ErrNotFound)
	}
	return m, err
}

// SetWire implements store.Store. The wire message is set once: a second call with other
// bytes is a conflict, since every retry must send the same bytes; the same bytes again are
// accepted, so that a worker may repeat a call whose answer it lost.
func (s *Store) SetWire(ctx context.Context, id int64, owner, wire string, header http.Header, mic string) error {
	if wire == "" {
		return fmt.Errorf("postgres: set wire of message %d: no wire key", id)
	}
	h, err := jsonText(header)
	if err != nil {
		return fmt.Errorf("postgres: set wire of message %d: header: %w", id, err)
	}
	err = s.write(ctx, func(tx pgx.Tx) error {
		m, err := leased(ctx, tx, id, owner)
		if err != nil {
			return err
		}
		if m.Wire != "" && m.Wire != wire {
			return fmt.Errorf("message %d already has wire %s: %w", id, m.Wire, store.ErrConflict)
		}
		_, err = tx.Exec(ctx, `UPDATE messages SET wire = $1, wire_header = $2::jsonb, mic = $3,
			updated_at = $4 WHERE id = $5`, wire, h, mic, store.UnixNano(s.clock()), id)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: set wire: %w", err)
	}
	return nil
}

// Finish implements store.Store. It notifies the other nodes: a retry may be due, and a
// partner's slot is free.
func (s *Store) Finish(ctx context.Context, id int64, owner string, o store.Outcome) error {
	if err := store.CheckOutcome(o, store.StateQueued, store.StateAwaitingMDN, store.StateSent, store.StateFailed); err != nil {
		return fmt.Errorf("postgres: finish message %d: %w", id, err)
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		m, err := leased(ctx, tx, id, owner)
		if err != nil {
			return err
		}
		if err := s.record(ctx, tx, m, o); err != nil {
			return err
		}
		return s.notifyDue(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("postgres: finish: %w", err)
	}
	return nil
}

// CompleteMDN implements store.Store. It drops any lease: a worker that still holds one gets
// ErrConflict when it finishes.
func (s *Store) CompleteMDN(ctx context.Context, id int64, o store.Outcome) error {
	if err := store.CheckOutcome(o, store.StateSent, store.StateFailed, store.StateQueued); err != nil {
		return fmt.Errorf("postgres: complete MDN of message %d: %w", id, err)
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		m, err := lockedMessage(ctx, tx, id)
		if err != nil {
			return err
		}
		if m.Direction != store.Outbound || (m.State != store.StateAwaitingMDN && m.State != store.StateSending) {
			return fmt.Errorf("%s message %d is %s, not waiting for an MDN: %w",
				m.Direction, id, m.State, store.ErrConflict)
		}
		if err := s.record(ctx, tx, m, o); err != nil {
			return err
		}
		return s.notifyDue(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("postgres: complete MDN: %w", err)
	}
	return nil
}

// record writes outcome o of message m: the new state, the receipt, the failed attempt and
// the event, and drops the lease.
func (s *Store) record(ctx context.Context, tx pgx.Tx, m *store.Message, o store.Outcome) error {
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
	_, err = tx.Exec(ctx, `UPDATE messages SET state = $1, next_attempt_at = $2, mdn = $3::jsonb,
		attempts = $4, last_error = $5, last_code = $6,
		lease_owner = '', lease_until = 0, claimed_from = '', updated_at = $7
		WHERE id = $8`,
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
	err := s.write(ctx, func(tx pgx.Tx) error {
		m, err := leased(ctx, tx, id, owner)
		if err != nil {
			return err
		}
		now := s.clock()
		state, next := store.StateQueued, now
		if m.ClaimedFrom == store.StateAwaitingMDN {
			state, next = store.StateAwaitingMDN, m.NextAttemptAt
		}
		if _, err := tx.Exec(ctx, `UPDATE messages SET state = $1, next_attempt_at = $2,
			lease_owner = '', lease_until = 0, claimed_from = '', updated_at = $3
			WHERE id = $4`, state, store.UnixNano(next), store.UnixNano(now), id); err != nil {
			return err
		}
		return s.notifyDue(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("postgres: release: %w", err)
	}
	return nil
}

// NextDue implements store.Store. Each arm reads the first entry of the due index for its
// state.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	var next *int64
	err := s.pool.QueryRow(ctx, `SELECT MIN(t) FROM (
		SELECT MIN(next_attempt_at) AS t FROM messages WHERE state = 'queued'
		UNION ALL
		SELECT MIN(next_attempt_at) FROM messages WHERE state = 'awaiting_mdn') AS due`).Scan(&next)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("postgres: next due: %w", err)
	}
	if next == nil {
		return time.Time{}, false, nil
	}
	return store.FromNano(*next), true, nil
}
