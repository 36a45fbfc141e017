package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/as2gate/as2gate/internal/outbound"
	"github.com/as2gate/as2gate/internal/store"
)

// submitted is one file as the fake Submit read it.
type submitted struct {
	Name, ContentType string
	Body              []byte
}

// recorder is a Submit that keeps what it was given and stores a queued row the way the
// worker does, refusing what the worker refuses: an unknown partner or an empty file.
type recorder struct {
	f     *fixture
	mu    sync.Mutex
	calls []outbound.Submission
	files [][]submitted
}

func (rec *recorder) submit(ctx context.Context, s outbound.Submission) (*store.Message, error) {
	var got []submitted
	for _, f := range s.Files {
		b, err := io.ReadAll(f.Body)
		if err != nil {
			return nil, err
		}
		got = append(got, submitted{f.Name, f.ContentType, b})
	}
	rec.mu.Lock()
	rec.calls = append(rec.calls, s)
	rec.files = append(rec.files, got)
	rec.mu.Unlock()
	if s.Partner != "PARTNER" {
		return nil, &outbound.SubmitError{Msg: fmt.Sprintf("unknown partner %q", s.Partner)}
	}
	m := outboundMessage(s.Subject)
	m.Profile = s.Profile
	for _, f := range got {
		if len(f.Body) == 0 {
			return nil, &outbound.SubmitError{Msg: fmt.Sprintf("file %q is empty", f.Name)}
		}
		key, size, err := rec.f.payloads.Put(ctx, bytes.NewReader(f.Body))
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, store.File{Name: f.Name, ContentType: f.ContentType, Size: size, SHA256: key})
	}
	if err := rec.f.store.CreateMessage(ctx, m, nil); err != nil {
		return nil, err
	}
	return m, nil
}

// newComposeFixture is a console whose compose page submits to a recorder and offers
// PARTNER and OTHER, and the profiles "plain" and "tracked".
func newComposeFixture(t *testing.T) (*fixture, *recorder) {
	t.Helper()
	f := newFixture(t)
	rec := &recorder{f: f}
	c, err := New(Config{Store: f.store, Payloads: f.payloads, Submit: rec.submit, SpoolDir: t.TempDir(),
		SendChoices: func(context.Context) SendChoices {
			return SendChoices{Partners: []string{"PARTNER", "OTHER"}, Profiles: []string{"plain", "tracked"}}
		}})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(c.Handler())
	t.Cleanup(f.srv.Close)
	return f, rec
}

type upload struct{ name, body string }

// postCompose sends the compose form as a browser does, from the page's own origin unless
// site says otherwise ("cross-site").
func (f *fixture) postCompose(c *http.Client, site string, fields map[string]string, files []upload) (*http.Response, string) {
	f.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	for _, u := range files {
		w, err := mw.CreateFormFile("file", u.name)
		if err != nil {
			f.t.Fatal(err)
		}
		io.WriteString(w, u.body)
	}
	mw.Close()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/compose", &body)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Sec-Fetch-Site", site)
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp, string(b)
}

func TestComposeForm(t *testing.T) {
	t.Parallel()
	f, _ := newComposeFixture(t)
	c := f.signIn()
	resp, body := f.get(c, "/compose?partner=OTHER")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, want := range []string{
		`enctype="multipart/form-data"`,
		`<label for="partner">`, `<label for="profile">`, `<label for="subject">`, `<label for="file">`, `<label for="content_type">`,
		`<option value="PARTNER">PARTNER</option>`, `<option value="OTHER" selected>OTHER</option>`,
		`<option value="tracked">tracked</option>`,
		`type="file" multiple`,
		`<a href="/compose">Compose</a>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the form lacks %s", want)
		}
	}
}

func TestComposeNeedsSession(t *testing.T) {
	t.Parallel()
	f, rec := newComposeFixture(t)
	c := f.client()
	resp, _ := f.get(c, "/compose")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login?next=%2Fcompose") {
		t.Errorf("GET without a session: %d to %q, want 303 to the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = f.postCompose(c, "same-origin", map[string]string{"partner": "PARTNER"}, []upload{{"a.edi", "ISA"}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("POST without a session: status %d, want 401", resp.StatusCode)
	}
	if len(rec.calls) != 0 {
		t.Errorf("Submit was called %d times without a session", len(rec.calls))
	}
}

func TestComposeCrossOriginRefused(t *testing.T) {
	t.Parallel()
	f, rec := newComposeFixture(t)
	c := f.signIn()
	resp, _ := f.postCompose(c, "cross-site", map[string]string{"partner": "PARTNER"}, []upload{{"a.edi", "ISA"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST: status %d, want 403", resp.StatusCode)
	}
	if len(rec.calls) != 0 {
		t.Errorf("Submit was called %d times for a cross-site form", len(rec.calls))
	}
}

func TestComposeTwoFiles(t *testing.T) {
	t.Parallel()
	f, rec := newComposeFixture(t)
	c := f.signIn()
	files := []upload{{"po-850.edi", "ISA*00*first~"}, {"notes.txt", "second file\r\nwith CRLF\x00and a NUL"}}
	resp, _ := f.postCompose(c, "same-origin", map[string]string{
		"partner": "PARTNER", "profile": "tracked", "subject": " Orders week 47 ", "content_type": "application/edi-x12",
	}, files)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status %d, want 303", resp.StatusCode)
	}
	if len(rec.calls) != 1 {
		t.Fatalf("Submit was called %d times, want once", len(rec.calls))
	}
	s := rec.calls[0]
	if s.Partner != "PARTNER" || s.Profile != "tracked" || s.Subject != "Orders week 47" {
		t.Errorf("Submit got partner %q profile %q subject %q", s.Partner, s.Profile, s.Subject)
	}
	got := rec.files[0]
	if len(got) != len(files) {
		t.Fatalf("Submit got %d files, want %d", len(got), len(files))
	}
	for i, u := range files {
		if got[i].Name != u.name || string(got[i].Body) != u.body || got[i].ContentType != "application/edi-x12" {
			t.Errorf("file %d reached Submit as %q %q %q, want %q %q", i, got[i].Name, got[i].ContentType, got[i].Body, u.name, u.body)
		}
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "/messages/") || !strings.HasSuffix(loc, "?done=submitted") {
		t.Fatalf("redirected to %q, want the new message's details", loc)
	}
	resp, body := f.get(c, loc)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("details: status %d", resp.StatusCode)
	}
	for _, want := range []string{"The message is queued for sending.", "po-850.edi", "notes.txt", "Orders week 47"} {
		if !strings.Contains(body, want) {
			t.Errorf("the details page lacks %q", want)
		}
	}
}

func TestComposeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		partner string
		files   []upload
		reason  string
		submits int // how many times Submit is reached
	}{
		// A browser sends an unnamed, empty part when no file was chosen.
		{"no file", "PARTNER", []upload{{"", ""}}, "Choose at least one file to send.", 0},
		{"no partner", "", []upload{{"a.edi", "ISA"}}, "Choose a partner.", 0},
		{"unknown partner", "NOBODY", []upload{{"a.edi", "ISA"}}, "unknown partner &#34;NOBODY&#34;", 1},
		{"empty file", "PARTNER", []upload{{"a.edi", "ISA"}, {"empty.edi", ""}}, "file &#34;empty.edi&#34; is empty", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, rec := newComposeFixture(t)
			c := f.signIn()
			resp, body := f.postCompose(c, "same-origin", map[string]string{
				"partner": tt.partner, "profile": "plain", "subject": "kept <subject>", "content_type": "text/plain",
			}, tt.files)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			if len(rec.calls) != tt.submits {
				t.Errorf("Submit was reached %d times, want %d", len(rec.calls), tt.submits)
			}
			for _, want := range []string{
				`role="alert"`, tt.reason,
				`value="kept &lt;subject&gt;"`, `value="text/plain"`,
				`<option value="plain" selected>plain</option>`,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("the form lacks %s; it reads:\n%s", want, body)
				}
			}
			if tt.partner == "PARTNER" && !strings.Contains(body, `<option value="PARTNER" selected>`) {
				t.Error("the chosen partner is not kept")
			}
			ms, err := f.store.ListMessages(context.Background(), store.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(ms) != 0 {
				t.Errorf("%d messages stored after a refused form", len(ms))
			}
		})
	}
}
