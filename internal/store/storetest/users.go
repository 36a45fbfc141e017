package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/as2gate/as2gate/internal/store"
)

func testUsers(t *testing.T, s store.Store) {
	ctx := context.Background()
	if n, err := s.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("CountUsers on an empty store = %d, %v; want 0, nil", n, err)
	}
	if _, err := s.GetUser(ctx, "admin"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetUser(admin) on an empty store: %v, want ErrNotFound", err)
	}
	u := &store.User{Name: "admin", Role: store.RoleAdmin, PasswordHash: []byte("$2a$10$hash")}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if u.ID == 0 || u.CreatedAt.IsZero() {
		t.Errorf("CreateUser left ID %d, CreatedAt %v", u.ID, u.CreatedAt)
	}
	for _, name := range []string{"admin", "ADMIN"} {
		got, err := s.GetUser(ctx, name)
		if err != nil {
			t.Fatalf("GetUser(%s): %v", name, err)
		}
		if got.ID != u.ID || got.Name != "admin" || got.Role != store.RoleAdmin || string(got.PasswordHash) != "$2a$10$hash" || !got.CreatedAt.Equal(u.CreatedAt) {
			t.Errorf("GetUser(%s) = %+v, want %+v", name, got, u)
		}
	}
	if err := s.CreateUser(ctx, &store.User{Name: "Admin", Role: store.RoleViewer, PasswordHash: []byte("x")}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateUser with a taken name (other case): %v, want ErrConflict", err)
	}
	if n, err := s.CountUsers(ctx); err != nil || n != 1 {
		t.Errorf("CountUsers = %d, %v; want 1, nil", n, err)
	}
}

func testUsersRejectInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	tests := []struct {
		name string
		u    store.User
	}{
		{"no name", store.User{Role: store.RoleAdmin, PasswordHash: []byte("h")}},
		{"blank name", store.User{Name: "  ", Role: store.RoleAdmin, PasswordHash: []byte("h")}},
		{"no hash", store.User{Name: "ops", Role: store.RoleAdmin}},
		{"no role", store.User{Name: "ops", PasswordHash: []byte("h")}},
		{"unknown role", store.User{Name: "ops", Role: "root", PasswordHash: []byte("h")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.CreateUser(ctx, &tc.u); err == nil {
				t.Errorf("CreateUser(%+v) succeeded", tc.u)
			}
		})
	}
	if n, err := s.CountUsers(ctx); err != nil || n != 0 {
		t.Errorf("CountUsers after refused creations = %d, %v; want 0, nil", n, err)
	}
}
