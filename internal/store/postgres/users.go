package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/as2gate/as2gate/internal/store"
)

// foldName is a user name with ASCII letters folded, as the unique index users_name keys it.
const foldName = `translate(%s, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')`

// byName matches the users row of the name $1, ASCII case ignored, through users_name.
var byName = fmt.Sprintf(foldName, "name") + ` = ` + fmt.Sprintf(foldName, "$1")

// CreateUser implements store.Users. The unique index on the folded name decides a race
// between two nodes; its violation is ErrConflict.
func (s *Store) CreateUser(ctx context.Context, u *store.User) error {
	if err := store.CheckUser(u); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	now := s.clock()
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO users (name, role, password_hash, created_at)
		VALUES ($1, $2, $3, $4) RETURNING id`, u.Name, u.Role, string(u.PasswordHash), store.UnixNano(now)).Scan(&id)
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

const userColumns = `id, name, role, password_hash, created_at`

func scanUser(row pgx.Row) (*store.User, error) {
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
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE `+byName, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: user %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get user %q: %w", name, err)
	}
	return u, nil
}

// CountUsers implements store.Users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count users: %w", err)
	}
	return n, nil
}

// ListUsers implements store.Users. The order is the embedded store's (NOCASE): ASCII
// letters folded, then byte order, whatever the database's collation.
func (s *Store) ListUsers(ctx context.Context) ([]*store.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users ORDER BY `+fmt.Sprintf(foldName, "name")+` COLLATE "C", id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	defer rows.Close()
	var out []*store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	return out, nil
}

// userRow reads a user's id and role inside tx and locks the row with lock ("FOR UPDATE",
// "FOR SHARE"), or answers ErrNotFound.
func userRow(ctx context.Context, tx pgx.Tx, name, lock string) (int64, string, error) {
	var (
		id   int64
		role string
	)
	err := tx.QueryRow(ctx, `SELECT id, role FROM users WHERE `+byName+` `+lock, name).Scan(&id, &role)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", fmt.Errorf("postgres: user %q: %w", name, store.ErrNotFound)
	}
	return id, role, err
}

// lockedUser takes the admins' lock, then reads and locks the user. Everything that may take
// away an admin holds the lock until it commits, so the count of the other admins it reads
// after it cannot be changed by another node before the change is in.
func (s *Store) lockedUser(ctx context.Context, tx pgx.Tx, name string) (int64, string, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockAdmins, s.scope); err != nil {
		return 0, "", err
	}
	return userRow(ctx, tx, name, "FOR UPDATE")
}

// otherAdmins counts the admins other than the user id, inside tx.
func otherAdmins(ctx context.Context, tx pgx.Tx, id int64) (int, error) {
	var n int
	err := tx.QueryRow(ctx, `SELECT count(*) FROM users WHERE role = $1 AND id <> $2`, store.RoleAdmin, id).Scan(&n)
	return n, err
}

// SetUserRole implements store.Users.
func (s *Store) SetUserRole(ctx context.Context, name, role string) error {
	if !store.ValidRole(role) {
		return fmt.Errorf("postgres: role %q; want one of %s", role, strings.Join(store.Roles, ", "))
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		id, old, err := s.lockedUser(ctx, tx, name)
		if err != nil {
			return err
		}
		if old == store.RoleAdmin && role != store.RoleAdmin {
			n, err := otherAdmins(ctx, tx, id)
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("postgres: %q is the last admin; make another user admin first: %w", name, store.ErrConflict)
			}
		}
		_, err = tx.Exec(ctx, `UPDATE users SET role = $1 WHERE id = $2`, role, id)
		return err
	})
	return userErr("set the role of", name, err)
}

// SetUserPassword implements store.Users. The row lock of the update orders it with a
// concurrent CreateSession of the user (which shares the row), so no session made with the
// old password outlives it.
func (s *Store) SetUserPassword(ctx context.Context, name string, hash []byte) error {
	if len(hash) == 0 {
		return fmt.Errorf("postgres: no password hash for user %q", name)
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `UPDATE users SET password_hash = $2 WHERE `+byName+` RETURNING id`, name, string(hash)).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: user %q: %w", name, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, id)
		return err
	})
	return userErr("set the password of", name, err)
}

// DeleteUser implements store.Users. The sessions go with the user (ON DELETE CASCADE).
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		id, role, err := s.lockedUser(ctx, tx, name)
		if err != nil {
			return err
		}
		if role == store.RoleAdmin {
			n, err := otherAdmins(ctx, tx, id)
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("postgres: %q is the last admin and cannot be removed: %w", name, store.ErrConflict)
			}
		}
		_, err = tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
		return err
	})
	return userErr("delete", name, err)
}

// userErr passes ErrNotFound and ErrConflict through as they are and wraps anything else.
func userErr(what, name string, err error) error {
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
		return err
	}
	return fmt.Errorf("postgres: %s user %q: %w", what, name, err)
}

// CreateSession implements store.Users. It holds the user's row FOR SHARE until it commits,
// so that a concurrent DeleteUser or SetUserPassword comes either before it (ErrNotFound) or
// after it (and ends this session too).
func (s *Store) CreateSession(ctx context.Context, ss *store.Session) error {
	if err := store.CheckSession(ss); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	lastSeen := ss.LastSeen
	if lastSeen.IsZero() {
		lastSeen = ss.CreatedAt
	}
	var (
		id   int64
		role string
	)
	err := s.write(ctx, func(tx pgx.Tx) error {
		uid, r, err := userRow(ctx, tx, ss.User, "FOR SHARE")
		if err != nil {
			return err
		}
		if ss.PasswordHash != nil {
			// The row is held FOR SHARE: a password change waits for this insert, or this
			// read sees the changed hash.
			var current []byte
			if err := tx.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1`, uid).Scan(&current); err != nil {
				return err
			}
			if !bytes.Equal(current, ss.PasswordHash) {
				return fmt.Errorf("postgres: the password of %q changed while signing in: %w", ss.User, store.ErrConflict)
			}
		}
		role = r
		return tx.QueryRow(ctx, `INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at, address, user_agent)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`, ss.TokenHash, uid, store.UnixNano(ss.CreatedAt), store.UnixNano(lastSeen),
			store.UnixNano(ss.ExpiresAt), ss.Address, ss.UserAgent).Scan(&id)
	})
	if err != nil {
		return userErr("create a session for", ss.User, err)
	}
	ss.ID, ss.Role, ss.LastSeen = id, role, lastSeen
	return nil
}

const sessionQuery = `SELECT s.id, s.token_hash, u.name, u.role, s.created_at, s.last_seen_at, s.expires_at, s.address, s.user_agent
	FROM sessions s JOIN users u ON u.id = s.user_id`

func scanSession(row pgx.Row) (*store.Session, error) {
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
	ss, err := scanSession(s.pool.QueryRow(ctx, sessionQuery+` WHERE s.token_hash = $1`, tokenHash))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: no such session: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: find session: %w", err)
	}
	return ss, nil
}

// GetSession implements store.Users.
func (s *Store) GetSession(ctx context.Context, id int64) (*store.Session, error) {
	ss, err := scanSession(s.pool.QueryRow(ctx, sessionQuery+` WHERE s.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres: session %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get session %d: %w", id, err)
	}
	return ss, nil
}

// ListSessions implements store.Users.
func (s *Store) ListSessions(ctx context.Context, user string) ([]*store.Session, error) {
	rows, err := s.pool.Query(ctx, sessionQuery+` WHERE `+fmt.Sprintf(foldName, "u.name")+` = `+fmt.Sprintf(foldName, "$1")+`
		ORDER BY s.created_at DESC, s.id DESC`, user)
	if err != nil {
		return nil, fmt.Errorf("postgres: list sessions of %q: %w", user, err)
	}
	defer rows.Close()
	var out []*store.Session
	for rows.Next() {
		ss, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list sessions of %q: %w", user, err)
		}
		out = append(out, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list sessions of %q: %w", user, err)
	}
	return out, nil
}

// TouchSession implements store.Users.
func (s *Store) TouchSession(ctx context.Context, id int64, at time.Time) error {
	return s.sessionWrite(ctx, id, "touch", `UPDATE sessions SET last_seen_at = $1 WHERE id = $2`, store.UnixNano(at), id)
}

// DeleteSession implements store.Users.
func (s *Store) DeleteSession(ctx context.Context, id int64) error {
	return s.sessionWrite(ctx, id, "delete", `DELETE FROM sessions WHERE id = $1`, id)
}

// sessionWrite runs one statement on the session id and answers ErrNotFound when it
// touched no row.
func (s *Store) sessionWrite(ctx context.Context, id int64, what, query string, args ...any) error {
	tag, err := s.pool.Exec(ctx, query, args...)
	switch {
	case err != nil:
		return fmt.Errorf("postgres: %s session %d: %w", what, id, err)
	case tag.RowsAffected() == 0:
		return fmt.Errorf("postgres: session %d: %w", id, store.ErrNotFound)
	}
	return nil
}

// DeleteExpiredSessions implements store.Users.
func (s *Store) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at <= $1`, store.UnixNano(now))
	if err != nil {
		return 0, fmt.Errorf("postgres: delete expired sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
