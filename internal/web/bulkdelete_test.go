package web

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// TestBulkDelete deletes checked rows through the same action as the API's bulk delete; a
// row being sent is refused with the reason shown, and stays.
func TestBulkDelete(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	sending := f.create(outboundMessage("sending"))
	claimed, err := f.store.Claim(ctx, store.ClaimRequest{Now: time.Now().Add(time.Minute), Owner: "node-x", Lease: time.Hour, Limit: 1})
	if err != nil || len(claimed) != 1 || claimed[0].ID != sending.ID {
		t.Fatalf("Claim = %v, %v", claimed, err)
	}
	a, b := f.create(outboundMessage("first")), f.create(outboundMessage("second"))
	keep := f.create(outboundMessage("kept"))
	c := f.signIn()

	_, page := f.get(c, "/messages?box=outbox")
	for _, m := range []*store.Message{a, b, keep} {
		if !strings.Contains(page, fmt.Sprintf(`name="id" value="%d" form="bulk-delete"`, m.ID)) {
			t.Fatalf("no checkbox for message %d:\n%s", m.ID, page)
		}
	}
	if !strings.Contains(page, "Delete selected") {
		t.Fatal("no Delete selected button")
	}

	resp := f.post(c, "/messages/delete", url.Values{"box": {"outbox"}, "id": {itoa(a.ID), itoa(b.ID), itoa(sending.ID)}})
	page = body(t, resp)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("bulk delete: status %d:\n%s", resp.StatusCode, page)
	}
	if !strings.Contains(page, "2 message(s) deleted. 1 not deleted:") || !strings.Contains(page, fmt.Sprintf("Message %d: it is being sent right now", sending.ID)) {
		t.Errorf("the outcome is not shown:\n%s", page)
	}
	for _, m := range []*store.Message{a, b} {
		if _, err := f.store.GetMessage(ctx, m.ID); err == nil {
			t.Errorf("message %d was not deleted", m.ID)
		}
	}
	for _, m := range []*store.Message{sending, keep} {
		if _, err := f.store.GetMessage(ctx, m.ID); err != nil {
			t.Errorf("message %d is gone: %v", m.ID, err)
		}
	}
	// The timeline keeps the deletions, as for the API.
	evs, err := f.store.Timeline(ctx, store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	deleted := 0
	for _, ev := range evs {
		if ev.Type == "deleted" {
			deleted++
		}
	}
	if deleted != 2 {
		t.Errorf("%d deletion events, want 2", deleted)
	}

	// When every row goes, the browser is sent back to the box, so a reload posts nothing.
	extra := f.create(outboundMessage("extra"))
	resp = f.post(c, "/messages/delete", url.Values{"box": {"outbox"}, "q": {"extra"}, "id": {itoa(extra.ID)}})
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || loc != "/messages?box=outbox&q=extra&deleted=1" {
		t.Fatalf("bulk delete without refusals: status %d to %q", resp.StatusCode, loc)
	}
	if _, page := f.get(c, loc); !strings.Contains(page, "1 message(s) deleted.") {
		t.Errorf("the box does not show the outcome:\n%s", page)
	}

	for _, tc := range []struct {
		name string
		form url.Values
		want string
	}{
		{"none selected", url.Values{"box": {"queued"}}, "Select at least one message"},
		{"too many", url.Values{"box": {"queued"}, "id": strings.Split(strings.Repeat("1,", maxBulkDelete+1), ",")}, "at most 1000"},
	} {
		resp := f.post(c, "/messages/delete", tc.form)
		if b := body(t, resp); resp.StatusCode != http.StatusBadRequest || !strings.Contains(b, tc.want) {
			t.Errorf("%s: status %d, want 400 with %q", tc.name, resp.StatusCode, tc.want)
		}
	}
}

// TestComposeTooLarge: an upload past MaxUpload answers 413 with a readable page.
func TestComposeTooLarge(t *testing.T) {
	t.Parallel()
	f, rec := newComposeFixture(t)
	c0, err := New(Config{Store: f.store, Payloads: f.payloads, Submit: rec.submit, SpoolDir: t.TempDir(), MaxUpload: 4 << 10,
		SendChoices: func(context.Context) SendChoices { return SendChoices{Partners: []string{"PARTNER"}} }})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Config.Handler = c0.Handler()
	c := f.signIn()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("partner", "PARTNER")
	w, _ := mw.CreateFormFile("file", "big.edi")
	w.Write(bytes.Repeat([]byte("ISA*"), 4<<10))
	mw.Close()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/compose", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page := body(t, resp)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(page, "too large") || !strings.Contains(page, "4.0 KiB") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("oversize compose: status %d, %s:\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), page)
	}
	if len(rec.calls) != 0 {
		t.Errorf("the oversize form was submitted: %d calls", len(rec.calls))
	}
}
