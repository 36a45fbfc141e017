package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/as2gate/as2gate/internal/store/sqlite"
)

// syncBuffer is a log destination that handlers on several goroutines may write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestInternalErrorHidesDetail: a 500 answers a generic message and a reference; the
// full error is in the log under the same reference. The database is closed under the
// API, so every read fails with the driver's own message.
func TestInternalErrorHidesDetail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	a := New(Config{Store: st, Tokens: []string{token}, SpoolDir: t.TempDir(), Log: slog.New(slog.NewTextHandler(&logs, nil))})
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	st.Close()

	refs := map[string]bool{}
	for _, path := range []string{"/api/v1/messages?box=sent", "/api/v1/messages/1", "/api/v1/timeline", "/api/v1/failures"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("GET %s: status %d, want 500: %s", path, resp.StatusCode, b)
		}
		var e apiError
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("GET %s: not JSON: %s", path, b)
		}
		for _, leak := range []string{"sql", "closed", "sqlite", dir} {
			if strings.Contains(strings.ToLower(string(b)), strings.ToLower(leak)) {
				t.Errorf("GET %s: the answer carries %q: %s", path, leak, b)
			}
		}
		if !regexp.MustCompile(`^[0-9a-f]{12}$`).MatchString(e.Reference) || !strings.Contains(e.Error, e.Reference) {
			t.Fatalf("GET %s: reference %q, error %q", path, e.Reference, e.Error)
		}
		if refs[e.Reference] {
			t.Errorf("reference %s given twice", e.Reference)
		}
		refs[e.Reference] = true
		line := ""
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "reference="+e.Reference) {
				line = l
			}
		}
		if !strings.Contains(line, "database is closed") || !strings.Contains(line, "path="+strings.SplitN(path, "?", 2)[0]) {
			t.Errorf("GET %s: the log has no full error under %s:\n%s", path, e.Reference, logs.String())
		}
	}
}
