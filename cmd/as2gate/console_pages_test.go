package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// TestConsolePartnersPage checks that the console of a running gateway shows the configured
// partner and station with their certificates' days left.
func TestConsolePartnersPage(t *testing.T) {
	A, _ := startPair(t, agreement{sign: "sha256", encrypt: "aes256-cbc", keyTransport: "rsa-pkcs1v15", compress: "none", mdn: "sync", mdnSigned: true})
	base := "http://" + A.gw.AdminAddr().String()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(base+"/login", url.Values{"name": {"admin"}, "password": {A.gw.AdminPassword()}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for path, want := range map[string][]string{
		"/partners":  {`GW-B`, `sign sha256`, `encrypt aes256-cbc`, `<strong>signing</strong>`, `days left`},
		"/dashboard": {`<td data-label="Partner">GW-B</td>`, `href="/messages?box=outbox&amp;partner=GW-B"`},
	} {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: status %d", path, resp.StatusCode)
		}
		for _, s := range want {
			if !strings.Contains(string(body), s) {
				t.Errorf("GET %s: %q is missing:\n%s", path, s, body)
			}
		}
	}
}
