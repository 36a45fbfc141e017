package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// CreateUser implements store.Users.
func (s *Store) CreateUser(ctx context.Context, u *store.User) error {
	if err := store.CheckUser(u); err != nil {
		return fmt.Errorf("sqlite: %w", err)
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
		res, err := tx.ExecContext(ctx, `INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)`,
			u.Name, u.Role, string(u.PasswordHash), store.UnixNano(now))
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

const userColumns = `id, name, role, password_hash, created_at`

func scanUser(row interface{ Scan(...any) error }) (*store.User, error) {
	var (
		u       store.User
		hash    string
		created int64
	)
	if err := row.Scan(&u.ID, &u.Name, &u.Role, &hash, &created); err != nil {
		return nil, err
	}
	u.PasswordHash, u.CreatedAt = []byte(hash), store.FromNano(created)
	return &u, nil
}

// GetUser implements store.Users.
func (s *Store) GetUser(ctx context.Context, name string) (*store.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: user %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get user %q: %w", name, err)
	}
	return u, nil
}

// CountUsers implements store.Users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count users: %w", err)
	}
	return n, nil
}

// ListUsers implements store.Users.
func (s *Store) ListUsers(ctx context.Context) ([]*store.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	defer rows.Close()
	var out []*store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	return out, nil
}

// userRow reads a user's id and role inside tx, or ErrNotFound.
func userRow(ctx context.Context, tx *sql.Tx, name string) (int64, string, error) {
	var (
		id   int64
		role string
	)
	err := tx.QueryRowContext(ctx, `SELECT id, role FROM users WHERE name = ?`, name).Scan(&id, &role)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", fmt.Errorf("sqlite: user %q: %w", name, store.ErrNotFound)
	}
	return id, role, err
}

// otherAdmins counts the admins other than the user id, inside tx.
func otherAdmins(ctx context.Context, tx *sql.Tx, id int64) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE role = ? AND id <> ?`, store.RoleAdmin, id).Scan(&n)
	return n, err
}

// SetUserRole implements store.Users.
func (s *Store) SetUserRole(ctx context.Context, name, role string) error {
	if !store.ValidRole(role) {
		return fmt.Errorf("sqlite: role %q; want one of %s", role, strings.Join(store.Roles, ", "))
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, old, err := userRow(ctx, tx, name)
		if err != nil {
			return err
		}
		if old == store.RoleAdmin && role != store.RoleAdmin {
			n, err := otherAdmins(ctx, tx, id)
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("sqlite: %q is the last admin; make another user admin first: %w", name, store.ErrConflict)
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE users SET role = ? WHERE id = ?`, role, id)
		return err
	})
	return userErr("set the role of", name, err)
}

// SetUserPassword implements store.Users.
func (s *Store) SetUserPassword(ctx context.Context, name string, hash []byte) error {
	if len(hash) == 0 {
		return fmt.Errorf("sqlite: no password hash for user %q", name)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, _, err := userRow(ctx, tx, name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, string(hash), id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, id)
		return err
	})
	return userErr("set the password of", name, err)
}

// DeleteUser implements store.Users.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, role, err := userRow(ctx, tx, name)
		if err != nil {
			return err
		}
		if role == store.RoleAdmin {
			n, err := otherAdmins(ctx, tx, id)
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("sqlite: %q is the last admin and cannot be removed: %w", name, store.ErrConflict)
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
		return err
	})
	return userErr("delete", name, err)
}

// userErr passes ErrNotFound and ErrConflict through as they are and wraps anything else.
func userErr(what, name string, err error) error {
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		return err
	}
	return fmt.Errorf("sqlite: %s user %q: %w", what, name, err)
}

// CreateSession implements store.Users.
func (s *Store) CreateSession(ctx context.Context, ss *store.Session) error {
	if err := store.CheckSession(ss); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	lastSeen := ss.LastSeen
	if lastSeen.IsZero() {
		lastSeen = ss.CreatedAt
	}
	var (
		id   int64
		role string
	)
	err := s.write(ctx, func(tx *sql.Tx) error {
		uid, r, err := userRow(ctx, tx, ss.User)
		if err != nil {
			return err
		}
		if ss.PasswordHash != nil {
			var current string
			if err := tx.QueryRowContext(ctx, `SELECT password_hash FROM users WHERE id = ?`, uid).Scan(&current); err != nil {
				return err
			}
			if current != string(ss.PasswordHash) {
				return fmt.Errorf("sqlite: the password of %q changed while signing in: %w", ss.User, store.ErrConflict)
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at, address, user_agent)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, ss.TokenHash, uid, store.UnixNano(ss.CreatedAt), store.UnixNano(lastSeen), store.UnixNano(ss.ExpiresAt), ss.Address, ss.UserAgent)
		if err != nil {
			return err
		}
		role = r
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return userErr("create a session for", ss.User, err)
	}
	ss.ID, ss.Role, ss.LastSeen = id, role, lastSeen
	return nil
}

const sessionQuery = `SELECT s.id, s.token_hash, u.name, u.role, s.created_at, s.last_seen_at, s.expires_at, s.address, s.user_agent
	FROM sessions s JOIN users u ON u.id = s.user_id`

func scanSession(row interface{ Scan(...any) error }) (*store.Session, error) {
	var (
		ss                       store.Session
		created, seen, expiresAt int64
	)
	if err := row.Scan(&ss.ID, &ss.TokenHash, &ss.User, &ss.Role, &created, &seen, &expiresAt, &ss.Address, &ss.UserAgent); err != nil {
		return nil, err
	}
	ss.CreatedAt, ss.LastSeen, ss.ExpiresAt = store.FromNano(created), store.FromNano(seen), store.FromNano(expiresAt)
	return &ss, nil
}

// FindSession implements store.Users.
func (s *Store) FindSession(ctx context.Context, tokenHash string) (*store.Session, error) {
	ss, err := scanSession(s.r.QueryRowContext(ctx, sessionQuery+` WHERE s.token_hash = ?`, tokenHash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: no such session: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: find session: %w", err)
	}
	return ss, nil
}

// GetSession implements store.Users.
func (s *Store) GetSession(ctx context.Context, id int64) (*store.Session, error) {
	ss, err := scanSession(s.r.QueryRowContext(ctx, sessionQuery+` WHERE s.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: session %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get session %d: %w", id, err)
	}
	return ss, nil
}

// ListSessions implements store.Users.
func (s *Store) ListSessions(ctx context.Context, user string) ([]*store.Session, error) {
	rows, err := s.r.QueryContext(ctx, sessionQuery+` WHERE u.name = ? ORDER BY s.created_at DESC, s.id DESC`, user)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list sessions of %q: %w", user, err)
	}
	defer rows.Close()
	var out []*store.Session
	for rows.Next() {
		ss, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list sessions of %q: %w", user, err)
		}
		out = append(out, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list sessions of %q: %w", user, err)
	}
	return out, nil
}

// TouchSession implements store.Users.
func (s *Store) TouchSession(ctx context.Context, id int64, at time.Time) error {
	return s.sessionWrite(ctx, id, "touch", `UPDATE sessions SET last_seen_at = ? WHERE id = ?`, store.UnixNano(at), id)
}

// DeleteSession implements store.Users.
func (s *Store) DeleteSession(ctx context.Context, id int64) error {
	return s.sessionWrite(ctx, id, "delete", `DELETE FROM sessions WHERE id = ?`, id)
}

// sessionWrite runs one statement on the session id and answers ErrNotFound when it
// touched no row.
func (s *Store) sessionWrite(ctx context.Context, id int64, what, query string, args ...any) error {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	switch {
	case err != nil:
		return fmt.Errorf("sqlite: %s session %d: %w", what, id, err)
	case n == 0:
		return fmt.Errorf("sqlite: session %d: %w", id, store.ErrNotFound)
	}
	return nil
}

// DeleteExpiredSessions implements store.Users.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, store.UnixNano(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired sessions: %w", err)
	}
	return int(n), nil
}
