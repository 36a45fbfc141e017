package web

import (
	"net/http"
	"testing"

	"github.com/as2gate/as2gate/internal/store"
)

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
