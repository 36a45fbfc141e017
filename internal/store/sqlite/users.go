package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/as2gate/as2gate/internal/store"
)

// CreateUser implements store.Users.
func (s *Store) CreateUser(ctx context.Context, u *store.User) error {
	switch {
	case strings.TrimSpace(u.Name) == "":
		return errors.New("sqlite: a user needs a name")
	case len(u.PasswordHash) == 0:
		return fmt.Errorf("sqlite: user %q has no password hash", u.Name)
	}
	now := s.now()
	var id int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		// The check and the insert share the write transaction, so the answer for a taken
		// name is ErrConflict rather than a driver's constraint message.
		var taken int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE name = ?`, u.Name).Scan(&taken); err != nil {
			return err
		}
		if taken > 0 {
			return fmt.Errorf("sqlite: user %q exists: %w", u.Name, store.ErrConflict)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO users (name, password_hash, created_at) VALUES (?, ?, ?)`,
			u.Name, string(u.PasswordHash), unixNano(now))
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return err
		}
		return fmt.Errorf("sqlite: create user %q: %w", u.Name, err)
	}
	u.ID, u.CreatedAt = id, now
	return nil
}

// GetUser implements store.Users.
func (s *Store) GetUser(ctx context.Context, name string) (*store.User, error) {
	var (
		u       store.User
		hash    string
		created int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT id, name, password_hash, created_at FROM users WHERE name = ?`, name).
		Scan(&u.ID, &u.Name, &hash, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: user %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get user %q: %w", name, err)
	}
	u.PasswordHash, u.CreatedAt = []byte(hash), fromNano(created)
	return &u, nil
}

// CountUsers implements store.Users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count users: %w", err)
	}
	return n, nil
}
