package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/as2gate/as2gate/internal/store"
)

// TestViewerReadsButCannotAct: a viewer sees the pages, not the buttons, and every
// state-changing route answers 403 with the reason, leaving the message as it was.
func TestViewerReadsButCannotAct(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m := f.create(outboundMessage("viewer"))
	pw := f.addUser("vera", store.RoleViewer)
	c := f.signInAs("vera", pw)
	for _, path := range []string{"/messages?box=queued", fmt.Sprintf("/messages/%d", m.ID), "/dashboard", "/failures", "/timeline", "/partners", "/account"} {
		if resp, _ := f.get(c, path); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d, want 200", path, resp.StatusCode)
		}
	}
	_, page := f.get(c, fmt.Sprintf("/messages/%d", m.ID))
	if strings.Contains(page, "/stop\"") || strings.Contains(page, "Actions") {
		t.Error("the details page offers actions to a viewer")
	}
	if _, page := f.get(c, "/messages?box=queued"); strings.Contains(page, "bulk-delete") {
		t.Error("the box page offers bulk delete to a viewer")
	}
	for _, path := range []string{fmt.Sprintf("/messages/%d/stop", m.ID), fmt.Sprintf("/messages/%d/retry-now", m.ID), "/messages/delete", "/compose"} {
		resp := f.post(c, path, url.Values{"id": {fmt.Sprint(m.ID)}})
		b := body(t, resp)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(b, "Your role is viewer") {
			t.Errorf("POST %s by a viewer: status %d, want 403 with the reason:\n%s", path, resp.StatusCode, b)
		}
	}
	if resp, _ := f.get(c, "/compose"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET /compose by a viewer: status %d, want 403", resp.StatusCode)
	}
	// The entry forms show stored header values, which may be credentials.
	for _, path := range []string{"/partners/new", "/partners/PX/edit", "/profiles/new", "/profiles/p/edit", "/stations/new", "/stations/GW/edit"} {
		if resp, _ := f.get(c, path); resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s by a viewer: status %d, want 403", path, resp.StatusCode)
		}
	}
	if got, err := f.store.GetMessage(t.Context(), m.ID); err != nil || got.State != store.StateQueued {
		t.Errorf("message after the viewer's posts: %+v, %v; want queued", got, err)
	}
	// A viewer still signs out and reads their own sessions.
	if resp := f.post(c, "/logout", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("logout by a viewer: status %d, want 303", resp.StatusCode)
	}
}

// TestOperatorActsButNoUsers: an operator acts on messages, and user management answers 403.
func TestOperatorActsButNoUsers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m := f.create(outboundMessage("operator"))
	pw := f.addUser("otto", store.RoleOperator)
	c := f.signInAs("otto", pw)
	resp := f.post(c, fmt.Sprintf("/messages/%d/stop", m.ID), nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("stop by an operator: status %d, want 303", resp.StatusCode)
	}
	if r, page := f.get(c, "/messages?box=failed"); r.StatusCode != http.StatusOK || strings.Contains(page, `href="/users"`) {
		t.Errorf("the operator's pages link to the users page (status %d)", r.StatusCode)
	}
	r, page := f.get(c, "/users")
	if r.StatusCode != http.StatusForbidden || !strings.Contains(page, "Managing users is for admins") {
		t.Errorf("GET /users by an operator: status %d, want 403 with the reason:\n%s", r.StatusCode, page)
	}
	for _, path := range []string{"/users", "/users/ops/role", "/users/ops/password", "/users/ops/delete"} {
		resp := f.post(c, path, url.Values{"name": {"eve"}, "role": {"admin"}, "password": {"a-long-enough-password"}})
		if b := body(t, resp); resp.StatusCode != http.StatusForbidden {
			t.Errorf("POST %s by an operator: status %d, want 403:\n%s", path, resp.StatusCode, b)
		}
	}
	if u, err := f.store.GetUser(t.Context(), "otto"); err != nil || u.Role != store.RoleOperator {
		t.Errorf("otto after the refused posts: %+v, %v", u, err)
	}
	if _, err := f.store.GetUser(t.Context(), "eve"); err == nil {
		t.Error("an operator created a user")
	}
}

// TestRoleChangeAppliesAtOnce: demoting a signed-in user takes effect on the next request.
func TestRoleChangeAppliesAtOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	m := f.create(outboundMessage("demoted"))
	pw := f.addUser("otto", store.RoleOperator)
	c := f.signInAs("otto", pw)
	admin := f.signIn()
	resp := f.post(admin, "/users/otto/role", url.Values{"role": {store.RoleViewer}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("role change: status %d", resp.StatusCode)
	}
	resp = f.post(c, fmt.Sprintf("/messages/%d/stop", m.ID), nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("stop after the demotion: status %d, want 403", resp.StatusCode)
	}
}

// TestAccountSessions: a user lists and ends their own sessions; another user's session
// answers 403 unless the user is an admin.
func TestAccountSessions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pw := f.addUser("otto", store.RoleOperator)
	otto1 := f.signInAs("otto", pw)
	otto2 := f.signInAs("otto", pw)
	admin := f.signIn()
	s1, s2, sa := f.sessionOf(otto1), f.sessionOf(otto2), f.sessionOf(admin)

	resp, page := f.get(otto1, "/account")
	if resp.StatusCode != http.StatusOK || strings.Count(page, "/end\"") != 2 || !strings.Contains(page, "(this browser)") || !strings.Contains(page, "127.0.0.1") || !strings.Contains(page, "Go-http-client") {
		t.Fatalf("account page: status %d:\n%s", resp.StatusCode, page)
	}
	// Another user's session: 403, and it lives on.
	r := f.post(otto1, fmt.Sprintf("/account/sessions/%d/end", sa.ID), nil)
	if b := body(t, r); r.StatusCode != http.StatusForbidden || !strings.Contains(b, "another user") {
		t.Errorf("ending the admin's session as otto: status %d, want 403:\n%s", r.StatusCode, b)
	}
	if resp, _ := f.get(otto1, "/account?user=ops"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("reading the admin's sessions as otto: status %d, want 403", resp.StatusCode)
	}
	if resp, _ := f.get(admin, "/dashboard"); resp.StatusCode != http.StatusOK {
		t.Fatalf("the admin's session ended: status %d", resp.StatusCode)
	}
	// One's own other session.
	r = f.post(otto1, fmt.Sprintf("/account/sessions/%d/end", s2.ID), nil)
	r.Body.Close()
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("ending one's own other session: status %d", r.StatusCode)
	}
	if resp, _ := f.get(otto2, "/dashboard"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the ended session still works: status %d", resp.StatusCode)
	}
	// An admin reads and ends another user's session.
	if resp, page := f.get(admin, "/account?user=otto"); resp.StatusCode != http.StatusOK || !strings.Contains(page, fmt.Sprintf("/account/sessions/%d/end", s1.ID)) {
		t.Fatalf("the admin reading otto's sessions: status %d:\n%s", resp.StatusCode, page)
	}
	r = f.post(admin, fmt.Sprintf("/account/sessions/%d/end", s1.ID), nil)
	r.Body.Close()
	if r.StatusCode != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), "user=otto") {
		t.Fatalf("the admin ending otto's session: status %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	if resp, _ := f.get(otto1, "/dashboard"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("otto's session ended by the admin still works: status %d", resp.StatusCode)
	}
	if r := f.post(admin, fmt.Sprintf("/account/sessions/%d/end", s1.ID), nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("ending an ended session: status %d, want 404", r.StatusCode)
	}
	// Ending one's own current session signs this browser out.
	r = f.post(admin, fmt.Sprintf("/account/sessions/%d/end", sa.ID), nil)
	r.Body.Close()
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/login" {
		t.Errorf("ending the current session: status %d to %q, want the sign-in page", r.StatusCode, r.Header.Get("Location"))
	}
}

// TestChangeOwnPassword: the current password is checked, the new one is checked, and
// every other session of the user ends while this browser stays signed in.
func TestChangeOwnPassword(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	pw := f.addUser("otto", store.RoleOperator)
	c, other := f.signInAs("otto", pw), f.signInAs("otto", pw)
	tests := []struct {
		name, current, new, repeat string
		status                     int
		want                       string
	}{
		{"wrong current", "not-it", "a-new-long-password", "a-new-long-password", http.StatusUnauthorized, "current password is wrong"},
		{"too short", pw, "short", "short", http.StatusBadRequest, "at least 12"},
		{"too long", pw, strings.Repeat("x", 73), strings.Repeat("x", 73), http.StatusBadRequest, "at most 72 bytes"},
		{"mismatch", pw, "a-new-long-password", "another-long-password", http.StatusBadRequest, "differ"},
	}
	for _, tc := range tests {
		r := f.post(c, "/account/password", url.Values{"current": {tc.current}, "new": {tc.new}, "repeat": {tc.repeat}})
		if b := body(t, r); r.StatusCode != tc.status || !strings.Contains(b, tc.want) {
			t.Errorf("%s: status %d, want %d with %q:\n%s", tc.name, r.StatusCode, tc.status, tc.want, b)
		}
	}
	r := f.post(c, "/account/password", url.Values{"current": {pw}, "new": {"a-new-long-password"}, "repeat": {"a-new-long-password"}})
	r.Body.Close()
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("password change: status %d", r.StatusCode)
	}
	if resp, _ := f.get(c, "/dashboard"); resp.StatusCode != http.StatusOK {
		t.Errorf("this browser was signed out by its own password change: status %d", resp.StatusCode)
	}
	if resp, _ := f.get(other, "/dashboard"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("another session survived the password change: status %d", resp.StatusCode)
	}
	u, _ := f.store.GetUser(t.Context(), "otto")
	if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte("a-new-long-password")) != nil {
		t.Error("the new password is not stored")
	}
	if cost, _ := bcrypt.Cost(u.PasswordHash); cost != PasswordCost {
		t.Errorf("bcrypt cost %d, want %d", cost, PasswordCost)
	}
}

// TestLoginRefusesCostlyHash: a stored hash above MaxBcryptCost is never compared.
func TestLoginRefusesCostlyHash(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// A hash string claiming cost 31: comparing it would take days.
	hash := []byte("$2a$31$abcdefghijklmnopqrstuuPvbT5W8P1G0yUDuPBsJ0u6bd1xVj3TC")
	if err := f.store.CreateUser(context.Background(), &store.User{Name: "slow", Role: store.RoleViewer, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	r := f.post(f.client(), "/login", url.Values{"name": {"slow"}, "password": {"whatever-it-is"}})
	r.Body.Close()
	if r.StatusCode != http.StatusUnauthorized {
		t.Errorf("sign-in with a cost-31 hash: status %d, want 401", r.StatusCode)
	}
}
