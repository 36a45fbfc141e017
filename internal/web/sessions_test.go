package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSessionExpires(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := newSessions(time.Hour, func() time.Time { return now })
	id, _ := s.create("ops")
	other, _ := s.create("ops")
	if id == other {
		t.Fatal("two sessions got the same id")
	}
	now = now.Add(59 * time.Minute)
	if s.get(id) == nil {
		t.Fatal("the session ended before its lifetime")
	}
	now = now.Add(time.Minute)
	if s.get(id) != nil {
		t.Fatal("the session outlived its lifetime")
	}
	// Starting a session sweeps the expired ones.
	s.create("ops")
	if n := len(s.byID); n != 1 {
		t.Errorf("%d sessions kept, want 1", n)
	}
}

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
