package as2

import (
	"crypto"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestHTTPErrorFromResponse(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/moved":
			http.Redirect(w, r, "/as2/new", http.StatusMovedPermanently)
		case "/busy":
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, strings.Repeat("overloaded\n", 1000))
		}
	}))
	t.Cleanup(srv.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, err := client.Get(srv.URL + "/moved")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	e := NewHTTPError(resp)
	if e.StatusCode != 301 || e.Location != srv.URL+"/as2/new" {
		t.Fatalf("redirect: %+v", e)
	}
	if !strings.Contains(e.Error(), "HTTP 301 Moved Permanently") || !strings.Contains(e.Error(), "Location: "+srv.URL+"/as2/new") {
		t.Fatalf("Error() = %q", e.Error())
	}

	resp, err = client.Get(srv.URL + "/busy")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	e = NewHTTPError(resp)
	if len(e.Body) != MaxErrorBody || e.Location != "" {
		t.Fatalf("body excerpt is %d bytes, Location %q", len(e.Body), e.Location)
	}
	if d, ok := e.RetryAfter(time.Now()); !ok || d != 2*time.Minute {
		t.Fatalf("RetryAfter = %v, %v", d, ok)
	}
	msg := e.Error()
	if !strings.HasPrefix(msg, "as2: partner answered HTTP 503 Service Unavailable: overloaded overloaded") || len(msg) > 400 || strings.Contains(msg, "\n") {
		t.Fatalf("Error() = %q", msg)
	}
}

func TestHTTPErrorRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	tests := []struct {
		name, value string
		want        time.Duration
		ok          bool
	}{
		{"seconds", "30", 30 * time.Second, true},
		{"http date", now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"date in the past", now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"huge seconds capped", "999999999999", 365 * 24 * time.Hour, true},
		{"negative", "-5", 0, false},
		{"garbage", "soon", 0, false},
		{"absent", "", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := &HTTPError{StatusCode: 429, Header: http.Header{}}
			if tc.value != "" {
				e.Header.Set("Retry-After", tc.value)
			}
			d, ok := e.RetryAfter(now)
			if d != tc.want || ok != tc.ok {
				t.Fatalf("RetryAfter(%q) = %v, %v; want %v, %v", tc.value, d, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestErrorMessagesAndUnwrap(t *testing.T) {
	t.Parallel()
	cause := errors.New("cms: signature does not match the content")
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	mic := MIC{Digest: make([]byte, 32), Alg: crypto.SHA256}
	tests := []struct {
		name   string
		err    error
		want   []string
		unwrap error
	}{
		{"http status only", &HTTPError{StatusCode: 404}, []string{"HTTP 404 Not Found"}, nil},
		{"http body with control bytes", &HTTPError{StatusCode: 500, Status: "500 Internal Server Error", Body: []byte("boom\x00\r\n\tat x")},
			[]string{"HTTP 500 Internal Server Error: boom? at x"}, nil},
		{"negative MDN", &DispositionError{Disposition: ProcessedWithError(DecryptionFailed), MDN: &MDN{Errors: []string{"bad key"}}},
			[]string{"negative MDN", "processed/error: decryption-failed", "Error: bad key"}, nil},
		{"MIC mismatch", &MICMismatchError{Want: mic, Got: MIC{Digest: make([]byte, 32), Alg: crypto.SHA256}}, []string{"MIC mismatch: sent AAAA", "returned AAAA"}, nil},
		{"MIC missing", &MICMismatchError{Want: mic}, []string{"returned no MIC"}, nil},
		{"unreadable MDN", &MDNError{Reason: "no Disposition field"}, []string{"unreadable MDN: no Disposition field"}, nil},
		{"unreadable MDN with cause", &MDNError{Reason: "bad part", Err: cause}, []string{"bad part: cms:"}, cause},
		{"signature", &SignatureError{Err: cause}, []string{"signature verification failed: cms: signature"}, cause},
		{"transport", &TransportError{Op: "read response", Sent: true, Err: reset}, []string{"read response", "connection reset", "request fully sent"}, reset},
		{"transport not sent", &TransportError{Op: "dial", Err: reset}, []string{"request not fully sent"}, reset},
		{"unpack", &UnpackError{Layer: "decrypt", Description: DecryptionFailed, Err: cause}, []string{"as2: decrypt: decryption-failed: cms:"}, cause},
		{"unpack without cause", &UnpackError{Layer: "agreement", Description: InsufficientMessageSecurity}, []string{"as2: agreement: insufficient-message-security"}, nil},
		{"unknown micalg", &UnsupportedMICAlgError{Name: "sha224"}, []string{`unknown MIC algorithm "sha224"`}, nil},
		{"mdn missing", ErrMDNMissing, []string{"no MDN"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg := tc.err.Error()
			if !strings.HasPrefix(msg, "as2: ") {
				t.Errorf("%q does not name the package", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q does not contain %q", msg, w)
				}
			}
			if got := errors.Unwrap(tc.err); got != tc.unwrap {
				t.Errorf("Unwrap = %v, want %v", got, tc.unwrap)
			}
		})
	}
	// The classifier reaches the net error through the wrapping.
	err := error(&TransportError{Op: "read response", Sent: true, Err: reset})
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatal("errors.Is does not reach ECONNRESET")
	}
}
