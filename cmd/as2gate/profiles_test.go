package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/as2/as2test"
	"github.com/as2gate/as2gate/cms/cmstest"
)

// TestSendProfileHeadersOnTheWire submits through the API and the command line with a send
// profile and checks the request the partner received: the partner's headers, then the
// profile's over them.
func TestSendProfileHeadersOnTheWire(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gw, px := cmstest.New(t, "GW-A", nil), cmstest.New(t, "PX", nil)
	certA, keyA := gw.WriteFiles(t, dir, "a")
	certPX, _ := px.WriteFiles(t, dir, "px")
	fake := as2test.NewPartner(t, as2test.WithBehavior(as2test.AS2(as2test.AS2Config{
		ID: "PX", Certificate: px.Certificate, Key: px.Key, Trusted: []*x509.Certificate{gw.Certificate},
	})))
	A := startGateway(t, filepath.Join(dir, "A"), gatewaySpec{
		id: "GW-A", cert: certA, key: keyA,
		partners: []partnerSpec{{id: "PX", cert: certPX, url: fake.URL,
			settings: agreed(map[string]string{"headers": "{X-Custom: partner, X-Both: partner}"})}},
		extra: "profiles:\n  - name: invoices\n    headers: {X-Both: profile, X-Profile: 'yes'}\n",
	})

	code, body := submitWithProfile(t, A, "PX", "invoice")
	if code != http.StatusBadRequest || !strings.Contains(body, `unknown profile \"invoice\"`) {
		t.Fatalf("unknown profile: HTTP %d %s, want 400 naming it", code, body)
	}
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("the partner received %d requests after a refused submission", n)
	}

	code, body = submitWithProfile(t, A, "PX", "invoices")
	if code != http.StatusAccepted {
		t.Fatalf("submit: HTTP %d %s", code, body)
	}
	var s submitted
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatal(err)
	}
	// From the command line too.
	file := filepath.Join(dir, "invoice.xml")
	if err := os.WriteFile(file, []byte("<Invoice/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "send", "--server=http://"+A.gw.AdminAddr().String(), "--token", A.token, "--partner", "PX", "--profile", "invoices", file)
	if err != nil {
		t.Fatalf("send --profile: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`^message (\d+) `).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("send printed %q", out)
	}
	cliID, _ := strconv.ParseInt(m[1], 10, 64)

	for _, id := range []int64{s.ID, cliID} {
		if got := A.await(id, "sent", "failed"); got.State != "sent" {
			t.Fatalf("message %d is %s: %+v", id, got.State, got.Attempts)
		}
	}
	reqs := fake.Requests()
	if len(reqs) != 2 {
		t.Fatalf("the partner received %d requests, want 2", len(reqs))
	}
	want := map[string]string{"X-Custom": "partner", "X-Both": "profile", "X-Profile": "yes", "AS2-From": "GW-A", "AS2-To": "PX"}
	for i, r := range reqs {
		if r.AS2 == nil || r.AS2.Err != nil {
			t.Errorf("request %d: the partner could not read the message: %+v", i+1, r.AS2)
		}
		for name, v := range want {
			if got := strings.Join(r.Header.Values(name), ","); got != v {
				t.Errorf("request %d: %s = %q, want %q", i+1, name, got, v)
			}
		}
	}
	var view struct{ Profile string }
	A.api("GET", "/api/v1/messages/"+strconv.FormatInt(cliID, 10), nil, "", &view)
	if view.Profile != "invoices" {
		t.Errorf("the message shows profile %q, want invoices", view.Profile)
	}
}

// submitWithProfile posts one file to partner naming a send profile, and returns the answer.
func submitWithProfile(t *testing.T, n *node, partner, profile string) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("partner", partner)
	mw.WriteField("profile", profile)
	w, _ := mw.CreateFormFile("file", "invoice.xml")
	w.Write([]byte("<Invoice/>"))
	mw.Close()
	var raw json.RawMessage
	code := n.api("POST", "/api/v1/messages", &buf, mw.FormDataContentType(), &raw)
	return code, string(raw)
}
