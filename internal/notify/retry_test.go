package notify

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestBackoff(t *testing.T) {
	t.Parallel()
	const s = time.Second
	tests := []struct {
		name    string
		policy  RetryPolicy
		attempt int
		r       float64
		want    time.Duration
	}{
		{"default first wait", RetryPolicy{}, 1, 0.5, 2 * s},
		{"default second wait", RetryPolicy{}, 2, 0.5, 4 * s},
		{"default fifth wait", RetryPolicy{}, 5, 0.5, 32 * s},
		{"jitter low end", RetryPolicy{}, 3, 0, 8 * s * 8 / 10},
		{"jitter high end", RetryPolicy{}, 3, 1, 8 * s * 12 / 10},
		{"r out of range is clamped", RetryPolicy{}, 3, 7, 8 * s * 12 / 10},
		{"capped at max", RetryPolicy{Initial: 30 * s, Max: time.Minute}, 4, 0.5, time.Minute},
		{"jitter does not pass max", RetryPolicy{Initial: 30 * s, Max: time.Minute}, 2, 1, time.Minute},
		{"default max", RetryPolicy{}, 20, 0.5, DefaultMaxWait},
		{"huge max does not overflow", RetryPolicy{Max: math.MaxInt64}, 200, 0.5, math.MaxInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.policy.Backoff(tt.attempt, tt.r); got != tt.want {
				t.Errorf("Backoff(%d, %v) = %v, want %v", tt.attempt, tt.r, got, tt.want)
			}
		})
	}
}

func TestRetryPolicyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		policy  RetryPolicy
		mention string
	}{
		{"zero is the default", RetryPolicy{}, ""},
		{"one attempt", RetryPolicy{Attempts: 1}, ""},
		{"negative attempts", RetryPolicy{Attempts: -2}, "retry.attempts"},
		{"negative initial", RetryPolicy{Initial: -time.Second}, "retry.initial"},
		{"negative max", RetryPolicy{Max: -time.Second}, "retry.max"},
		{"max below the default initial", RetryPolicy{Max: time.Second}, "shorter than retry.initial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.policy.Validate()
			if tt.mention == "" && err != nil || tt.mention != "" && (err == nil || !strings.Contains(err.Error(), tt.mention)) {
				t.Errorf("Validate = %v, want %q", err, tt.mention)
			}
		})
	}
}

// TestSleep runs the default wait under a fake clock: it lasts exactly as long as asked,
// and ends early with the cause when the context does.
func TestSleep(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := sleep(t.Context(), 2*time.Second); err != nil {
			t.Fatalf("sleep: %v", err)
		}
		if d := time.Since(start); d != 2*time.Second {
			t.Errorf("sleep(2s) took %v", d)
		}

		ctx, cancel := context.WithCancelCause(t.Context())
		stop := errors.New("stopping")
		time.AfterFunc(time.Second, func() { cancel(stop) })
		start = time.Now()
		if err := sleep(ctx, time.Hour); !errors.Is(err, stop) {
			t.Errorf("sleep = %v, want the context's cause", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("an interrupted sleep took %v, want 1s", d)
		}
	})
}

// TestDefaultScheduleUnderFakeTime delivers through the real timer-based wait, in a
// synctest bubble whose clock jumps: the default policy gives up a minute after the first
// failure, without the test waiting for it.
func TestDefaultScheduleUnderFakeTime(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var at []time.Time
		s := &funcSender{fn: func() error {
			at = append(at, time.Now())
			return errors.New("refused")
		}}
		n := &Notifier{
			senders: []sender{s}, retry: RetryPolicy{}.withDefaults(), now: time.Now,
			sleep: sleep, rand: func() float64 { return 0.5 }, log: slog.New(slog.DiscardHandler),
		}
		start := time.Now()
		if err := n.Deliver(t.Context(), failedEvent()); err == nil {
			t.Fatal("Deliver succeeded")
		}
		want := []time.Duration{0, 2 * time.Second, 6 * time.Second, 14 * time.Second, 30 * time.Second, 62 * time.Second}
		if len(at) != len(want) {
			t.Fatalf("%d attempts, want %d", len(at), len(want))
		}
		for i := range at {
			if d := at[i].Sub(start); d != want[i] {
				t.Errorf("attempt %d at +%v, want +%v", i+1, d, want[i])
			}
		}
	})
}

type funcSender struct{ fn func() error }

func (f *funcSender) name() string                              { return "test" }
func (f *funcSender) send(context.Context, Event, string) error { return f.fn() }
