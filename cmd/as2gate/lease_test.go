package main

import (
	"path/filepath"
	"testing"
)

// TestLeaseOwner checks that the lease owner names a node by its data folder, however the
// folder is written, so that a restart finds the rows its previous run left in sending.
func TestLeaseOwner(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"the same folder", filepath.Join(dir, "data"), filepath.Join(dir, "data"), true},
		{"the same folder written differently", filepath.Join(dir, "data"), filepath.Join(dir, "x", "..", "data") + "/", true},
		{"another folder", filepath.Join(dir, "data"), filepath.Join(dir, "data2"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := leaseOwner(tc.a), leaseOwner(tc.b)
			if (a == b) != tc.same {
				t.Errorf("leaseOwner(%q) = %q, leaseOwner(%q) = %q; same = %v, want %v", tc.a, a, tc.b, b, a == b, tc.same)
			}
		})
	}
}
