package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/internal/store"
)

// checkBody fails t for each of want missing from body and each of dontWant in it.
func checkBody(t *testing.T, body string, want, dontWant []string) {
	t.Helper()
	for _, s := range want {
		if !strings.Contains(body, s) {
			t.Errorf("%q is missing", s)
		}
	}
	for _, s := range dontWant {
		if strings.Contains(body, s) {
			t.Errorf("%q should not be there", s)
		}
	}
	if t.Failed() {
		t.Logf("page:\n%s", body)
	}
}

func TestOverviewPagesNeedASession(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, path := range []string{"/dashboard", "/failures", "/timeline?tag=x", "/partners"} {
		t.Run(path, func(t *testing.T) {
			resp, _ := f.get(f.client(), path)
			if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
				t.Errorf("status %d, Location %q; want 303 to /login", resp.StatusCode, loc)
			}
		})
	}
}

func TestDashboardCounts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.withPartners(fixedPartners{partners: []PartnerSettings{{AS2ID: "PARTNER"}, {AS2ID: "<QUIET>"}}})
	c := f.signIn()
	f.create(outboundMessage("one"))
	f.create(outboundMessage("two"))
	sent := outboundMessage("three")
	sent.State = store.StateSent
	f.create(sent)
	other := outboundMessage("four")
	other.Partner = "OTHER"
	f.create(other)

	resp, body := f.get(c, "/dashboard")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	checkBody(t, body, []string{
		`<a href="/messages?box=outbox">Outbox <span class="count">3</span></a>`,
		`<a href="/messages?box=sent">Sent <span class="count">1</span></a>`,
		`<a href="/messages?box=outbox&amp;partner=PARTNER">2</a>`,
		`<a href="/messages?box=sent&amp;partner=PARTNER">1</a>`,
		`<td data-label="Partner">&lt;QUIET&gt;</td>`,
		`<a href="/messages?box=outbox&amp;partner=%3CQUIET%3E">0</a>`,
	}, []string{`<QUIET>`})
}
