package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Wakeups implements store.Waker. The first call starts the listener: a connection of its
// own that LISTENs on the store's channel, and that is dialled again, with a signal, when it
// drops.
func (s *Store) Wakeups() <-chan struct{} {
	s.listenOnce.Do(func() {
		s.bg.Add(1)
		go s.listen()
	})
	return s.wakeups
}

func (s *Store) wake() {
	select {
	case s.wakeups <- struct{}{}:
	default:
	}
}

// listen runs until the store closes.
func (s *Store) listen() {
	defer s.bg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	for ctx.Err() == nil {
		s.listenOnConn(ctx)
		if ctx.Err() != nil {
			return
		}
		// The connection dropped or could not be made: try again after a pause.
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.election):
		}
	}
}

// listenOnConn dials, LISTENs and signals every notification until the connection fails.
func (s *Store) listenOnConn(ctx context.Context) error {
	c, err := s.dial(ctx, "listener")
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return fmt.Errorf("postgres: listen: %w", err)
	}
	// Work may have become due while no connection listened.
	s.wake()
	for {
		if _, err := c.WaitForNotification(ctx); err != nil {
			return err
		}
		s.wake()
	}
}

// Campaign implements store.Elector with a session advisory lock on a connection of its
// own: the lock lives as long as the connection, so a leader that dies (kill -9, a lost
// network) lets the lock go with its connection, and the next node to try takes it.
// Until the lock is free the campaign tries again every election interval; while it leads,
// the connection is checked as often, and a failed check closes lost.
func (s *Store) Campaign(ctx context.Context, role string) (<-chan struct{}, func(), error) {
	for {
		c, err := s.dial(ctx, "leader "+role)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			return nil, nil, fmt.Errorf("postgres: campaign for %s: %w", role, err)
		}
		err = s.try(ctx, c, role)
		if err == nil {
			lost, resign := s.hold(c)
			return lost, resign, nil
		}
		c.Close(context.Background())
		if ctx.Err() != nil || errors.Is(err, errClosed) {
			return nil, nil, err
		}
		// The connection broke while waiting: dial again after a pause.
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-s.done:
			return nil, nil, errClosed
		case <-time.After(s.election):
		}
	}
}

// try tries for the lock on c every election interval until it wins (nil), ctx ends
// (ctx's error), the store closes (errClosed) or the connection fails.
func (s *Store) try(ctx context.Context, c *pgx.Conn, role string) error {
	for {
		won, err := s.tryOnce(ctx, c, role)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			return err
		case won:
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return errClosed
		case <-time.After(s.election):
		}
	}
}

// tryOnce tries for role's lock on c once.
func (s *Store) tryOnce(ctx context.Context, c *pgx.Conn, role string) (bool, error) {
	var won bool
	err := c.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, hashtext($2 || chr(31) || $3))`,
		lockLeader, s.scope, role).Scan(&won)
	return won, err
}

// hold watches a leader's connection until resign, the store's close, or a failed check,
// and then closes it: the session ends, and the session's lock with it.
func (s *Store) hold(c *pgx.Conn) (<-chan struct{}, func()) {
	lost := make(chan struct{})
	stop := make(chan struct{})
	stopped := make(chan struct{})
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer close(stopped)
		defer c.Close(context.Background())
		for {
			select {
			case <-stop:
				return
			case <-s.done:
				close(lost)
				return
			case <-time.After(s.election):
			}
			ctx, cancel := context.WithTimeout(context.Background(), s.election)
			err := c.Ping(ctx)
			cancel()
			if err != nil {
				close(lost)
				return
			}
		}
	}()
	var once sync.Once
	resign := func() {
		once.Do(func() { close(stop) })
		<-stopped
	}
	return lost, resign
}
