package store

import (
	"context"
	"time"
)

// User is one person who signs in to the console.
type User struct {
	ID   int64
	Name string // unique, compared without regard to ASCII case
	// PasswordHash is the bcrypt hash of the password; the password itself is never kept.
	PasswordHash []byte
	CreatedAt    time.Time
}

// Users keeps the console's users.
type Users interface {
	// CreateUser inserts u and sets u.ID and CreatedAt. It refuses a user without a name or
	// a password hash, and answers ErrConflict when the name is taken.
	CreateUser(ctx context.Context, u *User) error
	// GetUser returns the user with this name (ASCII case ignored), or ErrNotFound.
	GetUser(ctx context.Context, name string) (*User, error)
	// CountUsers returns how many users there are.
	CountUsers(ctx context.Context) (int, error)
}
