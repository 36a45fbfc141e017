package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

func addUser(t *testing.T, s store.Store, name, role string) *store.User {
	t.Helper()
	u := &store.User{Name: name, Role: role, PasswordHash: []byte("$2a$10$" + name)}
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatalf("CreateUser(%s, %s): %v", name, role, err)
	}
	return u
}

func userNames(us []*store.User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.Name + ":" + u.Role
	}
	return out
}

func testUserRoles(t *testing.T, s store.Store) {
	ctx := context.Background()
	addUser(t, s, "root", store.RoleAdmin)
	addUser(t, s, "bob", store.RoleOperator)
	addUser(t, s, "carol", store.RoleViewer)
	us, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatalf("ListUsers: %v", err)
	}
	if got, want := userNames(us), []string{"bob:operator", "carol:viewer", "root:admin"}; !slices.Equal(got, want) {
		t.Fatalf("ListUsers = %v, want %v", got, want)
	}
	// The last admin cannot step down.
	if err := s.SetUserRole(ctx, "root", store.RoleViewer); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("SetUserRole demoting the last admin: %v, want ErrConflict", err)
	}
	if err := s.SetUserRole(ctx, "root", "root"); err == nil || errors.Is(err, store.ErrConflict) {
		t.Errorf("SetUserRole to an unknown role: %v, want a validation error", err)
	}
	if err := s.SetUserRole(ctx, "nobody", store.RoleViewer); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetUserRole of an unknown user: %v, want ErrNotFound", err)
	}
	// With a second admin, the first may step down; names ignore ASCII case.
	if err := s.SetUserRole(ctx, "BOB", store.RoleAdmin); err != nil {
		t.Fatalf("SetUserRole(BOB, admin): %v", err)
	}
	if err := s.SetUserRole(ctx, "root", store.RoleViewer); err != nil {
		t.Fatalf("SetUserRole(root, viewer) with another admin: %v", err)
	}
	if u, err := s.GetUser(ctx, "root"); err != nil || u.Role != store.RoleViewer {
		t.Errorf("GetUser(root) = %+v, %v; want role viewer", u, err)
	}
	if err := s.SetUserRole(ctx, "bob", store.RoleOperator); !errors.Is(err, store.ErrConflict) {
		t.Errorf("SetUserRole demoting the new last admin: %v, want ErrConflict", err)
	}
}

func testUserPasswordAndDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	root := addUser(t, s, "root", store.RoleAdmin)
	addUser(t, s, "bob", store.RoleOperator)
	now := base()
	a := newSession(t, s, "bob", now)
	b := newSession(t, s, "bob", now)
	r := newSession(t, s, "root", now)

	if err := s.SetUserPassword(ctx, "bob", []byte("$2a$10$new")); err != nil {
		t.Fatalf("SetUserPassword: %v", err)
	}
	if u, err := s.GetUser(ctx, "bob"); err != nil || string(u.PasswordHash) != "$2a$10$new" {
		t.Errorf("GetUser(bob) after SetUserPassword = %+v, %v", u, err)
	}
	for _, ss := range []*store.Session{a, b} {
		if _, err := s.FindSession(ctx, ss.TokenHash); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("session %d of bob outlived the password change: %v", ss.ID, err)
		}
	}
	if _, err := s.FindSession(ctx, r.TokenHash); err != nil {
		t.Errorf("root's session ended with bob's password change: %v", err)
	}
	if err := s.SetUserPassword(ctx, "nobody", []byte("h")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("SetUserPassword of an unknown user: %v, want ErrNotFound", err)
	}
	if err := s.SetUserPassword(ctx, "bob", nil); err == nil {
		t.Error("SetUserPassword accepted an empty hash")
	}

	if err := s.DeleteUser(ctx, "root"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("DeleteUser of the last admin: %v, want ErrConflict", err)
	}
	if _, err := s.GetUser(ctx, root.Name); err != nil {
		t.Fatalf("the refused DeleteUser removed root: %v", err)
	}
	c := newSession(t, s, "bob", now)
	if err := s.DeleteUser(ctx, "Bob"); err != nil {
		t.Fatalf("DeleteUser(Bob): %v", err)
	}
	if _, err := s.GetUser(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUser(bob) after DeleteUser: %v, want ErrNotFound", err)
	}
	if _, err := s.GetSession(ctx, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("bob's session outlived the user: %v", err)
	}
	if err := s.DeleteUser(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteUser twice: %v, want ErrNotFound", err)
	}
	if n, err := s.CountUsers(ctx); err != nil || n != 1 {
		t.Errorf("CountUsers = %d, %v; want 1", n, err)
	}
}

// newSession creates a session of user, created at now and valid for an hour.
func newSession(t *testing.T, s store.Store, user string, now time.Time) *store.Session {
	t.Helper()
	sum := sha256.Sum256([]byte(messageID()))
	ss := &store.Session{TokenHash: hex.EncodeToString(sum[:]), User: user, CreatedAt: now, ExpiresAt: now.Add(time.Hour),
		Address: "192.0.2.7:50000", UserAgent: "Mozilla/5.0 (test)"}
	if err := s.CreateSession(context.Background(), ss); err != nil {
		t.Fatalf("CreateSession(%s): %v", user, err)
	}
	return ss
}

func sameSession(t *testing.T, what string, got, want *store.Session) {
	t.Helper()
	if got.ID != want.ID || got.TokenHash != want.TokenHash || got.User != want.User || got.Role != want.Role ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.LastSeen.Equal(want.LastSeen) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
		got.Address != want.Address || got.UserAgent != want.UserAgent {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testSessions(t *testing.T, s store.Store) {
	ctx := context.Background()
	addUser(t, s, "root", store.RoleAdmin)
	addUser(t, s, "carol", store.RoleViewer)
	now := base()
	a := newSession(t, s, "CAROL", now)
	if a.ID == 0 || a.Role != store.RoleViewer || !a.LastSeen.Equal(now) {
		t.Fatalf("CreateSession left ID %d, role %q, last seen %v", a.ID, a.Role, a.LastSeen)
	}
	a.User = "carol" // as stored
	b := newSession(t, s, "carol", now.Add(time.Second))
	r := newSession(t, s, "root", now)

	got, err := s.FindSession(ctx, a.TokenHash)
	if err != nil {
		t.Fatalf("FindSession: %v", err)
	}
	sameSession(t, "FindSession", got, a)
	if got, err = s.GetSession(ctx, a.ID); err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	sameSession(t, "GetSession", got, a)
	if _, err := s.FindSession(ctx, "0000"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FindSession of an unknown hash: %v, want ErrNotFound", err)
	}
	if _, err := s.GetSession(ctx, r.ID+100); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetSession of an unknown id: %v, want ErrNotFound", err)
	}

	list, err := s.ListSessions(ctx, "carol")
	if err != nil {
		t.Fatalf("ListSessions: %v", err)
	}
	if len(list) != 2 || list[0].ID != b.ID || list[1].ID != a.ID {
		t.Fatalf("ListSessions(carol) = %v, want [%d %d] (newest first)", sessionIDs(list), b.ID, a.ID)
	}
	if list, err := s.ListSessions(ctx, "nobody"); err != nil || len(list) != 0 {
		t.Errorf("ListSessions(nobody) = %v, %v; want none", sessionIDs(list), err)
	}

	// A role change shows in the session at once.
	if err := s.SetUserRole(ctx, "carol", store.RoleOperator); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindSession(ctx, a.TokenHash); err != nil || got.Role != store.RoleOperator {
		t.Errorf("FindSession after the role change = %+v, %v; want role operator", got, err)
	}

	seen := now.Add(2 * time.Minute)
	if err := s.TouchSession(ctx, a.ID, seen); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	if got, err := s.GetSession(ctx, a.ID); err != nil || !got.LastSeen.Equal(seen) || !got.CreatedAt.Equal(now) {
		t.Errorf("GetSession after TouchSession = %+v, %v; want last seen %v", got, err, seen)
	}

	if err := s.DeleteSession(ctx, b.ID); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if _, err := s.FindSession(ctx, b.TokenHash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("FindSession after DeleteSession: %v, want ErrNotFound", err)
	}
	if err := s.DeleteSession(ctx, b.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteSession twice: %v, want ErrNotFound", err)
	}
	if err := s.TouchSession(ctx, b.ID, seen); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TouchSession of an ended session: %v, want ErrNotFound", err)
	}

	// Expiry: FindSession still answers an expired row (the caller decides), and
	// DeleteExpiredSessions removes exactly the rows expired at or before now.
	late := newSession(t, s, "root", now.Add(time.Hour))
	n, err := s.DeleteExpiredSessions(ctx, now.Add(time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("DeleteExpiredSessions = %d, %v; want 2 (a and r)", n, err)
	}
	for _, ss := range []*store.Session{a, r} {
		if _, err := s.GetSession(ctx, ss.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("expired session %d survived: %v", ss.ID, err)
		}
	}
	if _, err := s.FindSession(ctx, late.TokenHash); err != nil {
		t.Errorf("a live session was removed with the expired ones: %v", err)
	}
}

func sessionIDs(ss []*store.Session) []int64 {
	out := make([]int64, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

func testSessionsRejectInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	addUser(t, s, "root", store.RoleAdmin)
	now := base()
	tests := []struct {
		name    string
		ss      store.Session
		missing bool
	}{
		{"no token hash", store.Session{User: "root", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, false},
		{"no expiry", store.Session{TokenHash: "ab", User: "root", CreatedAt: now}, false},
		{"no creation time", store.Session{TokenHash: "ab", User: "root", ExpiresAt: now}, false},
		{"unknown user", store.Session{TokenHash: "ab", User: "nobody", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.CreateSession(ctx, &tc.ss)
			if err == nil {
				t.Fatalf("CreateSession(%+v) succeeded", tc.ss)
			}
			if tc.missing && !errors.Is(err, store.ErrNotFound) {
				t.Errorf("CreateSession for an unknown user: %v, want ErrNotFound", err)
			}
		})
	}
	if list, err := s.ListSessions(ctx, "root"); err != nil || len(list) != 0 {
		t.Errorf("ListSessions after refused creations = %v, %v; want none", sessionIDs(list), err)
	}
	// A session made with the password hash just checked is stored only while that hash is
	// still the user's: a password changed in between wins.
	checked := store.Session{TokenHash: "c1", User: "root", CreatedAt: now, ExpiresAt: now.Add(time.Hour), PasswordHash: []byte("$2a$10$root")}
	if err := s.CreateSession(ctx, &checked); err != nil {
		t.Fatalf("CreateSession with the current password hash: %v", err)
	}
	if err := s.SetUserPassword(ctx, "root", []byte("$2a$10$changed")); err != nil {
		t.Fatal(err)
	}
	stale := store.Session{TokenHash: "c2", User: "root", CreatedAt: now, ExpiresAt: now.Add(time.Hour), PasswordHash: []byte("$2a$10$root")}
	if err := s.CreateSession(ctx, &stale); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateSession with a password hash no longer the user's: %v, want ErrConflict", err)
	}
	if list, err := s.ListSessions(ctx, "root"); err != nil || len(list) != 0 {
		t.Errorf("sessions after the password change = %v, %v; want none", sessionIDs(list), err)
	}
	// A token hash is unique.
	ss := newSession(t, s, "root", now)
	dup := *ss
	dup.ID = 0
	if err := s.CreateSession(ctx, &dup); err == nil {
		t.Error("CreateSession accepted a token hash in use")
	}
}
