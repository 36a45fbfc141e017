package store

import (
	"context"
	"time"
)

// Console roles, from the most to the least allowed.
const (
	RoleAdmin    = "admin"    // everything, the users included
	RoleOperator = "operator" // message actions, compose and configuration, not the users
	RoleViewer   = "viewer"   // reads only
)

// Roles lists the roles, most allowed first.
var Roles = []string{RoleAdmin, RoleOperator, RoleViewer}

// ValidRole reports whether role is one of Roles.
func ValidRole(role string) bool {
	return role == RoleAdmin || role == RoleOperator || role == RoleViewer
}

// User is one person who signs in to the console.
type User struct {
	ID   int64
	Name string // unique, compared without regard to ASCII case
	Role string // one of Roles
	// PasswordHash is the bcrypt hash of the password; the password itself is never kept.
	PasswordHash []byte
	CreatedAt    time.Time
}

// Session is a signed-in console user. The session's secret id lives only in the
// browser's cookie; the store keeps its SHA-256 (TokenHash), so a copy of the database
// does not sign anyone in.
type Session struct {
	ID        int64
	TokenHash string // hex SHA-256 of the cookie's value; unique
	User      string // the user's name as stored
	Role      string // the user's role now (read with the session, so a change applies at once)
	CreatedAt time.Time
	LastSeen  time.Time
	ExpiresAt time.Time
	Address   string // the client's address at sign-in
	UserAgent string // the browser's User-Agent at sign-in
	// PasswordHash, when set on CreateSession, is the hash the password was just checked
	// against: the session is created only if it is still the user's, so that a password
	// changed between the check and the insert (which ends every session) is not outlived.
	PasswordHash []byte
}

// Users keeps the console's users and their sessions.
type Users interface {
	// CreateUser inserts u and sets u.ID and CreatedAt. It refuses a user without a name, a
	// valid role or a password hash, and answers ErrConflict when the name is taken.
	CreateUser(ctx context.Context, u *User) error
	// GetUser returns the user with this name (ASCII case ignored), or ErrNotFound.
	GetUser(ctx context.Context, name string) (*User, error)
	// CountUsers returns how many users there are.
	CountUsers(ctx context.Context) (int, error)
	// ListUsers returns every user, by name.
	ListUsers(ctx context.Context) ([]*User, error)
	// SetUserRole changes a user's role. ErrNotFound for an unknown user; ErrConflict when
	// it would leave no admin.
	SetUserRole(ctx context.Context, name, role string) error
	// SetUserPassword replaces a user's password hash and ends all of the user's sessions
	// in the same transaction. ErrNotFound for an unknown user.
	SetUserPassword(ctx context.Context, name string, hash []byte) error
	// DeleteUser removes a user with its sessions. ErrNotFound for an unknown user;
	// ErrConflict when the user is the last admin.
	DeleteUser(ctx context.Context, name string) error

	// CreateSession inserts s for the user s.User and sets s.ID and s.Role. ErrNotFound
	// when the user does not exist; ErrConflict when s.PasswordHash is set and is no longer
	// the user's; it refuses a session without a token hash or times.
	CreateSession(ctx context.Context, s *Session) error
	// FindSession returns the session with this token hash, expired or not, or ErrNotFound.
	FindSession(ctx context.Context, tokenHash string) (*Session, error)
	// GetSession returns the session with this ID, or ErrNotFound.
	GetSession(ctx context.Context, id int64) (*Session, error)
	// ListSessions returns the sessions of a user (ASCII case ignored), newest first.
	ListSessions(ctx context.Context, user string) ([]*Session, error)
	// TouchSession records that the session was used at at. ErrNotFound when it is gone.
	TouchSession(ctx context.Context, id int64, at time.Time) error
	// DeleteSession ends one session. ErrNotFound when it is gone.
	DeleteSession(ctx context.Context, id int64) error
	// DeleteExpiredSessions removes the sessions that expired at or before now and
	// returns how many.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)
}
