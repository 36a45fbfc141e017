package web

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestThrottle: an address may fail loginBurst times, then gets one more try every
// loginRefill; another address is not affected; a forgotten address starts afresh.
func TestThrottle(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := newThrottle(func() time.Time { return now })
	const a, b = "192.0.2.1:40000", "192.0.2.2:40001"
	for i := 0; i < loginBurst; i++ {
		if !th.allow(a) {
			t.Fatalf("try %d refused", i+1)
		}
		th.failed(a)
	}
	if th.allow("192.0.2.1:50000") {
		t.Fatal("the same address from another port was allowed after the burst")
	}
	if !th.allow(b) {
		t.Fatal("another address was refused")
	}
	now = now.Add(loginRefill)
	if !th.allow(a) {
		t.Fatal("no try allowed after one refill period")
	}
	th.failed(a)
	if th.allow(a) {
		t.Fatal("a second try allowed within one refill period")
	}
	now = now.Add(loginForget + time.Minute)
	if !th.allow(a) {
		t.Fatal("an address quiet for longer than loginForget is still throttled")
	}
}

// TestLoginThrottled: after too many wrong passwords from one address, even the right one
// is refused with 429 for a while.
func TestLoginThrottled(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for i := 0; i < loginBurst; i++ {
		resp := f.post(f.client(), "/login", url.Values{"name": {testUser}, "password": {"guess"}})
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: status %d", i+1, resp.StatusCode)
		}
	}
	resp := f.post(f.client(), "/login", url.Values{"name": {testUser}, "password": {testPassword}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("after %d wrong passwords: status %d, want 429 with Retry-After", loginBurst, resp.StatusCode)
	}
}
