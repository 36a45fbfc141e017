package as2

import (
	"os/exec"
	"strings"
	"testing"
)

// TestProtocolPackagesStayLibraries enforces the import direction of the design: the protocol
// packages (cms, as2 and their test helpers) take everything as arguments and never reach
// into the gateway's internal packages.
func TestProtocolPackagesStayLibraries(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}}",
		"github.com/as2gate/as2gate/cms/...", "github.com/as2gate/as2gate/as2/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.Contains(pkg, "/internal/") && strings.HasPrefix(pkg, "github.com/as2gate/as2gate/") {
			t.Errorf("a protocol package depends on %s", pkg)
		}
	}
}
