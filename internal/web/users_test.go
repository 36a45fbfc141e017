package web

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/as2gate/as2gate/internal/store"
)

func TestUsersPage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	admin := f.signIn()
	if r, page := f.get(admin, "/users"); r.StatusCode != http.StatusOK || !strings.Contains(page, "ops") || !strings.Contains(page, "(you)") {
		t.Fatalf("users page: status %d:\n%s", r.StatusCode, page)
	}
	// Create with a chosen password.
	r := f.post(admin, "/users", url.Values{"name": {"otto"}, "role": {"operator"}, "password": {"otto-long-password"}})
	if b := body(t, r); r.StatusCode != http.StatusOK || !strings.Contains(b, "otto was created with the role operator") {
		t.Fatalf("create otto: status %d:\n%s", r.StatusCode, b)
	}
	f.signInAs("otto", "otto-long-password")
	// Create with a generated password, shown once.
	r = f.post(admin, "/users", url.Values{"name": {"vera"}, "role": {"viewer"}})
	b := body(t, r)
	m := regexp.MustCompile(`<code class="secret">([A-Za-z0-9_-]{24})</code>`).FindStringSubmatch(b)
	if r.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("create vera: status %d, no generated password shown:\n%s", r.StatusCode, b)
	}
	vera := f.signInAs("vera", m[1])
	if _, page := f.get(admin, "/users"); strings.Contains(page, m[1]) {
		t.Error("the generated password is shown again")
	}

	bad := []struct {
		name   string
		form   url.Values
		status int
		want   string
	}{
		{"taken name", url.Values{"name": {"OTTO"}, "role": {"viewer"}}, http.StatusConflict, "already"},
		{"no name", url.Values{"role": {"viewer"}}, http.StatusBadRequest, "needs a name"},
		{"name with a slash", url.Values{"name": {"a/b"}, "role": {"viewer"}}, http.StatusBadRequest, "letters, digits"},
		{"unknown role", url.Values{"name": {"x"}, "role": {"root"}}, http.StatusBadRequest, "not one of admin, operator, viewer"},
		{"short password", url.Values{"name": {"x"}, "role": {"viewer"}, "password": {"short"}}, http.StatusBadRequest, "at least 12"},
	}
	for _, tc := range bad {
		r := f.post(admin, "/users", tc.form)
		if b := body(t, r); r.StatusCode != tc.status || !strings.Contains(b, tc.want) {
			t.Errorf("%s: status %d, want %d with %q:\n%s", tc.name, r.StatusCode, tc.status, tc.want, b)
		}
	}

	// Role change.
	r = f.post(admin, "/users/vera/role", url.Values{"role": {"operator"}})
	r.Body.Close()
	if u, _ := f.store.GetUser(t.Context(), "vera"); r.StatusCode != http.StatusSeeOther || u.Role != store.RoleOperator {
		t.Errorf("role change: status %d, role %q", r.StatusCode, u.Role)
	}
	if r := f.post(admin, "/users/nobody/role", url.Values{"role": {"viewer"}}); r.StatusCode != http.StatusNotFound {
		t.Errorf("role of an unknown user: status %d, want 404", r.StatusCode)
	}

	// Reset password: a generated one, the user's sessions end.
	r = f.post(admin, "/users/vera/password", url.Values{"password": {""}})
	b = body(t, r)
	m = regexp.MustCompile(`<code class="secret">([A-Za-z0-9_-]{24})</code>`).FindStringSubmatch(b)
	if r.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("reset: status %d:\n%s", r.StatusCode, b)
	}
	if resp, _ := f.get(vera, "/dashboard"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("vera's session survived the reset: status %d", resp.StatusCode)
	}
	u, _ := f.store.GetUser(t.Context(), "vera")
	if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(m[1])) != nil {
		t.Error("the generated password is not vera's")
	}
	if r := f.post(admin, "/users/vera/password", url.Values{"password": {"short"}}); r.StatusCode != http.StatusBadRequest {
		t.Errorf("reset to a short password: status %d, want 400", r.StatusCode)
	}

	// Delete: not oneself, never the last admin.
	r = f.post(admin, "/users/OPS/delete", nil)
	if b := body(t, r); r.StatusCode != http.StatusConflict || !strings.Contains(b, "cannot remove yourself") {
		t.Errorf("deleting oneself: status %d:\n%s", r.StatusCode, b)
	}
	r = f.post(admin, "/users/ops/role", url.Values{"role": {"viewer"}})
	if b := body(t, r); r.StatusCode != http.StatusConflict || !strings.Contains(b, "last admin") {
		t.Errorf("demoting the last admin: status %d:\n%s", r.StatusCode, b)
	}
	r = f.post(admin, "/users/vera/delete", nil)
	r.Body.Close()
	if _, err := f.store.GetUser(t.Context(), "vera"); r.StatusCode != http.StatusSeeOther || err == nil {
		t.Errorf("deleting vera: status %d, user still there: %v", r.StatusCode, err == nil)
	}
	// A second admin can remove the first; then the second is the last.
	f.post(admin, "/users/otto/role", url.Values{"role": {"admin"}}).Body.Close()
	otto := f.signInAs("otto", "otto-long-password")
	r = f.post(otto, "/users/ops/delete", nil)
	r.Body.Close()
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("otto removing ops: status %d", r.StatusCode)
	}
	if resp, _ := f.get(admin, "/dashboard"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the removed user's session still works: status %d", resp.StatusCode)
	}
	if n, _ := f.store.CountUsers(t.Context()); n != 1 {
		t.Errorf("%d users left, want 1", n)
	}
}
