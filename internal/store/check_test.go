package store

import (
	"testing"
	"time"
)

// TestTimeEncoding: times round-trip through the drivers' encoding in UTC, to the
// nanosecond, with "never" clamped to the ends of the range.
func TestTimeEncoding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   time.Time
		want time.Time // as read back
	}{
		{"zero", time.Time{}, time.Time{}},
		{"now", time.Date(2026, 5, 4, 3, 2, 1, 999999999, time.UTC), time.Date(2026, 5, 4, 3, 2, 1, 999999999, time.UTC)},
		{"another zone", time.Date(2026, 5, 4, 5, 2, 1, 0, time.FixedZone("CEST", 7200)), time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)},
		{"before 1970", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"far future", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), maxNano.UTC()},
		{"far past", time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), minNano.UTC()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := FromNano(UnixNano(tc.in))
			if !got.Equal(tc.want) || got != got.UTC() {
				t.Errorf("round trip of %v = %v, want %v in UTC", tc.in, got, tc.want)
			}
		})
	}
	if UnixNano(time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)) <= UnixNano(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("a far future time does not sort after a near one")
	}
}
