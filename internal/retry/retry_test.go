package retry

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// schedule runs p as the queue would, each retry failing at once, and returns the waits.
func schedule(p Policy, retryAfter time.Duration) []time.Duration {
	var waits []time.Duration
	now := t0
	for attempt := 1; attempt < 1000; attempt++ {
		next, ok := p.NextAfter(attempt, t0, now, retryAfter)
		if !ok {
			return waits
		}
		waits = append(waits, next.Sub(now))
		now = next
	}
	panic("schedule does not end")
}

func minutes(ms ...float64) []time.Duration {
	var d []time.Duration
	for _, m := range ms {
		d = append(d, time.Duration(m*float64(time.Minute)))
	}
	return d
}

func TestPolicySchedules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		policy     Policy
		retryAfter time.Duration
		want       []time.Duration
	}{
		{"default failed: 10 retries from 30 s doubling", DefaultFailed(), 0,
			minutes(0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256)},
		{"3 retries", Policy{Enabled: true, Strategy: Exponential, Attempts: 3, Initial: 30 * time.Second}, 0,
			minutes(0.5, 1, 2)},
		{"5 retries", Policy{Enabled: true, Strategy: Exponential, Attempts: 5, Initial: 30 * time.Second}, 0,
			minutes(0.5, 1, 2, 4, 8)},
		{"default incomplete is off", DefaultIncomplete(), 0, nil},
		{"incomplete switched on", func() Policy { p := DefaultIncomplete(); p.Enabled = true; return p }(), 0,
			minutes(0.5, 1, 2)},
		{"fixed every 15 m for 2 h", Policy{Enabled: true, Strategy: Fixed, Interval: 15 * time.Minute, Duration: 2 * time.Hour}, 0,
			minutes(15, 15, 15, 15, 15, 15, 15, 15)},
		{"fixed, duration not a multiple", Policy{Enabled: true, Strategy: Fixed, Interval: 40 * time.Minute, Duration: 2 * time.Hour}, 0,
			minutes(40, 40, 40)},
		{"Retry-After longer than the policy's waits", Policy{Enabled: true, Strategy: Exponential, Attempts: 3, Initial: 30 * time.Second}, 90 * time.Second,
			minutes(1.5, 1.5, 2)},
		{"Retry-After capped", Policy{Enabled: true, Strategy: Exponential, Attempts: 2, Initial: 30 * time.Second}, 365 * 24 * time.Hour,
			[]time.Duration{MaxRetryAfter, MaxRetryAfter}},
		{"zero policy never retries", Policy{}, 0, nil},
		{"invalid policy never retries", Policy{Enabled: true, Strategy: "linear", Attempts: 3, Initial: time.Second}, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := schedule(tc.policy, tc.retryAfter)
			if len(got) != len(tc.want) {
				t.Fatalf("waits %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("retry %d waits %v, want %v", i+1, got[i], tc.want[i])
				}
			}
		})
	}
}

// The fixed strategy measures its duration from the first failure, not from the latest, so
// slow attempts shorten the schedule rather than stretching it.
func TestFixedCountsFromFirstFailure(t *testing.T) {
	t.Parallel()
	p := Policy{Enabled: true, Strategy: Fixed, Interval: 15 * time.Minute, Duration: time.Hour}
	if next, ok := p.Next(3, t0, t0.Add(45*time.Minute)); !ok || !next.Equal(t0.Add(time.Hour)) {
		t.Errorf("at 45 m: %v %v, want a retry at 1 h", next, ok)
	}
	if _, ok := p.Next(3, t0, t0.Add(46*time.Minute)); ok {
		t.Error("at 46 m: a retry past the duration was granted")
	}
}

func TestExponentialNeverOverflows(t *testing.T) {
	t.Parallel()
	p := Policy{Enabled: true, Strategy: Exponential, Attempts: MaxAttempts, Initial: 1000 * time.Hour}
	prev := time.Duration(0)
	for attempt := 1; attempt <= MaxAttempts; attempt++ {
		next, ok := p.Next(attempt, t0, t0)
		if !ok || next.Sub(t0) < prev {
			t.Fatalf("attempt %d: %v %v after a wait of %v", attempt, next, ok, prev)
		}
		prev = next.Sub(t0)
	}
	if _, ok := p.Next(0, t0, t0); ok {
		t.Error("attempt 0 granted a retry")
	}
}

func TestLater(t *testing.T) {
	t.Parallel()
	next := t0.Add(time.Minute)
	tests := []struct {
		name string
		hint time.Duration
		want time.Time
	}{
		{"no hint", 0, next},
		{"negative hint", -time.Hour, next},
		{"shorter hint", 10 * time.Second, next},
		{"longer hint", 5 * time.Minute, t0.Add(5 * time.Minute)},
		{"absurd hint", 1 << 62, t0.Add(MaxRetryAfter)},
	}
	for _, tc := range tests {
		if got := Later(next, t0, tc.hint); !got.Equal(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy Policy
		want   string // "" for valid, else a part of the error
	}{
		{"default failed", DefaultFailed(), ""},
		{"default incomplete", DefaultIncomplete(), ""},
		{"disabled with nonsense", Policy{Strategy: "nonsense"}, ""},
		{"no strategy", Policy{Enabled: true}, "strategy missing"},
		{"unknown strategy", Policy{Enabled: true, Strategy: "linear"}, `strategy "linear"`},
		{"no attempts", Policy{Enabled: true, Strategy: Exponential, Initial: time.Second}, "attempts 0"},
		{"too many attempts", Policy{Enabled: true, Strategy: Exponential, Attempts: 50, Initial: time.Second}, "attempts 50"},
		{"no initial", Policy{Enabled: true, Strategy: Exponential, Attempts: 3}, "initial 0s"},
		{"no interval", Policy{Enabled: true, Strategy: Fixed, Duration: time.Hour}, "interval 0s"},
		{"duration below interval", Policy{Enabled: true, Strategy: Fixed, Interval: time.Hour, Duration: time.Minute}, "duration 1m0s"},
	}
	for _, tc := range tests {
		err := tc.policy.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want valid", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.want)
		}
	}
}

func TestBackoffNominal(t *testing.T) {
	t.Parallel()
	var got []time.Duration
	op := Operation(nil)
	for attempt := 1; attempt <= 10; attempt++ {
		got = append(got, op.Nominal(attempt))
	}
	want := []time.Duration{2, 4, 8, 16, 32, 64, 128, 256, 392, 392}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Errorf("retry %d: nominal %v, want %v", i+1, got[i], want[i]*time.Second)
		}
	}
	if d := (Backoff{Initial: time.Hour}).Nominal(200); d <= 0 {
		t.Errorf("uncapped nominal wait overflowed to %v", d)
	}
}

// fixedRand returns a source whose Float64 gives values spread over [0, 1).
func fixedRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

func TestOperationBackoff(t *testing.T) {
	t.Parallel()
	op := Operation(fixedRand())
	now, total := t0, time.Duration(0)
	for attempt := 1; ; attempt++ {
		next, ok := op.Next(attempt, t0, now)
		if !ok {
			if attempt != 11 {
				t.Fatalf("gave up after %d retries, want 10", attempt-1)
			}
			break
		}
		wait, nominal := next.Sub(now), op.Nominal(attempt)
		if wait < nominal/2 || wait > nominal {
			t.Errorf("retry %d waits %v, want within [%v, %v]", attempt, wait, nominal/2, nominal)
		}
		total += wait
		now = next
	}
	// The nominal waits add up to 1294 s; jitter keeps the total between half and all of it.
	if total < 647*time.Second || total > 1294*time.Second {
		t.Errorf("total wait %v, want 647 s to 1294 s", total)
	}
}

func TestConnectBackoffBudget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		attemptOf time.Duration // how long each connect attempt takes to fail
		retries   int
	}{
		// Each attempt fails after 100 s: the second failure comes past the 3 minutes.
		{"slow timeouts", 100 * time.Second, 1},
		// Fast failures: waits of about 2, 4, 8, 16, 32, 64 s fit in 3 minutes, 128 s does not.
		{"fast failures", 0, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Jitter at its top: every wait is the nominal one, so the count is exact.
			b := Connect(nil)
			b.Rand = rand.New(constSource(1<<64 - 1))
			now, retries := t0.Add(tc.attemptOf), 0
			for attempt := 1; ; attempt++ {
				next, ok := b.Next(attempt, t0, now)
				if !ok {
					break
				}
				if next.After(t0.Add(3 * time.Minute)) {
					t.Fatalf("retry %d at %v, past the 3 minute budget", attempt, next.Sub(t0))
				}
				retries++
				now = next.Add(tc.attemptOf)
			}
			if retries != tc.retries {
				t.Errorf("%d retries, want %d", retries, tc.retries)
			}
		})
	}
}

// constSource is a rand.Source that always returns the same value.
type constSource uint64

func (c constSource) Uint64() uint64 { return uint64(c) }
