// Package retry decides when a failed delivery is tried again. Every decision is a pure
// function of the policy, the number of failed attempts and the clock the caller passes in,
// so schedules are exact, survive restarts (the queue stores the due time, not a timer) and
// are tested without waiting.
//
// Two families live here:
//
//   - [Policy]: the per-partner AS2 schedules, exponential (30 s, 1 m, 2 m, … doubling) or a
//     fixed interval over a duration. They carry no jitter on purpose: operators compare
//     the Failure Log with the documented schedule, and the queue already spreads load by
//     limiting concurrent sends per partner.
//   - [Backoff]: the file-endpoint schedules ([Connect], [Operation]), exponential from 2 s
//     with jitter, bounded by total time or by a number of retries.
package retry

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Strategies of a Policy.
const (
	Exponential = "exponential"
	Fixed       = "fixed"
)

// Defaults of the AS2 policies (R-RETRY-1).
const (
	DefaultAttempts = 10               // retries of the exponential strategy
	DefaultInitial  = 30 * time.Second // first wait of the exponential strategy
	// MaxAttempts bounds Policy.Attempts. Twenty doublings of 30 s already wait six months;
	// the bound keeps every computed time far from overflowing.
	MaxAttempts = 20
	// MaxRetryAfter caps how far a partner's Retry-After header may push a retry: a
	// misconfigured server must not park a message for a year.
	MaxRetryAfter = 24 * time.Hour
)

// Policy is a partner's retry schedule for one failure class: failed (transient) or
// incomplete messages. The zero Policy never retries.
type Policy struct {
	// Enabled turns retries on; a disabled policy gives up after the first failure. The
	// incomplete policy is disabled by default because the partner may already hold the
	// message.
	Enabled bool
	// Strategy is Exponential or Fixed.
	Strategy string
	// Attempts is the number of retries of the exponential strategy (3, 5 or 10 in the
	// console; 1 to MaxAttempts here).
	Attempts int
	// Initial is the first wait of the exponential strategy; each later wait doubles.
	Initial time.Duration
	// Interval is the wait between tries of the fixed strategy.
	Interval time.Duration
	// Duration bounds the fixed strategy: no retry starts later than Duration after the
	// first failure.
	Duration time.Duration
}

// DefaultFailed returns the policy for transient failures: exponential, 10 retries from 30 s.
func DefaultFailed() Policy {
	return Policy{Enabled: true, Strategy: Exponential, Attempts: DefaultAttempts, Initial: DefaultInitial}
}

// DefaultIncomplete returns the policy for incomplete failures: like DefaultFailed with 3
// retries, but disabled until the operator enables it for a partner.
func DefaultIncomplete() Policy {
	return Policy{Enabled: false, Strategy: Exponential, Attempts: 3, Initial: DefaultInitial}
}

// Validate reports a policy that cannot be followed, naming the field. A disabled policy is
// valid whatever its other fields say, so that an operator can switch it off and on again.
func (p Policy) Validate() error {
	if !p.Enabled {
		return nil
	}
	switch p.Strategy {
	case Exponential:
		if p.Attempts < 1 || p.Attempts > MaxAttempts {
			return fmt.Errorf("retry: attempts %d: want 1 to %d retries", p.Attempts, MaxAttempts)
		}
		if p.Initial <= 0 {
			return fmt.Errorf("retry: initial %s: want a positive wait such as 30s", p.Initial)
		}
	case Fixed:
		if p.Interval <= 0 {
			return fmt.Errorf("retry: interval %s: want a positive wait such as 15m", p.Interval)
		}
		if p.Duration < p.Interval {
			return fmt.Errorf("retry: duration %s: want at least the interval (%s)", p.Duration, p.Interval)
		}
	case "":
		return errors.New("retry: strategy missing: want exponential or fixed")
	default:
		return fmt.Errorf("retry: strategy %q: want exponential or fixed", p.Strategy)
	}
	return nil
}

// Next returns when to try again after a failure, and false when the policy is exhausted
// (or disabled, or invalid). attempt is the number of failed attempts so far, counting the
// one that just failed (1 after the first failure); first is when the first attempt failed;
// now is when the latest one failed.
//
// Exponential waits Initial·2^(attempt-1) after now, for at most Attempts retries: with the
// defaults the 1st retry waits 30 s, the 2nd 1 m, the 5th 8 m, the 10th 256 m. Fixed waits
// Interval after now for as long as the retry starts no later than first+Duration: every
// 15 m for 2 h gives 8 retries.
func (p Policy) Next(attempt int, first, now time.Time) (time.Time, bool) {
	if attempt < 1 || p.Validate() != nil || !p.Enabled {
		return time.Time{}, false
	}
	switch p.Strategy {
	case Exponential:
		if attempt > p.Attempts {
			return time.Time{}, false
		}
		return now.Add(Backoff{Initial: p.Initial}.Nominal(attempt)), true
	default: // Fixed; Validate admits nothing else
		next := now.Add(p.Interval)
		if next.After(first.Add(p.Duration)) {
			return time.Time{}, false
		}
		return next, true
	}
}

// NextAfter is Next honouring a wait the partner asked for (an HTTP Retry-After): the retry
// comes no earlier than now+retryAfter, itself capped at MaxRetryAfter. The hint only delays
// a retry the policy grants; it never grants one the policy has exhausted.
func (p Policy) NextAfter(attempt int, first, now time.Time, retryAfter time.Duration) (time.Time, bool) {
	next, ok := p.Next(attempt, first, now)
	if !ok {
		return next, false
	}
	return Later(next, now, retryAfter), true
}

// Later returns next, moved to now+retryAfter if that is later. retryAfter is capped at
// MaxRetryAfter; zero or negative leaves next as it is.
func Later(next, now time.Time, retryAfter time.Duration) time.Time {
	if retryAfter <= 0 {
		return next
	}
	if hinted := now.Add(min(retryAfter, MaxRetryAfter)); hinted.After(next) {
		return hinted
	}
	return next
}

// Backoff is an exponential schedule with jitter, for the file endpoints (DESIGN.md §3):
// waits start near Initial and double up to MaxWait, for at most Retries retries (0: no
// limit) and only while the retry starts within MaxElapsed of the first attempt (0: no
// limit). Each wait is drawn uniformly from [w/2, w] around the nominal wait w, so that
// endpoints failing together do not retry in step. Use Connect or Operation.
type Backoff struct {
	Initial    time.Duration
	MaxWait    time.Duration // 0: no cap
	Retries    int
	MaxElapsed time.Duration
	// Rand draws the jitter; nil uses math/rand/v2's global source. A *rand.Rand is not safe
	// for concurrent use: give each goroutine its own, or leave nil.
	Rand *rand.Rand
}

// Connect returns the connect policy of the file endpoints: exponential from 2 s with
// jitter, no retry starting more than 3 minutes after the first attempt began.
func Connect(r *rand.Rand) Backoff {
	return Backoff{Initial: 2 * time.Second, MaxElapsed: 3 * time.Minute, Rand: r}
}

// Operation returns the policy for every other file-endpoint operation: 10 retries,
// exponential from 2 s with jitter, each wait at most 392 s. The nominal waits add up to
// about 21½ minutes; with jitter the expected total is about 16 minutes.
func Operation(r *rand.Rand) Backoff {
	return Backoff{Initial: 2 * time.Second, MaxWait: 392 * time.Second, Retries: 10, Rand: r}
}

// Next returns when to try again, and false when the schedule is exhausted. attempt counts
// the failed attempts so far (1 after the first); first is when the first attempt started
// (the connect budget counts the attempts' own time, not only the waits); now is when the
// latest one failed.
func (b Backoff) Next(attempt int, first, now time.Time) (time.Time, bool) {
	if attempt < 1 || b.Initial <= 0 || (b.Retries > 0 && attempt > b.Retries) {
		return time.Time{}, false
	}
	wait := b.Nominal(attempt)
	var f float64
	if b.Rand != nil {
		f = b.Rand.Float64()
	} else {
		f = rand.Float64()
	}
	wait = wait/2 + time.Duration(f*float64(wait-wait/2))
	next := now.Add(wait)
	if b.MaxElapsed > 0 && next.After(first.Add(b.MaxElapsed)) {
		return time.Time{}, false
	}
	return next, true
}

// Nominal returns the wait before retry number attempt without jitter: Initial·2^(attempt-1),
// capped at MaxWait. Jitter draws the real wait from [Nominal/2, Nominal].
func (b Backoff) Nominal(attempt int) time.Duration {
	if attempt < 1 || b.Initial <= 0 {
		return 0
	}
	limit := b.MaxWait
	if limit <= 0 {
		limit = time.Duration(1<<63 - 1)
	}
	wait := b.Initial
	for i := 1; i < attempt && wait < limit; i++ {
		if wait > limit/2 {
			wait = limit
			break
		}
		wait *= 2
	}
	return min(wait, limit)
}
