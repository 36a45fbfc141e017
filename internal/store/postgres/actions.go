package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/as2gate/as2gate/internal/store"
)

// operable locks row id inside tx for an operator's action: an outbound row that no worker
// holds, in one of states.
func operable(ctx context.Context, tx pgx.Tx, id int64, states []string) (*store.Message, error) {
	m, err := lockedMessage(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	switch {
	case m.Direction != store.Outbound:
		return nil, fmt.Errorf("message %d is inbound: %w", id, store.ErrConflict)
	case m.State == store.StateSending:
		return nil, fmt.Errorf("message %d is being sent (leased to %q): %w", id, m.LeaseOwner, store.ErrConflict)
	case !slices.Contains(states, m.State):
		return nil, fmt.Errorf("message %d is %s, not %s: %w", id, m.State, strings.Join(states, " or "), store.ErrConflict)
	}
	return m, nil
}

// Requeue implements store.Store.
func (s *Store) Requeue(ctx context.Context, id int64, r store.RequeueRequest) (*store.Message, error) {
	if r.MessageID != "" && !r.ClearWire {
		return nil, fmt.Errorf("postgres: requeue message %d: a new Message-ID needs the wire message cleared", id)
	}
	if r.Event != nil && r.Event.Type == "" {
		return nil, fmt.Errorf("postgres: requeue message %d: event without a type", id)
	}
	var out *store.Message
	err := s.write(ctx, func(tx pgx.Tx) error {
		m, err := operable(ctx, tx, id, r.From)
		if err != nil {
			return err
		}
		if r.ClearWire && m.Kind != store.KindMessage {
			return fmt.Errorf("message %d is of kind %s and cannot be packed again: %w", id, m.Kind, store.ErrConflict)
		}
		now := s.clock()
		due := r.Due
		if due.IsZero() {
			due = now
		}
		// COALESCE(NULLIF($n, ''), column) keeps a column the request leaves empty.
		out, err = scanMessage(tx.QueryRow(ctx, `UPDATE messages SET state = 'queued',
			next_attempt_at = $1, mdn = 'null',
			message_id = COALESCE(NULLIF($2, ''), message_id),
			url = COALESCE(NULLIF($3, ''), url),
			wire = CASE WHEN $4::boolean THEN '' ELSE wire END,
			wire_header = CASE WHEN $4::boolean THEN 'null'::jsonb ELSE wire_header END,
			mic = CASE WHEN $4::boolean THEN '' ELSE mic END,
			lease_owner = '', lease_until = 0, claimed_from = '', updated_at = $5,
			retried_at = CASE WHEN state = 'failed' THEN $5 ELSE retried_at END
			WHERE id = $6 RETURNING `+messageColumns,
			store.UnixNano(due), r.MessageID, r.URL, r.ClearWire, store.UnixNano(now), id))
		if err != nil {
			return err
		}
		if err := s.notifyDue(ctx, tx); err != nil {
			return err
		}
		if r.Event != nil {
			return insertEvent(ctx, tx, r.Event, out, now)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: requeue: %w", err)
	}
	return out, nil
}

// stoppedCode is the LastCode of a row an operator stopped.
const stoppedCode = "stopped"

// Stop implements store.Store.
func (s *Store) Stop(ctx context.Context, id int64, reason string, ev *store.Event) (*store.Message, error) {
	if reason == "" {
		return nil, fmt.Errorf("postgres: stop message %d: no reason", id)
	}
	if ev != nil && ev.Type == "" {
		return nil, fmt.Errorf("postgres: stop message %d: event without a type", id)
	}
	var out *store.Message
	err := s.write(ctx, func(tx pgx.Tx) error {
		if _, err := operable(ctx, tx, id, []string{store.StateQueued, store.StateAwaitingMDN}); err != nil {
			return err
		}
		now := s.clock()
		var err error
		out, err = scanMessage(tx.QueryRow(ctx, `UPDATE messages SET state = 'failed',
			next_attempt_at = 0, last_error = $1, last_code = $2,
			lease_owner = '', lease_until = 0, claimed_from = '', updated_at = $3
			WHERE id = $4 RETURNING `+messageColumns, reason, stoppedCode, store.UnixNano(now), id))
		if err != nil {
			return err
		}
		if ev != nil {
			return insertEvent(ctx, tx, ev, out, now)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: stop: %w", err)
	}
	return out, nil
}

// DeleteMessage implements store.Store. The payload blobs the row names stay: they are
// content-addressed and may be shared with other rows.
func (s *Store) DeleteMessage(ctx context.Context, id int64, ev *store.Event) (*store.Message, error) {
	if ev != nil && ev.Type == "" {
		return nil, fmt.Errorf("postgres: delete message %d: event without a type", id)
	}
	var out *store.Message
	err := s.write(ctx, func(tx pgx.Tx) error {
		m, err := lockedMessage(ctx, tx, id)
		if err != nil {
			return err
		}
		if m.State == store.StateSending {
			return fmt.Errorf("message %d is being sent (leased to %q): %w", id, m.LeaseOwner, store.ErrConflict)
		}
		for _, q := range []string{
			`DELETE FROM attempts WHERE message_row = $1`,
			`DELETE FROM events WHERE message_row = $1`,
			`UPDATE messages SET related_id = NULL WHERE related_id = $1`,
			`DELETE FROM messages WHERE id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return err
			}
		}
		if ev != nil {
			// The event outlives the row: it keeps the message's partner and tag, not its
			// row number.
			if ev.Direction == "" {
				ev.Direction = m.Direction
			}
			if ev.Partner == "" {
				ev.Partner = m.Partner
			}
			if ev.Tag == "" {
				ev.Tag = m.Tag
			}
			ev.MessageRow = 0
			if err := insertEvent(ctx, tx, ev, nil, s.clock()); err != nil {
				return err
			}
		}
		out = m
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: delete: %w", err)
	}
	return out, nil
}
