package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/as2gate/as2gate/internal/store"
)

// Reprocess implements store.Store.
func (s *Store) Reprocess(ctx context.Context, id int64, r store.ReprocessRequest) (*store.Message, error) {
	if r.State != store.StateReceived && r.State != store.StateSuspended {
		return nil, fmt.Errorf("postgres: reprocess message %d: state %q is not received or suspended", id, r.State)
	}
	if r.Event != nil && r.Event.Type == "" {
		return nil, fmt.Errorf("postgres: reprocess message %d: event without a type", id)
	}
	files, err := jsonText(r.Files)
	if err != nil {
		return nil, fmt.Errorf("postgres: reprocess message %d: files: %w", id, err)
	}
	var out *store.Message
	err = s.write(ctx, func(tx pgx.Tx) error {
		m, err := lockedMessage(ctx, tx, id)
		if err != nil {
			return err
		}
		if m.Direction != store.Inbound || (m.State != store.StateReceived && m.State != store.StateSuspended) {
			return fmt.Errorf("message %d is %s %s, not a received or suspended inbound message: %w", id, m.Direction, m.State, store.ErrConflict)
		}
		now := s.clock()
		// delivered_at goes back to 0: the new files are not in the inbox yet, and a crash
		// before they are leaves the row for Undelivered.
		out, err = scanMessage(tx.QueryRow(ctx, `UPDATE messages SET state = $1, files = $2::jsonb,
			mic = $3, last_error = $4, last_code = $5, delivered_at = 0, updated_at = $6
			WHERE id = $7 RETURNING `+messageColumns,
			r.State, files, r.MIC, r.LastError, r.LastCode, store.UnixNano(now), id))
		if err != nil {
			return err
		}
		if r.Event != nil {
			return insertEvent(ctx, tx, r.Event, out, now)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: reprocess: %w", err)
	}
	return out, nil
}
