package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/as2gate/as2gate/internal/store"
)

// foldName is a user name with ASCII letters folded, as the unique index users_name keys it.
const foldName = `translate(%s, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')`

// CreateUser implements store.Users. The unique index on the folded name decides a race
// between two nodes; its violation is ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u *store.User) error {
	switch {
	case strings.TrimSpace(u.Name) == "":
		return errors.New("postgres: a user needs a name")
	case len(u.PasswordHash) == 0:
		return fmt.Errorf("postgres: user %q has no password hash", u.Name)
	}
	now := s.clock()
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO users (name, password_hash, created_at)
		VALUES ($1, $2, $3) RETURNING id`, u.Name, string(u.PasswordHash), unixNano(now)).Scan(&id)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return fmt.Errorf("postgres: user %q exists: %w", u.Name, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("postgres: create user %q: %w", u.Name, err)
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
	err := s.pool.QueryRow(ctx, `SELECT id, name, password_hash, created_at FROM users
		WHERE `+fmt.Sprintf(foldName, "name")+` = `+fmt.Sprintf(foldName, "$1"), name).
		Scan(&u.ID, &u.Name, &hash, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: user %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get user %q: %w", name, err)
	}
	u.PasswordHash, u.CreatedAt = []byte(hash), fromNano(created)
	return &u, nil
}

// CountUsers implements store.Users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count users: %w", err)
	}
	return n, nil
}
