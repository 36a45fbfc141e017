package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/internal/outbound"
	"github.com/as2gate/as2gate/internal/store"
)

var update = flag.Bool("update", false, "rewrite the generated sections of README.md")

// The generated section of README.md lies between these lines.
const (
	codesBegin = "<!-- BEGIN failure codes: generated from internal/outbound by `go test ./cmd/as2gate -run TestREADME -update`; do not edit -->\n"
	codesEnd   = "<!-- END failure codes -->\n"
)

// TestREADMEFailureCodes keeps the README's table of failure codes equal to what the send
// worker records: every code of outbound.Codes with its class and corrective action from
// outbound.Describe. Run with -update after changing either.
func TestREADMEFailureCodes(t *testing.T) {
	path := filepath.Join("..", "..", "README.md")
	readme, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := bytes.Cut(readme, []byte(codesBegin))
	if !ok {
		t.Fatalf("README.md has no line %q", codesBegin)
	}
	old, after, ok := bytes.Cut(rest, []byte(codesEnd))
	if !ok {
		t.Fatalf("README.md has no line %q after the first", codesEnd)
	}
	table := failureCodeTable(t)
	if bytes.Equal(old, table) {
		return
	}
	if !*update {
		t.Fatalf("the failure codes in README.md are out of date: run go test ./cmd/as2gate -run TestREADME -update")
	}
	out := bytes.Join([][]byte{before, []byte(codesBegin), table, []byte(codesEnd), after}, nil)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// failureCodeTable renders the codes as a Markdown table, in the order of outbound.Codes
// (by class: transient, incomplete, permanent).
func failureCodeTable(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("| code | class | what happened and what to do |\n|---|---|---|\n")
	classes := map[string]int{}
	for _, code := range outbound.Codes() {
		class, action := outbound.Describe(code)
		if class == "" || action == "" {
			t.Fatalf("outbound.Describe(%q) says nothing: every code of Codes needs a class and an action", code)
		}
		classes[class]++
		cell := strings.NewReplacer("|", `\|`, "\n", " ").Replace(action)
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", code, class, cell)
	}
	for _, c := range []string{store.ClassTransient, store.ClassIncomplete, store.ClassPermanent} {
		if classes[c] == 0 {
			t.Errorf("no code of class %s", c)
		}
	}
	return b.Bytes()
}
