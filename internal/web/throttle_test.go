package web

import (
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
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
		if !th.take(a) {
			t.Fatalf("try %d refused", i+1)
		}
	}
	if th.take("192.0.2.1:50000") {
		t.Fatal("the same address from another port was allowed after the burst")
	}
	if !th.take(b) {
		t.Fatal("another address was refused")
	}
	th.refund(b) // a right password gives its try back
	for i := 0; i < loginBurst; i++ {
		if !th.take(b) {
			t.Fatalf("after a refund, try %d of the other address refused", i+1)
		}
	}
	now = now.Add(loginRefill)
	if !th.take(a) {
		t.Fatal("no try allowed after one refill period")
	}
	if th.take(a) {
		t.Fatal("a second try allowed within one refill period")
	}
	now = now.Add(loginForget + time.Minute)
	if !th.take(a) {
		t.Fatal("an address quiet for longer than loginForget is still throttled")
	}
}

// TestThrottleAtOnce: tries made at the same moment are counted before any password is
// checked, so no more than the burst pass.
func TestThrottleAtOnce(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	th := newThrottle(func() time.Time { return now })
	var passed atomic.Int32
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if th.take("192.0.2.9:1") {
				passed.Add(1)
			}
		})
	}
	wg.Wait()
	if n := passed.Load(); n != loginBurst {
		t.Fatalf("%d of 200 simultaneous tries passed, want %d", n, loginBurst)
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
