package inbound

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/cms"
)

func TestSafeName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"po850.edi":             "po850.edi",
		"../../etc/passwd":      "passwd",
		`..\..\windows\win.ini`: "win.ini",
		"/abs/path/report.xml":  "report.xml",
		"..":                    "",
		".":                     "",
		".hidden":               "hidden",
		"a\x00b\nc.txt":         "abc.txt",
		`what?:*"<>|.txt`:       "what_______.txt",
		"  spaced name.csv  ":   "spaced name.csv",
		"":                      "",
		"dir/":                  "",
		"résumé.pdf":            "résumé.pdf",
	} {
		if got := SafeName(in); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
	}
	long := ""
	for i := 0; i < 150; i++ {
		long += "é"
	}
	if got := SafeName(long); len(got) > 200 || got != long[:200] {
		t.Errorf("long name cut to %d bytes: %q", len(got), got[len(got)-4:])
	}
}

func TestLocalFault(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&as2.UnpackError{Layer: "decrypt", Description: as2.DescDecryptionFailed, Err: cms.ErrDecryption}, false},
		{&as2.UnpackError{Layer: "mime", Description: as2.DescUnexpectedProcessingError,
			Err: fmt.Errorf("as2: spooling to disk: %w", &fs.PathError{Op: "write", Path: "/tmp/x", Err: syscall.ENOSPC})}, true},
		{fmt.Errorf("reading payload: %w", syscall.EIO), true},
	} {
		if got := localFault(tc.err); got != tc.want {
			t.Errorf("localFault(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestFirstFree finds the first free numbered name with a few stats; a consumer's gap may
// be filled or skipped.
func TestFirstFree(t *testing.T) {
	dir := t.TempDir()
	candidate := func(n int) string { return filepath.Join(dir, fmt.Sprintf("f%d", n)) }
	take := func(ns ...int) {
		for _, n := range ns {
			if err := os.WriteFile(candidate(n), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got := firstFree(candidate, maxNames); got != 1 {
		t.Fatalf("empty folder: %d, want 1", got)
	}
	for n := 1; n <= 37; n++ {
		take(n)
		if got := firstFree(candidate, maxNames); got != n+1 {
			t.Fatalf("names 1..%d taken: %d, want %d", n, got, n+1)
		}
	}
	if got := firstFree(candidate, 20); got != 20 {
		t.Fatalf("every name below the limit taken: %d, want the limit", got)
	}
	if err := os.Remove(candidate(2)); err != nil {
		t.Fatal(err)
	}
	if got := firstFree(candidate, maxNames); got != 38 && got != 2 {
		t.Fatalf("gap at 2: %d, want 38 (past the gap) or 2", got)
	}
}
