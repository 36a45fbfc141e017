package interop

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// bcJars are the BouncyCastle jars scripts/testdeps.sh installs (Debian's libbcprov-java,
// libbcpkix-java and libbcutil-java, version 1.72).
var bcJars = []string{"/usr/share/java/bcprov.jar", "/usr/share/java/bcpkix.jar", "/usr/share/java/bcutil.jar"}

// bcBuild holds the classes of bc/BCPeer.java, compiled once per test binary run into a
// temporary folder that TestMain removes.
var bcBuild struct {
	once sync.Once
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bcBuild.dir != "" {
		os.RemoveAll(bcBuild.dir)
	}
	os.Exit(code)
}

// bcClasspath compiles BCPeer on first use and returns the class path that runs it.
func bcClasspath(t testing.TB) string {
	t.Helper()
	javac := need(t, "javac")
	for _, jar := range bcJars {
		needFile(t, jar)
	}
	jars := strings.Join(bcJars, string(os.PathListSeparator))
	bcBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "bcpeer-")
		if err != nil {
			bcBuild.err = err
			return
		}
		bcBuild.dir = dir
		_, bcBuild.err = runErr(nil, javac, "-cp", jars, "-d", dir, filepath.Join("bc", "BCPeer.java"))
	})
	if bcBuild.err != nil {
		t.Fatalf("compiling bc/BCPeer.java: %v", bcBuild.err)
	}
	return bcBuild.dir + string(os.PathListSeparator) + jars
}

// bcErr runs BCPeer with args and returns its standard output, or an error carrying its
// standard error when it exits non-zero (1: a signature did not verify; 2: anything else).
func bcErr(t testing.TB, args ...string) ([]byte, error) {
	t.Helper()
	java := need(t, "java")
	cp := bcClasspath(t)
	// A short-lived JVM starts faster with the simple collector and without the optimizing
	// compiler.
	jvm := []string{"-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", cp, "BCPeer"}
	return runErr(nil, java, append(jvm, args...)...)
}

// bc is bcErr failing the test on error.
func bc(t testing.TB, args ...string) []byte {
	t.Helper()
	out, err := bcErr(t, args...)
	if err != nil {
		t.Fatalf("BCPeer %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// bcWrite writes a file for BCPeer to read.
func bcWrite(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// bcOutput reads a file BCPeer wrote.
func bcOutput(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bcPayload returns n bytes of content made of EDI-like text lines with random bytes mixed
// in, so that it compresses somewhat but not to nothing; the same n gives the same bytes.
func bcPayload(n int) []byte {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	b := make([]byte, 0, n+64)
	for line := 1; len(b) < n; line++ {
		b = fmt.Appendf(b, "LIN+%d++%08d:EN'QTY+21:%d'", line, rng.IntN(1e8), rng.IntN(500))
		for range rng.IntN(8) {
			b = append(b, byte(rng.Uint32()))
		}
		b = append(b, '\r', '\n')
	}
	return b[:n]
}
