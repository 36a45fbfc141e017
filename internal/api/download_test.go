package api

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/cms/cmstest"
	"github.com/as2gate/as2gate/internal/archive"
	"github.com/as2gate/as2gate/internal/payload"
	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/sqlite"
)

// certSource answers Certificates from fixed lists, or with err.
type certSource struct {
	station, partner []*x509.Certificate
	err              error
}

func (c certSource) Certificates(_ context.Context, station, partner string) ([]*x509.Certificate, []*x509.Certificate, error) {
	return c.station, c.partner, c.err
}

// downloads is the API over a real SQLite store and payload folder, holding one received
// message with two files, a wire message and an MDN, and one without an MDN.
type downloads struct {
	srv                *httptest.Server
	full, bare, broken int64
	wire, mdn          []byte
	files              [][]byte
}

func newDownloads(t *testing.T) *downloads {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ps, err := payload.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	put := func(b []byte) string {
		key, _, err := ps.Put(ctx, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	d := &downloads{
		wire:  []byte("--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1--\r\n"),
		mdn:   []byte("--r1\r\nContent-Type: text/plain\r\n\r\nreceipt\r\n--r1--\r\n"),
		files: [][]byte{[]byte("<html><script>alert(1)</script></html>"), []byte("UNA:+.? 'UNB+UNOC:3'")},
	}
	now := time.Now().UTC()
	m := &store.Message{
		Direction: store.Inbound, MessageID: "<full@partner>", Station: "GW", Partner: "PARTNERX",
		State: store.StateReceived, NextAttemptAt: now,
		Files: []store.File{
			{Name: `..\..\evil.html`, ContentType: "text/html", Size: int64(len(d.files[0])), SHA256: put(d.files[0])},
			{Name: "Bestellung-Müller.edi", ContentType: "application/edifact", Size: int64(len(d.files[1])), SHA256: put(d.files[1])},
		},
		Wire: put(d.wire),
		WireHeader: http.Header{
			"Content-Type": {`multipart/related; boundary="b1"`},
			"As2-From":     {"PARTNERX"},
			"Message-Id":   {"<full@partner>"},
			"X-Api-Key":    {"k3y-from-the-partner-config"},
		},
		MDN: &store.MDN{Disposition: "automatic-action/MDN-sent-automatically; processed", Positive: true,
			MessageID: "<mdn@gw>", Header: "As2-From: GW\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=\"r1\"\r\n",
			Key: put(d.mdn), At: now},
	}
	if err := st.CreateMessage(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	bare := &store.Message{Direction: store.Outbound, Kind: store.KindMessage, MessageID: "<bare@gw>", Station: "GW",
		Partner: "PARTNERX", State: store.StateQueued, NextAttemptAt: now,
		Files: []store.File{{Name: "a.txt", ContentType: "text/plain", Size: 1, SHA256: put([]byte("a"))}}}
	if err := st.CreateMessage(ctx, bare, nil); err != nil {
		t.Fatal(err)
	}
	broken := &store.Message{Direction: store.Inbound, MessageID: "<broken@partner>", Station: "GW",
		Partner: "PARTNERX", State: store.StateReceived, NextAttemptAt: now, Wire: strings.Repeat("0", 64),
		Files: []store.File{{Name: "gone.txt", Size: 1, SHA256: strings.Repeat("1", 64)}}}
	if err := st.CreateMessage(ctx, broken, nil); err != nil {
		t.Fatal(err)
	}
	d.full, d.bare, d.broken = m.ID, bare.ID, broken.ID
	id := cmstest.New(t, "GW", nil)
	a := New(Config{Store: st, Payloads: ps, Tokens: []string{token},
		Certificates: certSource{station: []*x509.Certificate{id.Certificate}}})
	d.srv = httptest.NewServer(a.Handler())
	t.Cleanup(d.srv.Close)
	return d
}

func (d *downloads) get(t *testing.T, path, tok string) (*http.Response, []byte) {
	t.Helper()
	return get(t, d.srv.URL+path, tok)
}

func get(t *testing.T, url, tok string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestDownloads(t *testing.T) {
	t.Parallel()
	d := newDownloads(t)
	full, bare, broken := "/api/v1/messages/"+itoa(d.full), "/api/v1/messages/"+itoa(d.bare), "/api/v1/messages/"+itoa(d.broken)
	for _, tc := range []struct {
		name, path, token string
		status            int
		contentType       string
		disposition       string
		body              []byte
		errorHas          string
	}{
		{name: "file 0, name sanitised, html not rendered", path: full + "/files/0", token: token, status: 200,
			contentType: "text/html", disposition: "attachment; filename=evil.html", body: d.files[0]},
		{name: "file 1, non-ASCII name", path: full + "/files/1", token: token, status: 200,
			contentType: "application/edifact", disposition: "attachment; filename*=utf-8''Bestellung-M%C3%BCller.edi", body: d.files[1]},
		{name: "file past the last", path: full + "/files/2", token: token, status: 404, errorHas: "has 2 file(s)"},
		{name: "file number not a number", path: full + "/files/x", token: token, status: 400, errorHas: "not a number"},
		{name: "file number negative", path: full + "/files/-1", token: token, status: 400, errorHas: "not a number"},
		{name: "wire", path: full + "/wire", token: token, status: 200,
			contentType: `multipart/related; boundary=b1`, disposition: "attachment; filename=message-" + itoa(d.full) + "-wire.bin", body: d.wire},
		{name: "wire with headers", path: full + "/wire?with_headers=1", token: token, status: 200, contentType: "message/rfc822",
			body: append([]byte("As2-From: PARTNERX\r\nContent-Type: multipart/related; boundary=\"b1\"\r\nMessage-Id: <full@partner>\r\nX-Api-Key: "+archive.Redacted+"\r\n\r\n"), d.wire...)},
		{name: "wire, bad with_headers", path: full + "/wire?with_headers=yes", token: token, status: 400, errorHas: "with_headers"},
		{name: "wire not packed yet", path: bare + "/wire", token: token, status: 404, errorHas: "no wire message"},
		{name: "wire lost from the store", path: broken + "/wire", token: token, status: 500, errorHas: "under reference"},
		{name: "mdn", path: full + "/mdn", token: token, status: 200,
			contentType: `multipart/report; boundary=r1; report-type=disposition-notification`, body: d.mdn},
		{name: "no mdn", path: bare + "/mdn", token: token, status: 404, errorHas: "no stored MDN"},
		{name: "unknown message", path: "/api/v1/messages/999/wire", token: token, status: 404, errorHas: "no message 999"},
		{name: "bad message id", path: "/api/v1/messages/abc/mdn", token: token, status: 400, errorHas: "not a positive number"},
		{name: "no token", path: full + "/files/0", status: 401, errorHas: "bearer token"},
		{name: "wrong token", path: full + "/export", token: "nope", status: 401, errorHas: "bearer token"},
		{name: "export of a message whose blobs are gone", path: broken + "/export", token: token, status: 500, errorHas: "under reference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := d.get(t, tc.path, tc.token)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.errorHas != "" {
				var e apiError
				if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, tc.errorHas) {
					t.Fatalf("error body %s, want JSON naming %q", body, tc.errorHas)
				}
				return
			}
			if got := resp.Header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type %q, want %q", got, tc.contentType)
			}
			if tc.disposition != "" && resp.Header.Get("Content-Disposition") != tc.disposition {
				t.Errorf("Content-Disposition %q, want %q", resp.Header.Get("Content-Disposition"), tc.disposition)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no X-Content-Type-Options: nosniff")
			}
			if !bytes.Equal(body, tc.body) {
				t.Errorf("body\n%q\nwant\n%q", body, tc.body)
			}
		})
	}
}

func TestDownloadWireHeaderField(t *testing.T) {
	t.Parallel()
	d := newDownloads(t)
	resp, _ := d.get(t, "/api/v1/messages/"+itoa(d.full)+"/wire", token)
	var h http.Header
	if err := json.Unmarshal([]byte(resp.Header.Get(WireHeaderField)), &h); err != nil {
		t.Fatalf("%s is not JSON: %v", WireHeaderField, err)
	}
	if h.Get("Message-Id") != "<full@partner>" || h.Get("As2-From") != "PARTNERX" {
		t.Errorf("%s = %v", WireHeaderField, h)
	}
	// A custom header's value may be a credential: its name is kept, its value withheld,
	// here, with the headers in front of the download, and in the export.
	if h.Get("X-Api-Key") != archive.Redacted {
		t.Errorf("%s shows X-Api-Key as %q", WireHeaderField, h.Get("X-Api-Key"))
	}
	for _, path := range []string{"/wire?with_headers=1", "/export"} {
		_, body := d.get(t, "/api/v1/messages/"+itoa(d.full)+path, token)
		if bytes.Contains(body, []byte("k3y-from-the-partner-config")) {
			t.Errorf("%s shows the custom header's value", path)
		}
	}
	_, body := d.get(t, "/api/v1/messages/"+itoa(d.full)+"/wire?with_headers=1", token)
	if !bytes.Contains(body, []byte("X-Api-Key: "+archive.Redacted)) {
		t.Errorf("the wire download with headers lacks the withheld header:\n%.300s", body)
	}
}

func TestExportRoute(t *testing.T) {
	t.Parallel()
	d := newDownloads(t)
	resp, body := d.get(t, "/api/v1/messages/"+itoa(d.full)+"/export", token)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("status %d, Content-Type %q: %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if got, want := resp.Header.Get("Content-Disposition"), "attachment; filename=as2gate-message-"+itoa(d.full)+".zip"; got != want {
		t.Errorf("Content-Disposition %q, want %q", got, want)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		got[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	want := map[string][]byte{"wire.bin": d.wire, "mdn.bin": d.mdn, "payloads/evil.html": d.files[0], "payloads/Bestellung-Müller.edi": d.files[1]}
	for name, b := range want {
		if !bytes.Equal(got[name], b) {
			t.Errorf("%s = %q, want %q", name, got[name], b)
		}
	}
	for _, name := range []string{"station.pem", "manifest.json", "README.txt", "wire-headers.txt", "mdn-headers.txt"} {
		if len(got[name]) == 0 {
			t.Errorf("%s missing or empty", name)
		}
	}
	var man struct {
		MessageID string `json:"message_id"`
		Direction string `json:"direction"`
	}
	if err := json.Unmarshal(got["manifest.json"], &man); err != nil || man.MessageID != "<full@partner>" || man.Direction != "in" {
		t.Errorf("manifest %s (%v)", got["manifest.json"], err)
	}
}

func TestExportCertificateLookupFails(t *testing.T) {
	t.Parallel()
	// The gateway no longer knows the partner: the export is still made, and says why the
	// certificates are missing.
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ps, _ := payload.OpenDir(t.TempDir())
	m := &store.Message{Direction: store.Inbound, MessageID: "<x@p>", Station: "GW", Partner: "GONE",
		State: store.StateReceived, NextAttemptAt: time.Now()}
	if err := st.CreateMessage(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Config{Store: st, Payloads: ps, Tokens: []string{token},
		Certificates: certSource{err: errors.New(`no partner "GONE" is configured`)}}).Handler())
	defer srv.Close()
	resp, body := get(t, srv.URL+"/api/v1/messages/"+itoa(m.ID)+"/export", token)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name != "manifest.json" {
			continue
		}
		rc, _ := f.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		if !strings.Contains(string(b), `no partner \"GONE\" is configured`) {
			t.Errorf("manifest does not say why the certificates are missing:\n%s", b)
		}
		return
	}
	t.Error("no manifest.json")
}
