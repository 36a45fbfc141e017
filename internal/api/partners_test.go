package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/cms/cmstest"
)

// fakePartners is a Partners source with fixed contents, or one that fails.
type fakePartners struct {
	partners []PartnerSettings
	stations []StationSettings
	err      error
}

func (f *fakePartners) PartnerSettings(context.Context) ([]PartnerSettings, error) {
	return f.partners, f.err
}

func (f *fakePartners) StationSettings(context.Context) ([]StationSettings, error) {
	return f.stations, f.err
}

func (f *fakePartners) ProfileSettings(context.Context) ([]ProfileSettings, error) {
	return nil, f.err
}

func newPartnersFixture(t *testing.T, src Partners) *fixture {
	t.Helper()
	cfg := Config{Tokens: []string{token}}
	if src != nil {
		cfg.Partners = src
	}
	f := &fixture{srv: httptest.NewServer(New(cfg).Handler())}
	t.Cleanup(f.srv.Close)
	return f
}

func TestPartnersAndStations(t *testing.T) {
	t.Parallel()
	now := time.Now()
	id := cmstest.New(t, "PARTNERX", &cmstest.Options{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30*24*time.Hour + time.Hour)})
	px := PartnerSettings{
		AS2ID: "PARTNERX", URL: "https://as2.partner.example/as2", Station: "GW", Sign: "sha256",
		Encrypt: "aes256-cbc", KeyTransport: "rsa-pkcs1v15", Compress: "none", MDN: "sync", MDNSigned: true,
		Headers: []string{"X-Api-Key"}, Auth: "basic",
		Certificates: []CertificateInfo{NewCertificateInfo(id.Certificate, "", SourceFile, now)},
		Source:       SourceFile,
	}
	px.Timeouts.Connect = Duration(30 * time.Second)
	px.Retry.Failed = RetrySettings{Enabled: true, Strategy: "exponential", Attempts: 10, Initial: Duration(30 * time.Second)}
	src := &fakePartners{
		partners: []PartnerSettings{px},
		stations: []StationSettings{{AS2ID: "GW", Certificates: []CertificateInfo{NewCertificateInfo(id.Certificate, "signing", SourceFile, now)}, Source: SourceFile}},
	}
	f := newPartnersFixture(t, src)
	sum := sha256.Sum256(id.Certificate.Raw)

	code, body := f.do(t, "GET", "/api/v1/partners", token, nil, "")
	list, _ := body["partners"].([]any)
	if code != http.StatusOK || len(list) != 1 {
		t.Fatalf("list partners: %d %v", code, body)
	}
	code, p := f.do(t, "GET", "/api/v1/partners/PARTNERX", token, nil, "")
	if code != http.StatusOK {
		t.Fatalf("get partner: %d %v", code, p)
	}
	for key, want := range map[string]any{
		"as2_id": "PARTNERX", "url": "https://as2.partner.example/as2", "station": "GW", "sign": "sha256",
		"encrypt": "aes256-cbc", "mdn_signed": true, "auth": "basic", "source": "file",
	} {
		if p[key] != want {
			t.Errorf("partner %s = %v, want %v", key, p[key], want)
		}
	}
	if h, _ := p["headers"].([]any); len(h) != 1 || h[0] != "X-Api-Key" {
		t.Errorf("headers = %v, want the names only", p["headers"])
	}
	if to, _ := p["timeouts"].(map[string]any); to["connect"] != "30s" {
		t.Errorf("timeouts = %v, want connect 30s", p["timeouts"])
	}
	if r, _ := p["retry"].(map[string]any); r["failed"].(map[string]any)["initial"] != "30s" {
		t.Errorf("retry = %v", p["retry"])
	}
	certs, _ := p["certificates"].([]any)
	if len(certs) != 1 {
		t.Fatalf("certificates = %v", p["certificates"])
	}
	c := certs[0].(map[string]any)
	for key, want := range map[string]any{
		"subject": id.Certificate.Subject.String(), "serial": hex.EncodeToString(id.Certificate.SerialNumber.Bytes()),
		"days_left": 30.0, "sha256": hex.EncodeToString(sum[:]), "source": "file",
		"not_after": id.Certificate.NotAfter.UTC().Format(time.RFC3339),
	} {
		if c[key] != want {
			t.Errorf("certificate %s = %v, want %v", key, c[key], want)
		}
	}

	code, body = f.do(t, "GET", "/api/v1/stations", token, nil, "")
	if list, _ := body["stations"].([]any); code != http.StatusOK || len(list) != 1 {
		t.Fatalf("list stations: %d %v", code, body)
	}
	code, s := f.do(t, "GET", "/api/v1/stations/GW", token, nil, "")
	if code != http.StatusOK || s["as2_id"] != "GW" || s["certificates"].([]any)[0].(map[string]any)["use"] != "signing" {
		t.Fatalf("get station: %d %v", code, s)
	}
}

func TestPartnersErrors(t *testing.T) {
	t.Parallel()
	empty := newPartnersFixture(t, &fakePartners{})
	failing := newPartnersFixture(t, &fakePartners{err: errors.New("config gone")})
	missing := newPartnersFixture(t, nil)
	for _, tc := range []struct {
		name, path, tok string
		f               *fixture
		code            int
		want            string
	}{
		{"unknown partner", "/api/v1/partners/NOBODY", token, empty, 404, `no partner "NOBODY" is configured`},
		{"unknown station", "/api/v1/stations/NOBODY", token, empty, 404, `no station "NOBODY" is configured`},
		{"no token", "/api/v1/partners", "", empty, 401, "bearer token"},
		{"wrong token", "/api/v1/stations/GW", "wrong", empty, 401, "bearer token"},
		{"source fails", "/api/v1/partners", token, failing, 500, "under reference"},
		{"source fails for a station", "/api/v1/stations/GW", token, failing, 500, "under reference"},
		{"no source", "/api/v1/stations", token, missing, 501, "not available"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := tc.f.do(t, "GET", tc.path, tc.tok, nil, "")
			msg, _ := body["error"].(string)
			if code != tc.code || !strings.Contains(msg, tc.want) {
				t.Fatalf("GET %s: %d %v, want %d %q", tc.path, code, body, tc.code, tc.want)
			}
		})
	}
	// An empty configuration lists nothing, as an empty array rather than null.
	if code, body := empty.do(t, "GET", "/api/v1/partners", token, nil, ""); code != 200 || body["partners"] == nil {
		t.Fatalf("empty list: %d %v", code, body)
	}
}

func TestNewCertificateInfoDaysLeft(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	id := cmstest.New(t, "DAYS", &cmstest.Options{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(10 * 24 * time.Hour)})
	for _, tc := range []struct {
		name string
		at   time.Time
		want int
	}{
		{"ten days ahead", now, 10},
		{"part of a day counts as none", now.Add(9*24*time.Hour + time.Hour), 0},
		{"at expiry", now.Add(10 * 24 * time.Hour), 0},
		{"an hour after expiry", now.Add(10*24*time.Hour + time.Hour), -1},
		{"a day after expiry", now.Add(11 * 24 * time.Hour), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NewCertificateInfo(id.Certificate, "", SourceFile, tc.at).DaysLeft; got != tc.want {
				t.Fatalf("days left = %d, want %d", got, tc.want)
			}
		})
	}
}
