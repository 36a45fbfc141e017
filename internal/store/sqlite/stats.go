package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/as2gate/as2gate/internal/store"
)

// statsMessages counts messages by direction and state; the asynchronous MDN jobs are queue
// work, not messages.
const statsMessages = `
SELECT direction, state, COUNT(*) FROM messages
WHERE kind <> 'mdn'
GROUP BY direction, state ORDER BY direction, state`

// statsQueues is each partner's queue: the rows waiting or going out, and the earliest due
// time of those waiting. The state prefix of messages_due serves it.
const statsQueues = `
SELECT partner, COUNT(*), MIN(CASE WHEN state = 'queued' THEN next_attempt_at END) FROM messages
WHERE state IN ('queued', 'sending')
GROUP BY partner ORDER BY partner`

// Stats implements store.Store. Both queries read one snapshot.
func (s *Store) Stats(ctx context.Context) (*store.Stats, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("sqlite: stats: %w", err)
	}
	defer tx.Rollback()
	st := &store.Stats{}
	rows, err := tx.QueryContext(ctx, statsMessages)
	if err != nil {
		return nil, fmt.Errorf("sqlite: stats: %w", err)
	}
	for rows.Next() {
		var c store.StateCount
		if err := rows.Scan(&c.Direction, &c.State, &c.Count); err != nil {
			rows.Close()
			return nil, fmt.Errorf("sqlite: stats: %w", err)
		}
		st.Messages = append(st.Messages, c)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: stats: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: stats: %w", err)
	}
	rows, err = tx.QueryContext(ctx, statsQueues)
	if err != nil {
		return nil, fmt.Errorf("sqlite: stats: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var q store.PartnerQueue
		var oldest sql.NullInt64
		if err := rows.Scan(&q.Partner, &q.Depth, &oldest); err != nil {
			return nil, fmt.Errorf("sqlite: stats: %w", err)
		}
		if oldest.Valid {
			q.OldestDue = store.FromNano(oldest.Int64)
		}
		st.Queues = append(st.Queues, q)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: stats: %w", err)
	}
	return st, nil
}
