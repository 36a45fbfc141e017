package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLeaseOwner checks that the lease owner names a node by its data folder, however the
// folder is written, so that a restart finds the rows its previous run left in sending.
func TestLeaseOwner(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, d := range []string{"data", "data2"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
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
			a, err := leaseOwner(tc.a)
			if err != nil {
				t.Fatal(err)
			}
			b, err := leaseOwner(tc.b)
			if err != nil {
				t.Fatal(err)
			}
			if (a == b) != tc.same {
				t.Errorf("leaseOwner(%q) = %q, leaseOwner(%q) = %q; same = %v, want %v", tc.a, a, tc.b, b, a == b, tc.same)
			}
		})
	}
}

// TestLeaseOwnerNodeID: the owner carries the id kept in the data folder, so two nodes whose
// host name and folder path are alike still differ; the id survives restarts.
func TestLeaseOwnerNodeID(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, err := leaseOwner(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := leaseOwner(dir); err != nil || again != first {
		t.Fatalf("a restart on the same folder names the node %q (%v), first %q", again, err, first)
	}
	// Another node with the same host name and path, but its own folder: another id.
	if err := os.Remove(filepath.Join(dir, "node-id")); err != nil {
		t.Fatal(err)
	}
	other, err := leaseOwner(dir)
	if err != nil {
		t.Fatal(err)
	}
	if other == first {
		t.Fatalf("two nodes alike but for their id got one owner %q", first)
	}
	if err := os.WriteFile(filepath.Join(dir, "node-id"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := leaseOwner(dir); err == nil {
		t.Fatal("an empty node-id file was accepted")
	}
}
