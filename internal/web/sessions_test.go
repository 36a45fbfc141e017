package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

func TestSecureCookieOnTLS(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c, err := New(Config{Store: f.store, Payloads: f.payloads, Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(url.Values{"name": {testUser}, "password": {testPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	c.Handler().ServeHTTP(rec, req)
	ck := sessionCookieOf(rec.Result())
	if ck == nil || !ck.Secure || !ck.HttpOnly {
		t.Errorf("cookie %+v: want Secure and HttpOnly", ck)
	}
}

// sessionOf returns the stored session of a signed-in client.
func (f *fixture) sessionOf(c *http.Client) *store.Session {
	f.t.Helper()
	u, _ := url.Parse(f.srv.URL)
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			ss, err := f.store.FindSession(context.Background(), tokenHash(ck.Value))
			if err != nil {
				f.t.Fatalf("the client's session is not stored: %v", err)
			}
			return ss
		}
	}
	f.t.Fatal("the client has no session cookie")
	return nil
}

// TestSessionStoredAsHash: the database keeps the SHA-256 of the cookie's value, never
// the value, with the browser's address and User-Agent.
func TestSessionStoredAsHash(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.signIn()
	u, _ := url.Parse(f.srv.URL)
	var token string
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			token = ck.Value
		}
	}
	list, err := f.store.ListSessions(t.Context(), testUser)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListSessions = %d sessions, %v; want 1", len(list), err)
	}
	sum := sha256.Sum256([]byte(token))
	ss := list[0]
	if ss.TokenHash != hex.EncodeToString(sum[:]) || strings.Contains(ss.TokenHash, token) {
		t.Errorf("stored token hash %q is not the SHA-256 of the cookie", ss.TokenHash)
	}
	if ss.Address != "127.0.0.1" || !strings.HasPrefix(ss.UserAgent, "Go-http-client") {
		t.Errorf("session address %q, user agent %q", ss.Address, ss.UserAgent)
	}
}

// TestSessionSurvivesRestart: a second console on the same database (a restarted gateway,
// or another node) knows the session.
func TestSessionSurvivesRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.signIn()
	f.srv.Close()
	f.srv = httptest.NewServer(f.console().Handler())
	t.Cleanup(f.srv.Close)
	if resp, body := f.get(c, "/messages?box=outbox"); resp.StatusCode != http.StatusOK || !strings.Contains(body, testUser) {
		t.Fatalf("after the restart: status %d, want 200 with the user", resp.StatusCode)
	}
}

func TestSessionExpires(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.signIn()
	ss := f.sessionOf(c)
	f.advance(DefaultSessionTTL - time.Minute)
	if resp, _ := f.get(c, "/dashboard"); resp.StatusCode != http.StatusOK {
		t.Fatalf("before expiry: status %d", resp.StatusCode)
	}
	f.advance(time.Minute)
	resp, _ := f.get(c, "/dashboard")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("after expiry: status %d to %q, want the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := f.store.GetSession(t.Context(), ss.ID); err == nil {
		t.Error("the expired session is still stored")
	}
}

// TestSessionLastSeenThrottled: a request records the session's use only when the last
// record is a minute old.
func TestSessionLastSeenThrottled(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.signIn()
	first := f.sessionOf(c).LastSeen
	f.advance(30 * time.Second)
	f.get(c, "/dashboard")
	if got := f.sessionOf(c).LastSeen; !got.Equal(first) {
		t.Errorf("last seen written after 30 s: %v, want %v", got, first)
	}
	f.advance(31 * time.Second)
	f.get(c, "/dashboard")
	if got := f.sessionOf(c).LastSeen; !got.After(first.Add(time.Minute)) {
		t.Errorf("last seen after 61 s = %v, want after %v", got, first.Add(time.Minute))
	}
}

func TestLogoutEndsStoredSession(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.signIn()
	ss := f.sessionOf(c)
	resp := f.post(c, "/logout", nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: status %d", resp.StatusCode)
	}
	if _, err := f.store.GetSession(t.Context(), ss.ID); err == nil {
		t.Error("the session is still stored after sign-out")
	}
}
