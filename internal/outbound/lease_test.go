package outbound

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/as2/as2test"
	"github.com/as2gate/as2gate/internal/store"
)

// TestAttemptEndsBeforeItsLease: a send that outlives its claim's lease is cut off before
// the lease runs out and recorded as incomplete, so that no second claim can send the row
// while the first still does.
func TestAttemptEndsBeforeItsLease(t *testing.T) {
	t.Parallel()
	r := newRig(t, func(c *Config) { c.Lease = 400 * time.Millisecond })
	r.fake(t, as2test.Stall())
	m := r.submit(t, rigPartner)
	// The stalled partner never answers: only the cut-off before the lease ends the step.
	r.step(t, m.ID)
	got, err := r.store.GetMessage(t.Context(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State == store.StateSending || got.LastCode != CodeReadTimeout {
		t.Fatalf("after the cut-off attempt: state %s, code %q", got.State, got.LastCode)
	}
}

// TestMissingStoredPayloadFails: a message whose payload is gone from the payload store
// fails for good, visibly, instead of coming back at every lease.
func TestMissingStoredPayloadFails(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	m := &store.Message{
		Direction: store.Outbound, Kind: store.KindMessage, MessageID: "<lost@test>", Station: rigStation,
		Partner: rigPartner, State: store.StateQueued, URL: "http://127.0.0.1:1/as2", NextAttemptAt: r.clock.Now(),
		Files: []store.File{{Name: "gone.edi", ContentType: "application/edi-x12", Size: 3, SHA256: strings.Repeat("ab", 32)}},
	}
	if err := r.store.CreateMessage(t.Context(), m, nil); err != nil {
		t.Fatal(err)
	}
	r.step(t, m.ID)
	got, err := r.store.GetMessage(t.Context(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StateFailed || got.LastCode != CodeConfig || !strings.Contains(got.LastError, "missing from the payload store") {
		t.Fatalf("state %s, code %s: %s", got.State, got.LastCode, got.LastError)
	}
}

// TestOperatorRetryStartsAFreshSchedule: a message that exhausted its retries and is put
// back by the operator gets the whole schedule again, not one attempt.
func TestOperatorRetryStartsAFreshSchedule(t *testing.T) {
	t.Parallel()
	r := newRig(t, nil)
	r.fake(t, as2test.Respond(http.StatusServiceUnavailable, nil, nil))
	m := r.submit(t, rigPartner)
	// The first attempt and the policy's three retries fail: the message is failed.
	for i := 0; i < 4; i++ {
		r.step(t, m.ID)
		got, _ := r.store.GetMessage(t.Context(), m.ID)
		if got.State == store.StateFailed {
			break
		}
		r.clock.Set(got.NextAttemptAt)
	}
	if got, _ := r.store.GetMessage(t.Context(), m.ID); got.State != store.StateFailed {
		t.Fatalf("after the schedule: %s", got.State)
	}
	if _, err := NewActions(r.w, r.partners).Retry(t.Context(), m.ID, false); err != nil {
		t.Fatal(err)
	}
	r.step(t, m.ID)
	got, _ := r.store.GetMessage(t.Context(), m.ID)
	if got.State != store.StateQueued || !got.NextAttemptAt.Equal(r.clock.Now().Add(30*time.Second)) {
		t.Fatalf("after the operator's retry failed once: %s, next %v (now %v); want queued for 30s later", got.State, got.NextAttemptAt, r.clock.Now())
	}
}
