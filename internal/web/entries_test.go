package web

import (
	"net/http"
	"net/url"
	"testing"
)

// TestEntriesReadOnlyWithoutSource shows a console without Entries: the partners page has
// no forms, the forms' routes answer 501, and the profiles page says there is nothing.
func TestEntriesReadOnlyWithoutSource(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.withPartners(fixedPartners{partners: []PartnerSettings{{AS2ID: "DBP", Source: "database", Revision: 2}}})
	c := f.signIn()
	resp, body := f.get(c, "/partners")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("partners: %d", resp.StatusCode)
	}
	checkBody(t, body, []string{"DBP", "added at run time"}, []string{`href="/partners/new"`, `/partners/DBP/edit`, `/partners/DBP/delete`})
	for _, path := range []string{"/partners", "/partners/DBP", "/partners/DBP/delete", "/partners/DBP/certificates", "/stations", "/stations/S/identity", "/profiles", "/profiles/p/delete"} {
		resp := f.post(c, path, url.Values{"revision": {"1"}})
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotImplemented {
			t.Errorf("POST %s: %d, want 501", path, resp.StatusCode)
		}
	}
	if resp, _ := f.get(c, "/partners/new"); resp.StatusCode != http.StatusNotImplemented {
		t.Errorf("GET /partners/new: %d, want 501", resp.StatusCode)
	}
	resp, body = f.get(c, "/profiles")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("profiles: %d", resp.StatusCode)
	}
	checkBody(t, body, []string{"no send profiles to show"}, []string{`href="/profiles/new"`})
}
