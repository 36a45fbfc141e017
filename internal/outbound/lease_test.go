package outbound

import (
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
	start := time.Now()
	r.step(t, m.ID)
	if took := time.Since(start); took >= 400*time.Millisecond {
		t.Fatalf("the attempt took %v, longer than the lease", took)
	}
	got, err := r.store.GetMessage(t.Context(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State == store.StateSending || got.LastCode != CodeReadTimeout {
		t.Fatalf("after the cut-off attempt: state %s, code %q", got.State, got.LastCode)
	}
}
