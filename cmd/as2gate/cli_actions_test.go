package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/api"
)

// TestCLIMessageActions drives the operator's actions with the command line against a real
// pair of gateways: a message to a URL nobody listens on is stopped, the URL is corrected,
// `messages retry` delivers it, `messages resend` sends a copy and `messages delete` removes
// them; each command prints one line, and refusals carry the gateway's reason.
func TestCLIMessageActions(t *testing.T) {
	t.Parallel()
	A, B := startPair(t, agreement{sign: "sha256", encrypt: "aes256-cbc", keyTransport: "rsa-pkcs1v15", compress: "none", mdn: "sync", mdnSigned: true})
	server, token := "--server=http://"+A.gw.AdminAddr().String(), "--token="+A.token
	cli := func(args ...string) (string, error) {
		t.Helper()
		return runCLI(t, append(args, server, token)...)
	}
	good := A.cfg.Partner("GW-B").URL
	A.cfg.Partner("GW-B").URL = "http://127.0.0.1:1/as2"
	file := filepath.Join(t.TempDir(), "po-850.edi")
	if err := os.WriteFile(file, []byte("ISA*00*~\nIEA*1*000000001~\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := cli("send", "--partner", "GW-B", file)
	m := regexp.MustCompile(`^message (\d+) (<[^>]+>) queued\n$`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("send: %v\n%s", err, out)
	}
	id, messageID := m[1], m[2]

	// Stop it once an attempt has failed; while the worker holds it the stop is refused
	// with 409, which the command reports.
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, _ := strconv.ParseInt(id, 10, 64)
		var v messageView
		A.api("GET", "/api/v1/messages/"+id, nil, "", &v)
		if v.State == "failed" {
			t.Fatalf("message %d failed before it could be stopped: %+v", n, v.Attempts)
		}
		if len(v.Attempts) > 0 {
			out, err := cli("messages", "stop", id)
			if err == nil {
				if out != "message "+id+" failed\n" {
					t.Fatalf("stop printed %q", out)
				}
				break
			}
			if !strings.Contains(err.Error(), "409") {
				t.Fatalf("stop: %v", err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no attempt was recorded: %+v", v)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := cli("messages", "stop", id); err == nil || !strings.Contains(err.Error(), "stop message "+id) || !strings.Contains(err.Error(), "409 Conflict: ") {
		t.Errorf("stopping a stopped message: %v, want the gateway's 409 and its reason", err)
	}

	A.cfg.Partner("GW-B").URL = good
	if out, err := cli("messages", "retry", id); err != nil || out != "message "+id+" queued\n" {
		t.Fatalf("retry: %v\n%s", err, out)
	}
	n, _ := strconv.ParseInt(id, 10, 64)
	if sent := A.await(n, "sent", "failed"); sent.State != "sent" || sent.MessageID != messageID {
		t.Fatalf("after the retry: %s %s, attempts %+v", sent.State, sent.MessageID, sent.Attempts)
	}
	B.received(messageID)
	if _, err := cli("messages", "retry-now", id); err == nil || !strings.Contains(err.Error(), "409") {
		t.Errorf("retry-now of a sent message: %v, want 409", err)
	}

	out, err = cli("messages", "resend", id)
	r := regexp.MustCompile(`^message ` + id + ` resent as message (\d+) (<[^>]+>) queued\n$`).FindStringSubmatch(out)
	if err != nil || r == nil || r[1] == id || r[2] == messageID {
		t.Fatalf("resend: %v\n%s", err, out)
	}
	copyID, _ := strconv.ParseInt(r[1], 10, 64)
	if sent := A.await(copyID, "sent", "failed"); sent.State != "sent" {
		t.Fatalf("resent message: %s, attempts %+v", sent.State, sent.Attempts)
	}
	B.received(r[2])

	// A bulk delete deletes what it may and names what it refused.
	out, err = cli("messages", "delete", id, "999999")
	if out != "message "+id+" deleted\n" || err == nil || !strings.Contains(err.Error(), "message 999999: no message 999999") {
		t.Fatalf("delete %s 999999: %v\n%s", id, err, out)
	}
	if out, err := cli("messages", "delete", r[1]); err != nil || out != "message "+r[1]+" deleted\n" {
		t.Fatalf("delete %s: %v\n%s", r[1], err, out)
	}
	if _, err := cli("messages", "delete", id); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("deleting a deleted message: %v, want 404", err)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"not a number", []string{"messages", "retry", "abc"}, `message id "abc" is not a positive number`},
		{"zero", []string{"messages", "replay", "0"}, `message id "0" is not a positive number`},
		{"unknown message", []string{"messages", "replay", "999999"}, "404 Not Found: no message 999999"},
		{"bad id in a bulk delete", []string{"messages", "delete", "1", "2x"}, `message id "2x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := cli(tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v: %v, want %q", tc.args, err, tc.want)
			}
		})
	}
	if _, err := runCLI(t, "messages", "stop", id, server); err == nil || !strings.Contains(err.Error(), "--token") {
		t.Errorf("without a token: %v", err)
	}
}

// TestCLIPartners lists the partners with their certificate's expiry and shows one as JSON.
func TestCLIPartners(t *testing.T) {
	t.Parallel()
	A, _ := startPair(t, agreement{sign: "sha256", encrypt: "aes128-gcm", keyTransport: "rsa-oaep-sha256", compress: "none", mdn: "async", mdnSigned: true})
	server, token := "--server=http://"+A.gw.AdminAddr().String(), "--token="+A.token
	pt := A.cfg.Partner("GW-B")
	cert := pt.Certificates[0]

	out, err := runCLI(t, "partners", "list", server, token)
	if err != nil {
		t.Fatalf("partners list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "AS2 ID") {
		t.Fatalf("partners list printed:\n%s", out)
	}
	days := api.NewCertificateInfo(cert, "", api.SourceFile, time.Now()).DaysLeft
	for _, want := range []string{"GW-B", pt.URL, "GW-A", "sha256/aes128-gcm", "async signed",
		fmt.Sprintf("%s (%d days left)", cert.NotAfter.UTC().Format(time.DateOnly), days)} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("the partner's line lacks %q:\n%s", want, out)
		}
	}

	out, err = runCLI(t, "partners", "show", "GW-B", server, token)
	if err != nil {
		t.Fatalf("partners show: %v\n%s", err, out)
	}
	for _, want := range []string{`"as2_id": "GW-B"`, `"key_transport": "rsa-oaep-sha256"`, `"source": "file"`, fmt.Sprintf(`"days_left": %d`, days)} {
		if !strings.Contains(out, want) {
			t.Errorf("partners show lacks %s:\n%s", want, out)
		}
	}
	if _, err := runCLI(t, "partners", "show", "NOBODY", server, token); err == nil || !strings.Contains(err.Error(), `404 Not Found: no partner "NOBODY" is configured`) {
		t.Errorf("showing an unknown partner: %v", err)
	}
}
