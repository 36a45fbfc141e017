package interop

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// need returns the path of an outside program, skipping the test when it is missing outside
// CI and failing it in CI, where scripts/testdeps.sh must have installed it.
func need(t testing.TB, program string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed; scripts/testdeps.sh should have installed it", program)
	}
	t.Skipf("%s is not installed (run `make testdeps`)", program)
	return ""
}

// needFile is need for a file such as a jar.
func needFile(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing; scripts/testdeps.sh should have installed it", path)
	}
	t.Skipf("%s is missing (run `make testdeps`)", path)
}

// run executes a program with a time limit and returns its standard output, failing the
// test with the program's standard error when it exits non-zero.
func run(t testing.TB, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	out, err := runErr(stdin, name, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	return out
}

// runErr is run returning the error (with standard error attached) instead of failing.
func runErr(stdin []byte, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), &exitError{err: err, stderr: stderr.String()}
	}
	return stdout.Bytes(), nil
}

type exitError struct {
	err    error
	stderr string
}

func (e *exitError) Error() string { return e.err.Error() + ": " + e.stderr }
