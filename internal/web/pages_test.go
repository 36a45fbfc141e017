package web

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/store"
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

func TestFailures(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.signIn()
	m := f.create(outboundMessage("invoice"))
	f.failedOnce(m, store.ClassTransient, "http_503", `Ask <b>the partner</b> whether its server is up.`)

	tests := []struct {
		name     string
		path     string
		want     []string
		dontWant []string
	}{
		{"all", "/failures", []string{
			`Ask &lt;b&gt;the partner&lt;/b&gt; whether its server is up.`, `http_503`, `HTTP 503`, `transient`,
			`href="/messages/` + itoa(m.ID) + `"`, `as2: partner answered 503`, `PARTNER`,
		}, []string{`<b>the partner`, `No failed attempts.`}},
		{"class", "/failures?class=transient", []string{`http_503`, `<option selected>transient</option>`}, nil},
		{"other class", "/failures?class=permanent", []string{`No failed attempts.`}, []string{`whether its server is up`}},
		{"code", "/failures?code=connect_refused", []string{`No failed attempts.`}, nil},
		{"partner", "/failures?partner=OTHER", []string{`No failed attempts.`}, nil},
		{"before", "/failures?before=1", []string{`No failed attempts.`}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.get(c, tc.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			checkBody(t, body, tc.want, tc.dontWant)
		})
	}
	t.Run("bad cursor", func(t *testing.T) {
		if resp, _ := f.get(c, "/failures?before=x"); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})
}

func TestTimeline(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.signIn()
	m := outboundMessage("order")
	m.Tag = "batch-7"
	if err := f.store.CreateMessage(context.Background(), m, &store.Event{Type: "submitted", Detail: `from <script>x</script>`}); err != nil {
		t.Fatal(err)
	}
	other := outboundMessage("other")
	other.Partner = "OTHER"
	if err := f.store.CreateMessage(context.Background(), other, &store.Event{Type: "submitted", Detail: "second one"}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		path     string
		want     []string
		dontWant []string
	}{
		{"all", "/timeline", []string{`from &lt;script&gt;x&lt;/script&gt;`, `second one`, `batch-7`,
			`<a href="/messages/` + itoa(m.ID) + `">submitted</a>`}, []string{`<script>x`}},
		{"tag", "/timeline?tag=batch-7", []string{`from &lt;script&gt;`, `value="batch-7"`}, []string{`second one`}},
		{"partner", "/timeline?partner=OTHER", []string{`second one`}, []string{`batch-7</td>`}},
		{"direction", "/timeline?direction=in", []string{`No events.`}, nil},
		{"state", "/timeline?state=sent", []string{`No events.`}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.get(c, tc.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			checkBody(t, body, tc.want, tc.dontWant)
		})
	}
}

func TestTimelinePaging(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.signIn()
	for range pageSize + 1 {
		m := outboundMessage("bulk")
		if err := f.store.CreateMessage(context.Background(), m, &store.Event{Type: "submitted", Detail: "bulk " + itoa(int64(len(m.Subject)))}); err != nil {
			t.Fatal(err)
		}
	}
	_, body := f.get(c, "/timeline?tag=")
	i := strings.Index(body, `href="/timeline?before=`)
	if i < 0 {
		t.Fatalf("no link to the older events:\n%s", body)
	}
	next := strings.ReplaceAll(body[i+len(`href="`):i+strings.Index(body[i:], `" rel`)], "&amp;", "&")
	_, older := f.get(c, next)
	if n := strings.Count(older, "<tr>") - 1; n != 1 {
		t.Errorf("the older page lists %d events, want 1", n)
	}
	if strings.Contains(older, `rel="next"`) {
		t.Errorf("the last page links further")
	}
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
