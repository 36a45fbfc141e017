package web

import (
	"context"
	"fmt"

	"github.com/as2gate/as2gate/internal/store"
)

// FirstAdmin is the name of the user created when there is none.
const FirstAdmin = "admin"

// EnsureAdmin creates the user FirstAdmin, role admin, with a random password when the
// store has no user yet, and returns that password, to be shown once: only its hash is
// kept. It returns "" when users exist.
func EnsureAdmin(ctx context.Context, users store.Users) (string, error) {
	n, err := users.CountUsers(ctx)
	if err != nil {
		return "", fmt.Errorf("web: counting users: %w", err)
	}
	if n > 0 {
		return "", nil
	}
	password := GeneratePassword()
	hash, err := HashPassword(password)
	if err != nil {
		return "", fmt.Errorf("web: hashing the first password: %w", err)
	}
	if err := users.CreateUser(ctx, &store.User{Name: FirstAdmin, Role: store.RoleAdmin, PasswordHash: hash}); err != nil {
		return "", fmt.Errorf("web: creating the first user: %w", err)
	}
	return password, nil
}
