package web

import (
	"net"
	"sync"
	"time"
)

// Sign-in throttling: each remote address may fail loginBurst times, then one more try every
// loginRefill, so that guessing passwords online is slow; and at most loginConcurrent bcrypt
// comparisons run at once, so that a flood of sign-ins cannot take every core.
const (
	loginBurst      = 10
	loginRefill     = 6 * time.Second // 10 a minute once the burst is spent
	loginConcurrent = 4
	loginForget     = time.Hour
)

// throttle counts failed sign-ins per remote address.
type throttle struct {
	mu      sync.Mutex
	now     func() time.Time
	buckets map[string]*bucket
	slots   chan struct{}
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newThrottle(now func() time.Time) *throttle {
	return &throttle{now: now, buckets: map[string]*bucket{}, slots: make(chan struct{}, loginConcurrent)}
}

// key is the address part of a remote address: the port changes with every connection.
func throttleKey(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// take spends one try of remote's, and reports false when none is left. The try is spent
// before the password is checked, so that guesses sent at once cannot all pass the check
// before any of them counts; a right password gives it back (refund).
func (t *throttle) take(remote string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.refill(throttleKey(remote))
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// refund gives back the try a right password spent.
func (t *throttle) refund(remote string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.refill(throttleKey(remote))
	b.tokens = min(b.tokens+1, loginBurst)
}

// refill tops a bucket up for the time passed, and forgets buckets long full.
func (t *throttle) refill(key string) *bucket {
	now := t.now()
	for k, b := range t.buckets {
		if now.Sub(b.at) > loginForget {
			delete(t.buckets, k)
		}
	}
	b, ok := t.buckets[key]
	if !ok {
		b = &bucket{tokens: loginBurst, at: now}
		t.buckets[key] = b
	}
	b.tokens = min(b.tokens+now.Sub(b.at).Seconds()/loginRefill.Seconds(), loginBurst)
	b.at = now
	return b
}
