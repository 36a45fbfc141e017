package web

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/internal/store"
)

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
		if err := f.store.CreateMessage(context.Background(), m, &store.Event{Type: "submitted", Detail: "bulk"}); err != nil {
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
