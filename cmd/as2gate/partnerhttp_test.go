package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/as2gate/as2gate/as2/as2test"
	"github.com/as2gate/as2gate/cms/cmstest"
)

// TestPartnerHTTPSettings: a partner's custom headers and its HTTP authentication (basic
// from a password file, or a bearer token from a file) go out with every message.
func TestPartnerHTTPSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pass := filepath.Join(dir, "basic.pass")
	bearer := filepath.Join(dir, "bearer.token")
	os.WriteFile(pass, []byte("s3cret\n"), 0o600)
	os.WriteFile(bearer, []byte("tok-123\n"), 0o600)
	basicPartner := as2test.NewPartner(t)
	bearerPartner := as2test.NewPartner(t)
	station := cmstest.New(t, "GW-H", nil)
	other := cmstest.New(t, "P-H", nil)
	cert, key := station.WriteFiles(t, dir, "station")
	otherCert, _ := other.WriteFiles(t, dir, "partner")
	plain := map[string]string{"sign": "none", "encrypt": "none", "mdn": "none"}
	with := func(extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range plain {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	n := startGateway(t, filepath.Join(dir, "gw"), gatewaySpec{
		id: "GW-H", cert: cert, key: key,
		partners: []partnerSpec{
			{id: "BASIC", cert: otherCert, url: basicPartner.URL, settings: with(map[string]string{
				"auth":    "{basic: {user: gateway, password_file: " + pass + "}}",
				"headers": "{X-Custom: hello, X-Trace: '42'}",
			})},
			{id: "BEARER", cert: otherCert, url: bearerPartner.URL, settings: with(map[string]string{
				"auth": "{bearer_file: " + bearer + "}",
			})},
		},
	})
	for _, tc := range []struct {
		partner string
		p       *as2test.Partner
		want    map[string]string
	}{
		{"BASIC", basicPartner, map[string]string{"Authorization": "Basic Z2F0ZXdheTpzM2NyZXQ=", "X-Custom": "hello", "X-Trace": "42"}},
		{"BEARER", bearerPartner, map[string]string{"Authorization": "Bearer tok-123"}},
	} {
		s := n.submit(tc.partner, map[string][]byte{"a.txt": []byte("hello")})
		if m := n.await(s.ID, "sent", "failed"); m.State != "sent" {
			t.Fatalf("%s: %s %+v", tc.partner, m.State, m.Attempts)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		reqs, err := tc.p.Await(ctx, 1)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header(reqs[0].Header)
		for name, want := range tc.want {
			if got := h.Get(name); got != want {
				t.Errorf("%s: header %s = %q, want %q", tc.partner, name, got, want)
			}
		}
	}
}
