package web

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// withPartners replaces the fixture's console with one that reads its partners from p.
// Sessions live in the console, so the caller signs in afterwards.
func (f *fixture) withPartners(p Partners) {
	f.t.Helper()
	c, err := New(Config{Store: f.store, Payloads: f.payloads, Partners: p})
	if err != nil {
		f.t.Fatal(err)
	}
	f.srv.Close()
	f.srv = httptest.NewServer(c.Handler())
	f.t.Cleanup(f.srv.Close)
}

// fixedPartners is a partner source with fixed contents.
type fixedPartners struct {
	partners []PartnerSettings
	stations []StationSettings
	err      error
}

func (p fixedPartners) PartnerSettings(context.Context) ([]PartnerSettings, error) {
	return p.partners, p.err
}

func (p fixedPartners) StationSettings(context.Context) ([]StationSettings, error) {
	return p.stations, p.err
}

func TestPartnersShowsCertificateExpiry(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	end := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	f.withPartners(fixedPartners{
		partners: []PartnerSettings{{
			AS2ID: `ACME<i>`, URL: "https://acme.example/as2", Station: "GATEWAY", Sign: "sha256", Encrypt: "aes256-cbc", MDN: "sync",
			Certificates: []Certificate{
				{Subject: "CN=acme current", DaysLeft: 400, NotAfter: end, SHA256: "ab12"},
				{Subject: "CN=acme <soon>", DaysLeft: 12, NotAfter: end},
			},
		}},
		stations: []StationSettings{{AS2ID: "GATEWAY", Certificates: []Certificate{
			{Use: "signing", Subject: "CN=gateway old", DaysLeft: -3, NotAfter: end},
		}}},
	})
	c := f.signIn()
	resp, body := f.get(c, "/partners")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	checkBody(t, body, []string{
		`ACME&lt;i&gt;`, `href="/messages?box=outbox&amp;partner=ACME%3ci%3e"`, `https://acme.example/as2`, `sign sha256`,
		`<span>400 days left</span>`, `CN=acme &lt;soon&gt;`, `<strong class="error">12 days left</strong>`,
		`<strong class="error">expired 3 days ago</strong>`, `<strong>signing</strong> CN=gateway old`,
		`<time datetime="2030-01-02T03:04:05Z">`, `SHA-256 ab12`,
	}, []string{`ACME<i>`, `<soon>`})
}

func TestPartnersWithoutSource(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	resp, body := f.get(f.signIn(), "/partners")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	checkBody(t, body, []string{"no partner settings to show"}, nil)
}

func TestPartnersSourceFails(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.withPartners(fixedPartners{err: errors.New("config: unreadable")})
	c := f.signIn()
	for _, path := range []string{"/partners", "/dashboard"} {
		resp, body := f.get(c, path)
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("%s: status %d, want 500", path, resp.StatusCode)
		}
		checkBody(t, body, []string{"partner settings cannot be read"}, []string{"unreadable"})
	}
}
