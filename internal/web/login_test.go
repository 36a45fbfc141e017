package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestLogin(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name, user, password string
		wantStatus           int
		wantCookie           bool
	}{
		{"wrong password", testUser, "not-the-password", http.StatusUnauthorized, false},
		{"unknown user", "nobody", testPassword, http.StatusUnauthorized, false},
		{"empty password", testUser, "", http.StatusUnauthorized, false},
		{"right password", testUser, testPassword, http.StatusSeeOther, true},
		{"name in other case", "OPS", testPassword, http.StatusSeeOther, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.post(f.client(), "/login", url.Values{"name": {tc.user}, "password": {tc.password}})
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			ck := sessionCookieOf(resp)
			if (ck != nil) != tc.wantCookie {
				t.Fatalf("session cookie %v, want one: %v", ck, tc.wantCookie)
			}
			if ck == nil {
				return
			}
			if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || len(ck.Value) < 43 {
				t.Errorf("cookie %+v: want HttpOnly, SameSite=Lax and a 32-byte id", ck)
			}
			if loc := resp.Header.Get("Location"); loc != "/messages?box=outbox" {
				t.Errorf("redirect to %q, want the outbox", loc)
			}
		})
	}
}

func TestLoginReturnsToThePageAsked(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct{ name, next, want string }{
		{"local page", "/messages?box=sent", "/messages?box=sent"},
		{"other site", "//evil.example/", "/messages?box=outbox"},
		{"absolute URL", "https://evil.example/", "/messages?box=outbox"},
		{"backslash", "/\\evil.example", "/messages?box=outbox"},
		{"tab between slashes", "/\t/evil.example", "/messages?box=outbox"},
		{"line end between slashes", "/\n/evil.example", "/messages?box=outbox"},
		{"backslash later", "/a\\evil", "/messages?box=outbox"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.post(f.client(), "/login", url.Values{"name": {testUser}, "password": {testPassword}, "next": {tc.next}})
			resp.Body.Close()
			if loc := resp.Header.Get("Location"); loc != tc.want {
				t.Errorf("redirect to %q, want %q", loc, tc.want)
			}
		})
	}
}

func TestPagesNeedASession(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, path := range []string{"/", "/messages?box=sent", "/messages/1", "/messages/1/files/0"} {
		t.Run(path, func(t *testing.T) {
			resp, _ := f.get(f.client(), path)
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
				t.Fatalf("status %d, Location %q; want 303 to /login", resp.StatusCode, loc)
			}
			if next, _ := url.QueryUnescape(strings.TrimPrefix(loc, "/login?next=")); next != path {
				t.Errorf("next = %q, want %q", next, path)
			}
		})
	}
	t.Run("POST", func(t *testing.T) {
		resp := f.post(f.client(), "/messages/1/stop", nil)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", resp.StatusCode)
		}
	})
	t.Run("forged cookie", func(t *testing.T) {
		c := f.client()
		u, _ := url.Parse(f.srv.URL)
		c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: strings.Repeat("A", 43)}})
		resp, _ := f.get(c, "/messages?box=outbox")
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("status %d, want 303 to /login", resp.StatusCode)
		}
	})
}

func TestLogoutEndsTheSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.signIn()
	u, _ := url.Parse(f.srv.URL)
	stolen := c.Jar.Cookies(u) // what a copy of the cookie would hold
	if resp, _ := f.get(c, "/messages?box=outbox"); resp.StatusCode != http.StatusOK {
		t.Fatalf("boxes page with a session: status %d", resp.StatusCode)
	}
	resp := f.post(c, "/logout", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("logout: status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if ck := sessionCookieOf(resp); ck == nil || ck.MaxAge >= 0 {
		t.Errorf("logout does not clear the cookie: %+v", ck)
	}
	// The session is over on the server too: the old id no longer works.
	c2 := f.client()
	c2.Jar.SetCookies(u, stolen)
	if resp, _ := f.get(c2, "/messages?box=outbox"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the old session id still works after logout: status %d", resp.StatusCode)
	}
}

func TestCrossOriginPostRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.signIn()
	m := f.create(outboundMessage("order"))
	tests := []struct {
		name    string
		path    string
		headers map[string]string
	}{
		{"action, Sec-Fetch-Site", "/messages/" + itoa(m.ID) + "/stop", map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"action, Origin", "/messages/" + itoa(m.ID) + "/stop", map[string]string{"Origin": "https://evil.example"}},
		{"logout", "/logout", map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"login", "/login", map[string]string{"Sec-Fetch-Site": "cross-site"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, f.srv.URL+tc.path, strings.NewReader("name=ops&password="+testPassword))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("status %d, want 403", resp.StatusCode)
			}
		})
	}
	got, err := f.store.GetMessage(t.Context(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != m.State {
		t.Errorf("a refused POST changed the message: state %s, want %s", got.State, m.State)
	}
	// The session survived the refused logout.
	if resp, _ := f.get(c, "/messages?box=outbox"); resp.StatusCode != http.StatusOK {
		t.Errorf("after a refused logout: status %d, want 200", resp.StatusCode)
	}
}
