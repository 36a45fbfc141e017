package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// TestConsoleOnAdminListener signs in to the console of a running gateway with the first
// admin's generated password, and checks that the API and health routes still answer beside it.
func TestConsoleOnAdminListener(t *testing.T) {
	A, _ := startPair(t, agreement{sign: "sha256", encrypt: "aes256-cbc", keyTransport: "rsa-pkcs1v15", compress: "none", mdn: "sync", mdnSigned: true})
	password := A.gw.AdminPassword()
	if password == "" {
		t.Fatal("the first start created no console user")
	}
	base := "http://" + A.gw.AdminAddr().String()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(base+"/login", url.Values{"name": {"admin"}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The sign-in redirects to the outbox, which the client follows with the new cookie.
	if resp.StatusCode != http.StatusOK || resp.Request.URL.RequestURI() != "/messages?box=outbox" || !strings.Contains(string(body), "<h1>Outbox</h1>") {
		t.Fatalf("sign-in ended at %s with status %d", resp.Request.URL, resp.StatusCode)
	}
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/api/v1/messages": http.StatusUnauthorized} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: status %d, want %d", path, resp.StatusCode, want)
		}
	}
	var list struct {
		Messages []any `json:"messages"`
	}
	if status := A.api("GET", "/api/v1/messages", nil, "", &list); status != http.StatusOK {
		t.Errorf("the API with its token: status %d", status)
	}
}
