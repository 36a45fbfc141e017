package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// runCLI runs the as2gate command line in-process and returns what it printed.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := rootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// TestCLIAgainstGateway sends a file with `as2gate send` through a running gateway's API and
// reads it back with `as2gate messages list` and `show`, as the README shows.
func TestCLIAgainstGateway(t *testing.T) {
	t.Parallel()
	A, B := startPair(t, agreement{sign: "sha256", encrypt: "aes256-cbc", keyTransport: "rsa-pkcs1v15", compress: "none", mdn: "sync", mdnSigned: true})
	file := filepath.Join(t.TempDir(), "invoice.xml")
	if err := os.WriteFile(file, []byte("<Invoice/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	server := "--server=http://" + A.gw.AdminAddr().String()
	out, err := runCLI(t, "send", server, "--token", A.token, "--partner", "GW-B", "--subject", "cli", file)
	if err != nil {
		t.Fatalf("send: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`^message (\d+) (<[^>]+>) queued\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("send printed %q", out)
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	if got := A.await(id, "sent", "failed"); got.State != "sent" {
		t.Fatalf("message %d is %s: %+v", id, got.State, got.Attempts)
	}
	B.received(m[2])

	out, err = runCLI(t, "messages", "list", server, "--token", A.token, "--box", "sent")
	if err != nil || !strings.Contains(out, m[2]) || !strings.Contains(out, "GW-B") {
		t.Fatalf("messages list: %v\n%s", err, out)
	}
	out, err = runCLI(t, "messages", "show", server, "--token", A.token, m[1])
	if err != nil || !strings.Contains(out, `"state": "sent"`) || !strings.Contains(out, `"mic_ok": true`) || !strings.Contains(out, `"mdn_mode": "sync"`) {
		t.Fatalf("messages show: %v\n%s", err, out)
	}

	// Errors name the problem.
	if out, err := runCLI(t, "send", server, "--token", "wrong", "--partner", "GW-B", file); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("send with a wrong token: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "send", server, "--token", A.token, "--partner", "NOBODY", file); err == nil || !strings.Contains(err.Error(), "NOBODY") {
		t.Fatalf("send to an unknown partner: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "send", server, "--token", A.token, file); err == nil || !strings.Contains(err.Error(), "--partner") {
		t.Fatalf("send without a partner: %v", err)
	}
}

// TestCLIKeysAndConfigCheck generates a station identity, checks a configuration that uses
// it, and reports every problem of a broken one by its key.
func TestCLIKeysAndConfigCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out, err := runCLI(t, "keys", "generate", "--as2-id", "MYCOMPANY", "--dir", filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatalf("keys generate: %v\n%s", err, out)
	}
	for _, f := range []string{"MYCOMPANY.crt", "MYCOMPANY.key"} {
		if _, err := os.Stat(filepath.Join(dir, "keys", f)); err != nil {
			t.Fatalf("keys generate did not write %s: %s", f, out)
		}
	}
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(`stations:
  - as2_id: MYCOMPANY
    key: keys/MYCOMPANY.key
    cert: keys/MYCOMPANY.crt
partners:
  - as2_id: PARTNERX
    url: https://as2.partner.example/as2
    certs: [keys/MYCOMPANY.crt]
`), 0o600)
	if out, err := runCLI(t, "config", "check", good); err != nil || !strings.Contains(out, "valid (1 station(s), 1 partner(s))") {
		t.Fatalf("config check of a good file: %v\n%s", err, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(`stations:
  - as2_id: MYCOMPANY
    key: keys/missing.key
    cert: keys/MYCOMPANY.crt
partners:
  - as2_id: PARTNERX
    url: ftp://as2.partner.example/as2
    encrypt: aes512
    retry: {failed: {strategy: exponential, attempts: 7}}
`), 0o600)
	_, err = runCLI(t, "config", "check", bad)
	if err == nil {
		t.Fatal("config check accepted a broken file")
	}
	for _, key := range []string{"stations[0].key", "partners[0].url", "partners[0].encrypt", "partners[0].retry.failed.attempts"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("the error does not name %s:\n%v", key, err)
		}
	}
}
