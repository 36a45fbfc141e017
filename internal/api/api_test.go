package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/outbound"
	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/sqlite"
)

const token = "test-token-0123456789"

// fixture is the API over a real SQLite store, with a submission function that records
// what it was given and stores a row the way the send worker's Submit does.
type fixture struct {
	srv       *httptest.Server
	store     store.Store
	submitted []outbound.Submission
	bodies    [][]byte
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &fixture{store: st}
	a := New(Config{
		Store: st, Tokens: []string{"other-token", token}, SpoolDir: t.TempDir(),
		Submit: func(ctx context.Context, s outbound.Submission) (*store.Message, error) {
			if s.Partner != "PARTNERX" {
				return nil, &outbound.SubmitError{Msg: "no partner " + s.Partner + " is configured"}
			}
			m := &store.Message{Direction: store.Outbound, Kind: store.KindMessage, MessageID: "<m@test>",
				Station: "GW", Partner: s.Partner, Subject: s.Subject, Tag: s.Tag, State: store.StateQueued, NextAttemptAt: time.Now()}
			for _, file := range s.Files {
				b, _ := io.ReadAll(file.Body)
				f.bodies = append(f.bodies, b)
				m.Files = append(m.Files, store.File{Name: file.Name, ContentType: file.ContentType, Size: int64(len(b)), SHA256: strings.Repeat("a", 64)})
			}
			f.submitted = append(f.submitted, s)
			return m, st.CreateMessage(ctx, m, nil)
		},
		Ready: func(ctx context.Context) error { return st.Ping(ctx) },
	})
	f.srv = httptest.NewServer(a.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) do(t *testing.T, method, path, tok string, body io.Reader, contentType string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, body)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s %s: not JSON: %s", method, path, b)
	}
	return resp.StatusCode, out
}

func form(fields map[string]string, files map[string]string) (io.Reader, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range files {
		w, _ := mw.CreateFormFile("file", k)
		io.WriteString(w, v)
	}
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	mw.Close()
	return &buf, mw.FormDataContentType()
}

func TestSubmitAndRead(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	// Fields after the file still apply: the form is read whole before submitting.
	body, ct := form(map[string]string{"partner": "PARTNERX", "subject": "po", "tag": "batch-7", "content_type": "application/edi-x12"},
		map[string]string{"po.edi": "ISA*00*~"})
	code, out := f.do(t, "POST", "/api/v1/messages", token, body, ct)
	if code != http.StatusAccepted || out["message_id"] != "<m@test>" || out["state"] != "queued" || out["id"] == nil {
		t.Fatalf("submit: %d %v", code, out)
	}
	s := f.submitted[0]
	if s.Subject != "po" || s.Tag != "batch-7" || len(s.Files) != 1 || s.Files[0].Name != "po.edi" ||
		s.Files[0].ContentType != "application/edi-x12" || string(f.bodies[0]) != "ISA*00*~" {
		t.Fatalf("submission %+v, body %q", s, f.bodies)
	}
	id := int64(out["id"].(float64))

	code, m := f.do(t, "GET", "/api/v1/messages/"+jsonNumber(id), token, nil, "")
	if code != http.StatusOK || m["partner"] != "PARTNERX" || m["direction"] != "out" || m["state"] != "queued" {
		t.Fatalf("get: %d %v", code, m)
	}
	if _, ok := m["attempts"].([]any); !ok {
		t.Fatalf("attempts is not a list: %v", m["attempts"])
	}
	if _, ok := m["mdn"]; !ok {
		t.Fatalf("no mdn field: %v", m)
	}

	code, list := f.do(t, "GET", "/api/v1/messages?box=outbox&partner=PARTNERX", token, nil, "")
	if code != http.StatusOK || len(list["messages"].([]any)) != 1 {
		t.Fatalf("list: %d %v", code, list)
	}
	code, list = f.do(t, "GET", "/api/v1/messages?box=sent", token, nil, "")
	if code != http.StatusOK || len(list["messages"].([]any)) != 0 {
		t.Fatalf("sent box: %d %v", code, list)
	}
}

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good, goodCT := form(map[string]string{"partner": "PARTNERX"}, map[string]string{"a.txt": "x"})
	cases := []struct {
		name, method, path, token string
		body                      func() (io.Reader, string)
		status                    int
		says                      string
	}{
		{name: "no token", method: "GET", path: "/api/v1/messages", status: 401, says: "bearer token"},
		{name: "wrong token", method: "GET", path: "/api/v1/messages", token: "nope", status: 401, says: "bearer token"},
		{name: "wrong token on submit", method: "POST", path: "/api/v1/messages", token: "nope",
			body: func() (io.Reader, string) { return good, goodCT }, status: 401},
		{name: "unknown box", method: "GET", path: "/api/v1/messages?box=trash", token: token, status: 400, says: "trash"},
		{name: "bad limit", method: "GET", path: "/api/v1/messages?limit=0", token: token, status: 400, says: "limit"},
		{name: "bad id", method: "GET", path: "/api/v1/messages/abc", token: token, status: 400, says: "abc"},
		{name: "missing message", method: "GET", path: "/api/v1/messages/999", token: token, status: 404, says: "999"},
		{name: "not a form", method: "POST", path: "/api/v1/messages", token: token,
			body: func() (io.Reader, string) { return strings.NewReader("{}"), "application/json" }, status: 400, says: "multipart/form-data"},
		{name: "unknown partner", method: "POST", path: "/api/v1/messages", token: token,
			body: func() (io.Reader, string) {
				return form(map[string]string{"partner": "NOBODY"}, map[string]string{"a.txt": "x"})
			}, status: 400, says: "NOBODY"},
		{name: "unknown field", method: "POST", path: "/api/v1/messages", token: token,
			body: func() (io.Reader, string) {
				return form(map[string]string{"partner": "PARTNERX", "colour": "red"}, nil)
			}, status: 400, says: "colour"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			var ct string
			if tc.body != nil {
				body, ct = tc.body()
			}
			code, out := f.do(t, tc.method, tc.path, tc.token, body, ct)
			msg, _ := out["error"].(string)
			if code != tc.status || !strings.Contains(msg, tc.says) {
				t.Fatalf("%d %q, want %d mentioning %q", code, msg, tc.status, tc.says)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, _ := f.do(t, "GET", path, "", nil, ""); code != http.StatusOK {
			t.Fatalf("%s: %d", path, code)
		}
	}
	f.store.Close()
	if code, out := f.do(t, "GET", "/readyz", "", nil, ""); code != http.StatusServiceUnavailable || out["error"] == "" {
		t.Fatalf("readyz with the database closed: %d %v", code, out)
	}
}

func TestSubmitTooLarge(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	small := New(Config{Store: f.store, Tokens: []string{token}, MaxUpload: 1024, SpoolDir: t.TempDir(),
		Submit: func(context.Context, outbound.Submission) (*store.Message, error) {
			t.Error("a submission over the limit reached Submit")
			return nil, nil
		}})
	srv := httptest.NewServer(small.Handler())
	defer srv.Close()
	body, ct := form(map[string]string{"partner": "PARTNERX"}, map[string]string{"big.bin": strings.Repeat("x", 4096)})
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/messages", body)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", ct)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}

// TestSubmitUploadLimitFollows reads the limit at each submission: raised (a partner with a
// larger max_size added at run time), the same upload goes through.
func TestSubmitUploadLimitFollows(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var limit atomic.Int64
	limit.Store(1024)
	accepted := 0
	a := New(Config{Store: f.store, Tokens: []string{token}, UploadLimit: limit.Load, SpoolDir: t.TempDir(),
		Submit: func(_ context.Context, s outbound.Submission) (*store.Message, error) {
			accepted++
			return &store.Message{ID: 1, MessageID: "<x@y>", State: store.StateQueued}, nil
		}})
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	post := func() int {
		body, ct := form(map[string]string{"partner": "PARTNERX"}, map[string]string{"big.bin": strings.Repeat("x", 4096)})
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/messages", body)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("under a 1 KiB limit: status %d, want 413", code)
	}
	limit.Store(1 << 20)
	if code := post(); code != http.StatusAccepted || accepted != 1 {
		t.Fatalf("under a 1 MiB limit: status %d (%d accepted), want 202", code, accepted)
	}
}
