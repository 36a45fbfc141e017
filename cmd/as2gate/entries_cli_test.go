package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIPartnersAddRemove adds partners through the CLI, from flags and from a YAML entry
// with a certificate next to it, and removes them; invalid and file-managed ones are refused
// with the gateway's reasons.
func TestCLIPartnersAddRemove(t *testing.T) {
	t.Parallel()
	n, gw := apiNode(t)
	server, token := "--server=http://"+n.gw.AdminAddr().String(), "--token="+n.token
	dir := t.TempDir()
	certPath := filepath.Join(dir, "acme.pem")
	if err := os.WriteFile(certPath, gw.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}

	out, err := runCLI(t, "partners", "add", "--as2-id=ACME", "--url=https://acme.example/as2", "--station=GW", "--cert="+certPath, server, token)
	if err != nil {
		t.Fatalf("partners add: %v\n%s", err, out)
	}
	if !strings.Contains(out, "partner ACME added (station GW, https://acme.example/as2, certificate ") || !strings.Contains(out, "days left") {
		t.Errorf("partners add printed %q", out)
	}
	out, err = runCLI(t, "partners", "list", server, token)
	if err != nil || !strings.Contains(out, "ACME") || !strings.Contains(out, "FILEP") {
		t.Fatalf("partners list after add: %v\n%s", err, out)
	}

	entry := filepath.Join(dir, "beta.yaml")
	os.WriteFile(entry, []byte("as2_id: BETA\nstation: GW\nurl: https://beta.example/as2\ncerts: [acme.pem]\nencrypt: aes128-gcm\nheaders: {X-Partner: beta}\n"), 0o600)
	out, err = runCLI(t, "partners", "add", "--from="+entry, "--url=https://beta2.example/as2", server, token)
	if err != nil {
		t.Fatalf("partners add --from: %v\n%s", err, out)
	}
	out, err = runCLI(t, "partners", "show", "BETA", server, token)
	for _, want := range []string{`"url": "https://beta2.example/as2"`, `"encrypt": "aes128-gcm"`, `"X-Partner"`, `"source": "database"`, `"subject": "CN=GW,`} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("partners show BETA lacks %s: %v\n%s", want, err, out)
		}
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--as2-id=BAD", "--url=ftp://bad"}, "partners[BAD].url: \"ftp://bad\" is not an absolute http:// or https:// URL"},
		{[]string{"--as2-id=FILEP", "--url=https://x.example/as2"}, "409 Conflict: the partner \"FILEP\" is managed in the configuration file"},
		{[]string{"--as2-id=ACME", "--url=https://x.example/as2", "--station=GW", "--cert=" + certPath}, "409 Conflict"},
		{[]string{"--url=https://x.example/as2"}, "--as2-id"},
		{[]string{"--as2-id=NOTCERT", "--url=https://x.example/as2", "--cert=" + entry}, "400 Bad Request: certificate upload 1"},
	} {
		out, err := runCLI(t, append([]string{"partners", "add", server, token}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("partners add %v: %v (%s), want %q", tc.args, err, out, tc.want)
		}
	}

	for _, id := range []string{"ACME", "BETA"} {
		out, err := runCLI(t, "partners", "remove", id, server, token)
		if err != nil || strings.TrimSpace(out) != fmt.Sprintf("partner %s removed", id) {
			t.Fatalf("partners remove %s: %v\n%s", id, err, out)
		}
	}
	if _, err := runCLI(t, "partners", "remove", "ACME", server, token); err == nil || !strings.Contains(err.Error(), "404 Not Found") {
		t.Errorf("removing a removed partner: %v", err)
	}
	if _, err := runCLI(t, "partners", "remove", "FILEP", server, token); err == nil || !strings.Contains(err.Error(), "managed in the configuration file") {
		t.Errorf("removing a file partner: %v", err)
	}
	out, err = runCLI(t, "partners", "list", server, token)
	if err != nil || strings.Contains(out, "ACME") || strings.Contains(out, "BETA") {
		t.Errorf("partners list after remove: %v\n%s", err, out)
	}
}
