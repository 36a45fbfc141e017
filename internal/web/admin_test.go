package web

import (
	"context"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/as2gate/as2gate/internal/store"

	"github.com/as2gate/as2gate/internal/store/sqlite"
)

func TestEnsureAdmin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir()+"/as2gate.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	password, err := EnsureAdmin(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(password) < 20 {
		t.Fatalf("first password %q is too short", password)
	}
	u, err := st.GetUser(ctx, FirstAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if u.Role != store.RoleAdmin {
		t.Errorf("the first user has role %q, want admin", u.Role)
	}
	if string(u.PasswordHash) == password {
		t.Fatal("the password is kept in clear")
	}
	if err := bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(password)); err != nil {
		t.Errorf("the stored hash does not match the printed password: %v", err)
	}
	// A second start leaves the user alone and prints nothing.
	again, err := EnsureAdmin(ctx, st)
	if err != nil || again != "" {
		t.Errorf("second EnsureAdmin = %q, %v; want \"\", nil", again, err)
	}
	if n, err := st.CountUsers(ctx); err != nil || n != 1 {
		t.Errorf("CountUsers = %d, %v; want 1", n, err)
	}
}
