package web

import (
	"net/http"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/internal/store"
)

func TestBoxesListsMessagesAndEscapesHTML(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.signIn()
	m := f.create(outboundMessage(`<script>alert("x")</script>`))
	resp, body := f.get(c, "/messages?box=outbox")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if strings.Contains(body, `<script>alert`) {
		t.Errorf("the subject reached the page unescaped:\n%s", body)
	}
	if !strings.Contains(body, `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`) {
		t.Errorf("the escaped subject is missing:\n%s", body)
	}
	if !strings.Contains(body, `href="/messages/`+itoa(m.ID)+`"`) {
		t.Errorf("no link to the message")
	}
	if !strings.Contains(body, `<time datetime="`+m.CreatedAt.UTC().Format("2006-01-02T15:04:05Z")+`">`) {
		t.Errorf("no <time> element with the creation time in RFC 3339")
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

func TestRootRedirectsToOutbox(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	resp, _ := f.get(f.signIn(), "/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/messages?box=outbox" {
		t.Errorf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestBoxesFilters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.signIn()
	invoice := f.create(outboundMessage("invoice-4711"))
	order := outboundMessage("order-0815")
	order.Partner = "OTHER"
	f.create(order)
	sent := outboundMessage("sent-one")
	sent.State = store.StateSent
	f.create(sent)

	tests := []struct {
		name     string
		path     string
		want     []string
		dontWant []string
	}{
		{"outbox", "/messages?box=outbox", []string{"invoice-4711", "order-0815"}, []string{"sent-one"}},
		{"sent", "/messages?box=sent", []string{"sent-one"}, []string{"invoice-4711"}},
		{"partner", "/messages?box=outbox&partner=OTHER", []string{"order-0815"}, []string{"invoice-4711"}},
		{"search", "/messages?box=outbox&q=4711", []string{"invoice-4711"}, []string{"order-0815"}},
		{"before", "/messages?box=outbox&before=" + itoa(invoice.ID+1), []string{"invoice-4711"}, []string{"order-0815"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := f.get(c, tc.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			for _, s := range tc.want {
				if !strings.Contains(body, s) {
					t.Errorf("%s is missing", s)
				}
			}
			for _, s := range tc.dontWant {
				if strings.Contains(body, s) {
					t.Errorf("%s is listed", s)
				}
			}
		})
	}
	t.Run("counts", func(t *testing.T) {
		_, body := f.get(c, "/messages?box=outbox")
		for _, s := range []string{`Outbox <span class="count">2</span>`, `Sent <span class="count">1</span>`, `Failed <span class="count">0</span>`} {
			if !strings.Contains(body, s) {
				t.Errorf("tab count %s is missing", s)
			}
		}
	})
	t.Run("bad cursor", func(t *testing.T) {
		if resp, _ := f.get(c, "/messages?box=outbox&before=x"); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})
	t.Run("unknown box", func(t *testing.T) {
		resp, _ := f.get(c, "/messages?box=nope")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/messages?box=outbox" {
			t.Errorf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

func TestBoxesPaging(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.signIn()
	var first *store.Message
	for i := range pageSize + 1 {
		m := f.create(outboundMessage("page-" + itoa(int64(i))))
		if i == 0 {
			first = m
		}
	}
	_, body := f.get(c, "/messages?box=outbox")
	if strings.Contains(body, `href="/messages/`+itoa(first.ID)+`"`) {
		t.Errorf("the oldest message is on the first page")
	}
	next := `/messages?before=` + itoa(first.ID+1) + `&amp;box=outbox`
	if !strings.Contains(body, `href="`+next+`"`) {
		t.Fatalf("no link to the next page %s", next)
	}
	_, body = f.get(c, strings.ReplaceAll(next, "&amp;", "&"))
	if !strings.Contains(body, `href="/messages/`+itoa(first.ID)+`"`) || strings.Contains(body, `rel="next"`) {
		t.Errorf("the second page does not hold just the oldest message")
	}
}
