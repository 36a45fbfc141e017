package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/as2gate/as2gate/internal/store"
)

// statsMessages counts messages by direction and state; the asynchronous MDN jobs are queue
// work, not messages.
const statsMessages = `
SELECT direction, state, count(*) FROM messages
WHERE kind <> 'mdn'
GROUP BY direction, state ORDER BY direction COLLATE "C", state COLLATE "C"`

// statsQueues is each partner's queue: the rows waiting or going out, and the earliest due
// time of those waiting. The state prefix of messages_due serves it.
const statsQueues = `
SELECT partner, count(*), min(next_attempt_at) FILTER (WHERE state = 'queued') FROM messages
WHERE state IN ('queued', 'sending')
GROUP BY partner ORDER BY partner COLLATE "C"`

// Stats implements store.Store. Both queries read one snapshot (REPEATABLE READ).
func (s *Store) Stats(ctx context.Context) (*store.Stats, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("postgres: stats: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	st := &store.Stats{}
	rows, err := tx.Query(ctx, statsMessages)
	if err != nil {
		return nil, fmt.Errorf("postgres: stats: %w", err)
	}
	for rows.Next() {
		var c store.StateCount
		if err := rows.Scan(&c.Direction, &c.State, &c.Count); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: stats: %w", err)
		}
		st.Messages = append(st.Messages, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: stats: %w", err)
	}
	rows, err = tx.Query(ctx, statsQueues)
	if err != nil {
		return nil, fmt.Errorf("postgres: stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var q store.PartnerQueue
		var oldest *int64
		if err := rows.Scan(&q.Partner, &q.Depth, &oldest); err != nil {
			return nil, fmt.Errorf("postgres: stats: %w", err)
		}
		if oldest != nil {
			q.OldestDue = store.FromNano(*oldest)
		}
		st.Queues = append(st.Queues, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: stats: %w", err)
	}
	return st, nil
}
