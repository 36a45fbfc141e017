package web

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// failedOnce claims m and records one failed attempt of class with the corrective action.
func (f *fixture) failedOnce(m *store.Message, class, code, action string) {
	f.t.Helper()
	ctx := context.Background()
	ms, err := f.store.Claim(ctx, store.ClaimRequest{Now: time.Now().Add(time.Minute), Owner: "node-a", Lease: time.Minute, Limit: 10})
	if err != nil || len(ms) != 1 {
		f.t.Fatalf("Claim: %d rows, %v", len(ms), err)
	}
	err = f.store.Finish(ctx, m.ID, "node-a", store.Outcome{
		State: store.StateQueued, NextAttemptAt: time.Now().Add(time.Hour),
		Attempt: &store.Attempt{Class: class, Code: code, HTTPStatus: 503, Error: "as2: partner answered 503", Action: action},
		Event:   &store.Event{Type: "attempt_failed"},
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func TestMessageDetails(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.signIn()
	key, size, err := f.payloads.Put(context.Background(), strings.NewReader("ISA*00*..."))
	if err != nil {
		t.Fatal(err)
	}
	m := outboundMessage("invoice")
	m.Files = []store.File{{Name: "invoice.edi", ContentType: "application/edi-x12", Size: size, SHA256: key}}
	f.create(m)
	f.failedOnce(m, store.ClassTransient, "http_503", "The partner's server is busy; the message is retried on its own.")

	resp, body := f.get(c, "/messages/"+itoa(m.ID))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, want := range []string{
		"The partner&#39;s server is busy; the message is retried on its own.",
		"http_503", "HTTP 503", "transient",
		"&lt;invoice-", // the Message-ID, escaped
		`href="/messages/` + itoa(m.ID) + `/files/0"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("%s is missing from the page", want)
		}
	}
	if strings.Contains(body, "may already have this message") {
		t.Errorf("a transient failure shows the duplicate warning")
	}

	t.Run("download", func(t *testing.T) {
		resp, err := c.Get(f.srv.URL + "/messages/" + itoa(m.ID) + "/files/0")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(b) != "ISA*00*..." {
			t.Errorf("status %d, body %q", resp.StatusCode, b)
		}
		if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename=invoice.edi` {
			t.Errorf("Content-Disposition %q", cd)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/octet-stream" {
			t.Errorf("Content-Type %q", ct)
		}
	})
	t.Run("no such file", func(t *testing.T) {
		if resp, _ := f.get(c, "/messages/"+itoa(m.ID)+"/files/1"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d, want 404", resp.StatusCode)
		}
	})
	t.Run("no such message", func(t *testing.T) {
		if resp, _ := f.get(c, "/messages/999999"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d, want 404", resp.StatusCode)
		}
	})
	t.Run("bad id", func(t *testing.T) {
		if resp, _ := f.get(c, "/messages/abc"); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})
}

func TestMessageDetailsWarnsOfDuplicates(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.signIn()
	m := f.create(outboundMessage("order"))
	f.failedOnce(m, store.ClassIncomplete, "mdn_timeout", "Ask the partner whether the message arrived before you resend it.")
	_, body := f.get(c, "/messages/"+itoa(m.ID))
	for _, want := range []string{"may already have this message", "Ask the partner whether the message arrived before you resend it.", "incomplete"} {
		if !strings.Contains(body, want) {
			t.Errorf("%q is missing from the page", want)
		}
	}
}

func TestMessageActions(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := f.signIn()
	m := f.create(outboundMessage("order"))
	_, body := f.get(c, "/messages/"+itoa(m.ID))
	if !strings.Contains(body, `action="/messages/`+itoa(m.ID)+`/stop"`) {
		t.Fatalf("no stop button for a queued message")
	}
	if strings.Contains(body, `/resend"`) {
		t.Errorf("a queued message offers resend")
	}

	resp := f.post(c, "/messages/"+itoa(m.ID)+"/stop", url.Values{})
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/messages/"+itoa(m.ID)+"?done=stop" {
		t.Fatalf("stop: status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	got, err := f.store.GetMessage(context.Background(), m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.StateFailed {
		t.Errorf("after stop: state %s, want failed", got.State)
	}
	_, body = f.get(c, "/messages/"+itoa(m.ID)+"?done=stop")
	if !strings.Contains(body, "The message was stopped.") || !strings.Contains(body, `/retry"`) {
		t.Errorf("the page after stop lacks the notice or the retry button")
	}

	t.Run("refused in this state", func(t *testing.T) {
		resp := f.post(c, "/messages/"+itoa(m.ID)+"/stop", url.Values{})
		resp.Body.Close()
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("stop of a failed message: status %d, want 409", resp.StatusCode)
		}
	})
	t.Run("unknown action", func(t *testing.T) {
		resp := f.post(c, "/messages/"+itoa(m.ID)+"/explode", url.Values{})
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("status %d, want 404", resp.StatusCode)
		}
	})
	t.Run("retry", func(t *testing.T) {
		resp := f.post(c, "/messages/"+itoa(m.ID)+"/retry", url.Values{})
		resp.Body.Close()
		got, err := f.store.GetMessage(context.Background(), m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusSeeOther || got.State != store.StateQueued {
			t.Errorf("retry: status %d, state %s; want 303 and queued", resp.StatusCode, got.State)
		}
	})
}
