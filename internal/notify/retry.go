package notify

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RetryPolicy is how often and how far apart a notification is tried on one channel. The
// wait after the n-th failed attempt is Initial·2^(n-1), capped at Max, then spread by
// ±20% of jitter so that a burst of notifications does not hit the mail server or the
// webhook again all at the same moment. The zero value means the defaults.
type RetryPolicy struct {
	// Attempts is the number of tries, the first one included. Default 6.
	Attempts int
	// Initial is the wait after the first failed attempt. Default 2s.
	Initial time.Duration
	// Max caps one wait. Default 5m.
	Max time.Duration
}

// Default retry policy: 6 attempts, waiting about 2, 4, 8, 16 and 32 seconds between them,
// so a notification is given up about a minute after the first failure.
const (
	DefaultAttempts = 6
	DefaultInitial  = 2 * time.Second
	DefaultMaxWait  = 5 * time.Minute
)

// jitter is the fraction by which a wait is spread either way.
const jitter = 0.2

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts == 0 {
		p.Attempts = DefaultAttempts
	}
	if p.Initial == 0 {
		p.Initial = DefaultInitial
	}
	if p.Max == 0 {
		p.Max = DefaultMaxWait
	}
	return p
}

// Validate reports a policy that cannot work. Zero fields are fine: they take the defaults.
func (p RetryPolicy) Validate() error {
	switch {
	case p.Attempts < 0:
		return fmt.Errorf("notify: retry.attempts is %d: it must be at least 1 (0 for the default %d)", p.Attempts, DefaultAttempts)
	case p.Initial < 0:
		return fmt.Errorf("notify: retry.initial is %s: it must be positive (0 for the default %s)", p.Initial, DefaultInitial)
	case p.Max < 0:
		return fmt.Errorf("notify: retry.max is %s: it must be positive (0 for the default %s)", p.Max, DefaultMaxWait)
	}
	d := p.withDefaults()
	if d.Max < d.Initial {
		return fmt.Errorf("notify: retry.max (%s) is shorter than retry.initial (%s)", d.Max, d.Initial)
	}
	return nil
}

// Backoff returns the wait after the attempt-th failed attempt (1 for the first), given r,
// a random number in [0, 1) that places the wait within the jitter band: r = 0.5 gives the
// exact exponential value. It is a pure function so that the schedule can be tested.
func (p RetryPolicy) Backoff(attempt int, r float64) time.Duration {
	p = p.withDefaults()
	base := p.Initial
	for i := 1; i < attempt && base < p.Max; i++ {
		if base > p.Max/2 {
			base = p.Max // doubling would pass Max, or overflow for a huge Max
			break
		}
		base *= 2
	}
	r = min(max(r, 0), 1)
	d := float64(base) * (1 - jitter + 2*jitter*r)
	if d >= float64(p.Max) {
		return p.Max // compared as floats: converting a float beyond MaxInt64 is undefined
	}
	return time.Duration(d)
}

// deliveryError is a failed attempt that tells the retry loop more than that it failed.
type deliveryError struct {
	err error
	// permanent: trying again cannot help (an address the mail server refuses, a webhook
	// that answers 404); the loop stops at once.
	permanent bool
	// after is the wait the receiver asked for (Retry-After), 0 when it did not.
	after time.Duration
}

func (e *deliveryError) Error() string { return e.err.Error() }
func (e *deliveryError) Unwrap() error { return e.err }

func permanent(err error) error { return &deliveryError{err: err, permanent: true} }

func isPermanent(err error) bool {
	var de *deliveryError
	return errors.As(err, &de) && de.permanent
}

func retryAfter(err error) time.Duration {
	var de *deliveryError
	if errors.As(err, &de) {
		return de.after
	}
	return 0
}

// sleep waits for d or until ctx ends, whichever is first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
