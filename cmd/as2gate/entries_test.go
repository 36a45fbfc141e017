package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/as2gate/as2gate/cms/cmstest"
	"github.com/as2gate/as2gate/internal/api"
	"github.com/as2gate/as2gate/internal/config"
	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/sqlite"
)

// startConfig starts a gateway on the configuration file dir/as2gate.yaml with the text
// given; halt stops it (once), for a restart on the same folder.
func startConfig(t *testing.T, dir, id, yamlText string) (n *node, halt func()) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "as2gate.yaml")
	if err := os.WriteFile(path, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := cfg.EnsureAPIToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	gw, err := Open(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	n = &node{t: t, id: id, cfg: cfg, gw: gw, token: token, done: make(chan error, 1), stop: cancel}
	go func() { n.done <- gw.Run(ctx) }()
	var once sync.Once
	halt = func() {
		once.Do(func() {
			cancel()
			if err := <-n.done; err != nil {
				t.Errorf("%s: Run: %v", id, err)
			}
			gw.Close()
		})
	}
	t.Cleanup(halt)
	return n, halt
}

// call sends a request with the node's token (token "" sends none) and returns the status
// and the body.
func (n *node) call(method, path string, body []byte, contentType string, header ...string) (int, []byte) {
	n.t.Helper()
	return n.callAs(n.token, method, path, body, contentType, header...)
}

func (n *node) callAs(token, method, path string, body []byte, contentType string, header ...string) (int, []byte) {
	n.t.Helper()
	req, err := http.NewRequest(method, "http://"+n.gw.AdminAddr().String()+path, bytes.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// form builds a multipart body: fields, then files (field name -> contents).
func form(t *testing.T, fields map[string]string, files map[string][][]byte) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	for field, list := range files {
		for i, data := range list {
			w, _ := mw.CreateFormFile(field, fmt.Sprintf("%s-%d", field, i))
			w.Write(data)
		}
	}
	mw.Close()
	return buf.Bytes(), mw.FormDataContentType()
}

func expect(t *testing.T, what string, code int, body []byte, want int, contains ...string) {
	t.Helper()
	if code != want {
		t.Fatalf("%s: HTTP %d %s, want %d", what, code, body, want)
	}
	for _, c := range contains {
		if !strings.Contains(string(body), c) {
			t.Fatalf("%s: body %s does not contain %q", what, body, c)
		}
	}
}

// TestEntriesEndToEnd adds the receiving gateway to the sender through the API, with no
// restart, sends a message that reaches Sent, restarts the sender and finds the partner
// still there and still working, and shows that a partner of the file cannot be changed.
func TestEntriesEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	idS, idR := cmstest.New(t, "GW-S", nil), cmstest.New(t, "GW-R", nil)
	certS, keyS := idS.WriteFiles(t, dir, "s")
	certR, keyR := idR.WriteFiles(t, dir, "r")
	R, _ := startConfig(t, filepath.Join(dir, "R"), "GW-R", fmt.Sprintf(`data_dir: %s
listen: {as2: "127.0.0.1:0", admin: "127.0.0.1:0"}
log: {format: json, level: warn}
stations: [{as2_id: GW-R, key: %s, cert: %s}]
partners:
  - {as2_id: GW-S, url: "http://127.0.0.1:1/as2", certs: [%s]}
`, filepath.Join(dir, "R", "data"), keyR, certR, certS))
	senderYAML := fmt.Sprintf(`data_dir: %s
listen: {as2: "127.0.0.1:0", admin: "127.0.0.1:0"}
log: {format: json, level: warn}
stations: [{as2_id: GW-S, key: %s, cert: %s}]
partners:
  - {as2_id: FILEP, url: "http://127.0.0.1:1/as2", sign: none, encrypt: none, mdn_signed: false}
`, filepath.Join(dir, "S", "data"), keyS, certS)
	S, haltS := startConfig(t, filepath.Join(dir, "S"), "GW-S", senderYAML)

	if code, body := S.call("GET", "/api/v1/partners/GW-R", nil, ""); code != http.StatusNotFound {
		t.Fatalf("GW-R before it is added: %d %s", code, body)
	}
	entry := fmt.Sprintf(`{"as2_id": "GW-R", "station": "GW-S", "url": "http://%s/as2", "sign": "sha256", "encrypt": "aes256-cbc", "mdn": "sync", "mdn_signed": true}`, R.gw.AS2Addr())
	body, ct := form(t, map[string]string{"entry": entry}, map[string][][]byte{"file": {idR.CertPEM()}})
	code, resp := S.call("POST", "/api/v1/partners", body, ct)
	expect(t, "add GW-R", code, resp, http.StatusCreated, `"source": "database"`, `"revision": 1`, `"encrypt": "aes256-cbc"`, `"subject": "CN=GW-R,`)

	files := map[string][]byte{"invoice.edi": []byte("UNA:+.? 'UNB+UNOC:3+GWS+GWR'")}
	s := S.submit("GW-R", files)
	if sent := S.await(s.ID, "sent", "failed"); sent.State != "sent" || sent.MDN == nil || !sent.MDN.MICOK {
		t.Fatalf("message to the partner added at run time: %+v", sent)
	}
	if got := R.received(s.MessageID); got.State != "received" || got.Partner != "GW-S" {
		t.Fatalf("GW-R received %+v", got)
	}

	haltS()
	S, _ = startConfig(t, filepath.Join(dir, "S"), "GW-S", senderYAML)
	code, resp = S.call("GET", "/api/v1/partners/GW-R", nil, "")
	expect(t, "GW-R after a restart", code, resp, http.StatusOK, `"source": "database"`, `"revision": 1`, `"subject": "CN=GW-R,`)
	watched := false
	for _, nc := range S.gw.expiry.certList() {
		watched = watched || nc.Certificate.Equal(idR.Certificate)
	}
	if !watched {
		t.Errorf("after a restart the expiry watch lacks GW-R's certificate, kept in the database: %+v", S.gw.expiry.certList())
	}
	s = S.submit("GW-R", files)
	if sent := S.await(s.ID, "sent", "failed"); sent.State != "sent" {
		t.Fatalf("message after the restart: %+v", sent)
	}

	code, resp = S.call("GET", "/api/v1/partners/FILEP", nil, "")
	expect(t, "file partner", code, resp, http.StatusOK, `"source": "file"`)
	code, resp = S.call("PUT", "/api/v1/partners/FILEP", []byte(`{"url": "https://elsewhere.example/as2", "sign": "none", "encrypt": "none", "mdn_signed": false}`), "application/json")
	expect(t, "change a file partner", code, resp, http.StatusConflict, "configuration file")
	code, resp = S.call("DELETE", "/api/v1/partners/FILEP", nil, "")
	expect(t, "delete a file partner", code, resp, http.StatusConflict, "configuration file")
	code, resp = S.call("POST", "/api/v1/partners", []byte(`{"as2_id": "FILEP", "url": "https://elsewhere.example/as2"}`), "application/json")
	expect(t, "create over a file partner", code, resp, http.StatusConflict, "configuration file")
	code, resp = S.call("POST", "/api/v1/partners/FILEP/certificates", idR.CertPEM(), "application/x-pem-file")
	expect(t, "certificates of a file partner", code, resp, http.StatusConflict, "configuration file")
	code, resp = S.call("GET", "/api/v1/partners/FILEP", nil, "")
	expect(t, "file partner unchanged", code, resp, http.StatusOK, `"url": "http://127.0.0.1:1/as2"`)
}

// apiNode starts one gateway with a station, a partner and a profile in its file.
func apiNode(t *testing.T) (*node, *cmstest.Identity) {
	t.Helper()
	dir := t.TempDir()
	gw := cmstest.New(t, "GW", nil)
	cert, key := gw.WriteFiles(t, dir, "gw")
	n, _ := startConfig(t, filepath.Join(dir, "G"), "GW", fmt.Sprintf(`data_dir: %s
listen: {as2: "127.0.0.1:0", admin: "127.0.0.1:0"}
log: {format: json, level: warn}
stations: [{as2_id: GW, key: %s, cert: %s}]
partners:
  - {as2_id: FILEP, url: "http://127.0.0.1:1/as2", sign: none, encrypt: none, mdn_signed: false}
profiles:
  - {name: fileprof, headers: {X-From-File: "1"}}
`, filepath.Join(dir, "G", "data"), key, cert))
	return n, gw
}

// TestEntriesAPI drives every route that changes partners, stations and profiles, with
// their answers to bad input, unknown names, conflicts and invalid entries.
func TestEntriesAPI(t *testing.T) {
	t.Parallel()
	n, _ := apiNode(t)
	const js = "application/json"
	plain := `{"as2_id": "P1", "station": "GW", "url": "https://p1.example/as2", "sign": "none", "encrypt": "none", "mdn": "none"}`

	t.Run("unauthorized", func(t *testing.T) {
		for _, r := range []struct{ method, path string }{
			{"POST", "/api/v1/partners"}, {"PUT", "/api/v1/partners/P1"}, {"DELETE", "/api/v1/partners/P1"},
			{"POST", "/api/v1/partners/P1/certificates"}, {"POST", "/api/v1/stations"}, {"PUT", "/api/v1/stations/S"},
			{"DELETE", "/api/v1/stations/S"}, {"POST", "/api/v1/stations/S/identity"}, {"GET", "/api/v1/profiles"},
			{"POST", "/api/v1/profiles"}, {"GET", "/api/v1/profiles/x"}, {"PUT", "/api/v1/profiles/x"}, {"DELETE", "/api/v1/profiles/x"},
		} {
			code, body := n.callAs("wrong-token", r.method, r.path, []byte(plain), js)
			expect(t, r.method+" "+r.path, code, body, http.StatusUnauthorized)
		}
	})

	// Bad input: nothing is stored.
	for _, tc := range []struct{ name, body, want string }{
		{"not json", `{"as2_id": `, "not a JSON object"},
		{"not an object", `["P1"]`, "not a JSON object"},
		{"empty", ``, "empty"},
		{"no as2_id", `{"url": "https://x.example"}`, "as2_id: required"},
	} {
		code, body := n.call("POST", "/api/v1/partners", []byte(tc.body), js)
		expect(t, "create "+tc.name, code, body, http.StatusBadRequest, tc.want)
	}

	// Invalid entries: 422 with the key paths of the configuration file.
	code, body := n.call("POST", "/api/v1/partners", []byte(`{"as2_id": "BAD", "url": "ftp://bad.example", "sing": "sha256", "encrypt": "rot13"}`), js)
	expect(t, "invalid partner", code, body, http.StatusUnprocessableEntity, `"key": "partners[BAD].url"`, `"key": "partners[BAD].sing"`, `did you mean \"sign\"`, `"key": "partners[BAD].encrypt"`)
	code, body = n.call("POST", "/api/v1/partners", []byte(`{"as2_id": "NOCERT", "url": "https://x.example/as2"}`), js)
	expect(t, "partner without the certificate it needs", code, body, http.StatusUnprocessableEntity, `"key": "partners[NOCERT].certs"`)
	code, body = n.call("POST", "/api/v1/partners", []byte(`{"as2_id": "GW", "url": "https://x.example/as2", "sign": "none", "encrypt": "none", "mdn": "none"}`), js)
	expect(t, "partner named as a station", code, body, http.StatusUnprocessableEntity, "also a station's AS2 id")
	if code, body := n.call("GET", "/api/v1/partners/BAD", nil, ""); code != http.StatusNotFound {
		t.Fatalf("a refused partner was stored: %d %s", code, body)
	}

	// Create, read, conflicts.
	code, body = n.call("POST", "/api/v1/partners", []byte(plain), js)
	expect(t, "create P1", code, body, http.StatusCreated, `"as2_id": "P1"`, `"source": "database"`, `"revision": 1`)
	code, body = n.call("POST", "/api/v1/partners", []byte(plain), js)
	expect(t, "create P1 again", code, body, http.StatusConflict, "exists")
	code, body = n.call("GET", "/api/v1/partners", nil, "")
	expect(t, "list", code, body, http.StatusOK, `"as2_id": "FILEP"`, `"source": "file"`, `"as2_id": "P1"`)

	// Certificates: PEM as the body, DER and PKCS#12 in a form.
	cp := cmstest.New(t, "P1-CERT", nil)
	code, body = n.call("POST", "/api/v1/partners/P1/certificates", cp.CertPEM(), "application/x-pem-file")
	expect(t, "PEM upload", code, body, http.StatusOK, `"subject": "CN=P1-CERT,`, `"issuer": "CN=P1-CERT,`, `"serial"`, `"not_before"`, `"not_after"`, `"days_left"`, `"sha256"`, `"revision": 2`)
	var up struct {
		Certificates []api.CertificateInfo `json:"certificates"`
	}
	if err := json.Unmarshal(body, &up); err != nil || len(up.Certificates) != 1 || up.Certificates[0].DaysLeft < 3600 || len(up.Certificates[0].SHA256) != 64 {
		t.Fatalf("PEM upload answer %s: %v", body, err)
	}
	cd := cmstest.New(t, "P1-DER", nil)
	f, ct := form(t, nil, map[string][][]byte{"file": {cd.Certificate.Raw}})
	code, body = n.call("POST", "/api/v1/partners/P1/certificates", f, ct)
	expect(t, "DER upload", code, body, http.StatusOK, `"subject": "CN=P1-DER,`)
	cx := cmstest.New(t, "P1-P12", nil)
	p12, err := pkcs12.Modern.Encode(cx.Key, cx.Certificate, nil, "p12-secret")
	if err != nil {
		t.Fatal(err)
	}
	f, ct = form(t, map[string]string{"password": "p12-secret"}, map[string][][]byte{"file": {p12}})
	code, body = n.call("POST", "/api/v1/partners/P1/certificates", f, ct)
	expect(t, "PKCS#12 upload", code, body, http.StatusOK, `"subject": "CN=P1-P12,`, `"revision": 4`)
	if strings.Contains(string(body), "p12-secret") || strings.Contains(string(body), "PRIVATE") {
		t.Fatalf("an answer shows a secret: %s", body)
	}
	f, ct = form(t, map[string]string{"password": "wrong"}, map[string][][]byte{"file": {p12}})
	code, body = n.call("POST", "/api/v1/partners/P1/certificates", f, ct)
	expect(t, "PKCS#12 with a wrong password", code, body, http.StatusBadRequest, "password")
	code, body = n.call("POST", "/api/v1/partners/P1/certificates", []byte("not a certificate"), "application/octet-stream")
	expect(t, "garbage upload", code, body, http.StatusBadRequest, "not PEM, DER or PKCS#12")
	code, body = n.call("POST", "/api/v1/partners/NOPE/certificates", cp.CertPEM(), "application/x-pem-file")
	expect(t, "certificates of an unknown partner", code, body, http.StatusNotFound)
	code, body = n.call("GET", "/api/v1/partners/P1", nil, "")
	expect(t, "P1 with three certificates", code, body, http.StatusOK, "CN=P1-CERT", "CN=P1-DER", "CN=P1-P12", `"revision": 4`)
	managed := filepath.Join(n.cfg.DataDir, "managed", "partners", "P1")
	entries, err := os.ReadDir(managed)
	if err != nil || len(entries) != 3 {
		t.Fatalf("materialised files of P1: %v, %v", entries, err)
	}
	for _, e := range entries {
		if fi, _ := e.Info(); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
	}

	// Updates: revisions, names, unknown entries.
	upd := `{"station": "GW", "url": "https://p1-new.example/as2", "sign": "none", "encrypt": "none", "mdn": "none"}`
	code, body = n.call("PUT", "/api/v1/partners/P1", []byte(upd), js, "If-Match", `"1"`)
	expect(t, "stale revision", code, body, http.StatusConflict, "revision 4, not 1")
	code, body = n.call("PUT", "/api/v1/partners/P1", []byte(upd), js, "If-Match", "four")
	expect(t, "unreadable If-Match", code, body, http.StatusBadRequest, "If-Match")
	code, body = n.call("PUT", "/api/v1/partners/P1", []byte(`{"as2_id": "P2", "url": "https://x.example"}`), js)
	expect(t, "rename through PUT", code, body, http.StatusBadRequest, "renamed")
	code, body = n.call("PUT", "/api/v1/partners/P1", []byte(`{"station": "GW", "url": "not a url"}`), js)
	expect(t, "invalid update", code, body, http.StatusUnprocessableEntity, "partners[P1].url")
	code, body = n.call("PUT", "/api/v1/partners/P1", []byte(upd), js, "If-Match", `"4"`)
	expect(t, "update keeping the certificates", code, body, http.StatusOK, `"url": "https://p1-new.example/as2"`, `"revision": 5`, "CN=P1-CERT", "CN=P1-DER", "CN=P1-P12")
	dropCerts := strings.Replace(upd, `"mdn": "none"`, `"mdn": "none", "certs": []`, 1)
	code, body = n.call("PUT", "/api/v1/partners/P1", []byte(dropCerts), js, "If-Match", `"5"`)
	expect(t, "update dropping the certificates", code, body, http.StatusOK, `"revision": 6`, `"certificates": []`)
	if entries, _ := os.ReadDir(managed); len(entries) != 0 {
		t.Errorf("certificates the new document does not name are still kept: %v", entries)
	}
	code, body = n.call("PUT", "/api/v1/partners/NOPE", []byte(upd), js)
	expect(t, "update unknown", code, body, http.StatusNotFound)
	code, body = n.call("DELETE", "/api/v1/partners/NOPE", nil, "")
	expect(t, "delete unknown", code, body, http.StatusNotFound)

	// Stations: identity from PKCS#12 creates one, PEM cert and key replace it.
	sid := cmstest.New(t, "ST2", nil)
	sp12, err := pkcs12.Modern.Encode(sid.Key, sid.Certificate, nil, "station-secret")
	if err != nil {
		t.Fatal(err)
	}
	f, ct = form(t, map[string]string{"password": "station-secret"}, map[string][][]byte{"pkcs12": {sp12}})
	code, body = n.call("POST", "/api/v1/stations/ST2/identity", f, ct)
	expect(t, "identity creates ST2", code, body, http.StatusCreated, `"use": "signing"`, `"subject": "CN=ST2,`)
	if strings.Contains(string(body), "station-secret") || strings.Contains(string(body), "PRIVATE") {
		t.Fatalf("the identity answer shows a secret: %s", body)
	}
	f, ct = form(t, nil, map[string][][]byte{"cert": {sid.CertPEM()}, "key": {sid.KeyPEM()}})
	code, body = n.call("POST", "/api/v1/stations/ST2/identity", f, ct)
	expect(t, "PEM identity", code, body, http.StatusOK, `"subject": "CN=ST2,`)
	other := cmstest.New(t, "OTHER", nil)
	f, ct = form(t, nil, map[string][][]byte{"cert": {other.CertPEM()}, "key": {sid.KeyPEM()}})
	code, body = n.call("POST", "/api/v1/stations/ST2/identity", f, ct)
	if other.Key.Equal(sid.Key) {
		t.Log("the test keys are shared; the mismatch case is skipped")
	} else {
		expect(t, "mismatched identity", code, body, http.StatusBadRequest, "does not belong")
	}
	f, ct = form(t, nil, map[string][][]byte{"key": {[]byte("garbage")}})
	code, body = n.call("POST", "/api/v1/stations/ST2/identity", f, ct)
	expect(t, "garbage identity", code, body, http.StatusBadRequest, "key")
	f, ct = form(t, nil, nil)
	code, body = n.call("POST", "/api/v1/stations/ST2/identity", f, ct)
	expect(t, "no identity", code, body, http.StatusBadRequest, "no identity")
	f, ct = form(t, nil, map[string][][]byte{"cert": {sid.CertPEM()}, "key": {sid.KeyPEM()}})
	code, body = n.call("POST", "/api/v1/stations/GW/identity", f, ct)
	expect(t, "identity of a file station", code, body, http.StatusConflict, "configuration file")
	code, body = n.call("GET", "/api/v1/stations/ST2", nil, "")
	expect(t, "ST2", code, body, http.StatusOK, `"source": "database"`, `"revision": 2`)
	code, body = n.call("POST", "/api/v1/stations", []byte(`{"as2_id": "ST3"}`), js)
	expect(t, "station without a key", code, body, http.StatusUnprocessableEntity, `"key": "stations[ST3].key"`)
	code, body = n.call("PUT", "/api/v1/stations/GW", []byte(`{"key": "x"}`), js)
	expect(t, "change a file station", code, body, http.StatusConflict, "configuration file")
	code, body = n.call("POST", "/api/v1/partners", []byte(`{"as2_id": "P2", "station": "ST2", "url": "https://p2.example/as2", "sign": "none", "encrypt": "none", "mdn": "none"}`), js)
	expect(t, "partner of ST2", code, body, http.StatusCreated, `"station": "ST2"`)
	code, body = n.call("DELETE", "/api/v1/stations/ST2", nil, "")
	expect(t, "delete a station in use", code, body, http.StatusConflict, "P2")
	code, body = n.call("DELETE", "/api/v1/partners/P2", nil, "", "If-Match", `"1"`)
	expect(t, "delete P2", code, body, http.StatusNoContent)
	code, body = n.call("DELETE", "/api/v1/stations/ST2", nil, "")
	expect(t, "delete ST2", code, body, http.StatusNoContent)
	if _, err := os.Stat(filepath.Join(n.cfg.DataDir, "managed", "stations", "ST2")); !os.IsNotExist(err) {
		t.Errorf("the files of a deleted station stay: %v", err)
	}

	// Profiles.
	code, body = n.call("POST", "/api/v1/profiles", []byte(`{"name": "invoices", "headers": {"X-Biz-Type": "invoice"}}`), js)
	expect(t, "create profile", code, body, http.StatusCreated, `"name": "invoices"`, `"X-Biz-Type"`, `"source": "database"`)
	if strings.Contains(string(body), `"invoice"`) {
		t.Errorf("a profile's header value is shown: %s", body)
	}
	code, body = n.call("GET", "/api/v1/profiles", nil, "")
	expect(t, "list profiles", code, body, http.StatusOK, `"name": "fileprof"`, `"source": "file"`, `"name": "invoices"`)
	code, body = n.call("PUT", "/api/v1/profiles/invoices", []byte(`{"headers": {"X-Biz-Type": "order", "X-More": "1"}}`), js)
	expect(t, "update profile", code, body, http.StatusOK, `"X-More"`, `"revision": 2`)
	code, body = n.call("PUT", "/api/v1/profiles/invoices", []byte(`{"headers": {"Content-Type": "text/plain"}}`), js)
	expect(t, "profile with a reserved header", code, body, http.StatusUnprocessableEntity, "profiles[invoices].headers.Content-Type")
	code, body = n.call("PUT", "/api/v1/profiles/fileprof", []byte(`{"headers": {"X-A": "b"}}`), js)
	expect(t, "change a file profile", code, body, http.StatusConflict, "configuration file")
	code, body = n.call("DELETE", "/api/v1/profiles/invoices", nil, "")
	expect(t, "delete profile", code, body, http.StatusNoContent)
	code, body = n.call("GET", "/api/v1/profiles/invoices", nil, "")
	expect(t, "deleted profile", code, body, http.StatusNotFound)

	// Every change is on the timeline.
	code, body = n.call("GET", "/api/v1/timeline?partner=P1", nil, "")
	expect(t, "timeline", code, body, http.StatusOK, "config_created", "config_updated")
}

// TestEntriesOtherNode shows a change made on one node reaching another that shares the
// database, through the change counter it polls.
func TestEntriesOtherNode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gw := cmstest.New(t, "GW", nil)
	cert, key := gw.WriteFiles(t, dir, "gw")
	db := filepath.Join(dir, "shared.db")
	nodes := make([]*managedEntries, 2)
	for i := range nodes {
		path := filepath.Join(dir, fmt.Sprintf("node%d.yaml", i))
		os.WriteFile(path, []byte(fmt.Sprintf("data_dir: %s\nstations: [{as2_id: GW, key: %s, cert: %s}]\n", filepath.Join(dir, fmt.Sprint("data", i)), key, cert)), 0o600)
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		st, err := sqlite.Open(t.Context(), db)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		nodes[i] = newManagedEntries(cfg, st, newPartners(cfg, t.TempDir(), nil), slog.New(slog.DiscardHandler), nil)
		if err := nodes[i].load(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	a, b := nodes[0], nodes[1]
	var applied []*config.Config
	b.applied = func(c *config.Config) { applied = append(applied, c) }
	doc := []byte(`{"as2_id": "P", "url": "https://p.example/as2", "sign": "none", "encrypt": "none", "mdn": "none"}`)
	if _, err := a.Put(t.Context(), api.EntryChange{Kind: store.EntryPartner, Name: "P", Document: doc, Create: true}); err != nil {
		t.Fatal(err)
	}
	if a.reg.current().cfg.Partner("P") == nil {
		t.Fatal("the node that made the change does not have it in effect")
	}
	if b.reg.current().cfg.Partner("P") != nil {
		t.Fatal("the other node has the change before it polled")
	}
	ticks := make(chan time.Time)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); b.poll(ctx, ticks) }()
	ticks <- time.Time{}
	ticks <- time.Time{} // taken only once the first tick's reload is done
	if p := b.reg.current().cfg.Partner("P"); p == nil || p.URL != "https://p.example/as2" {
		t.Fatalf("the other node after a poll: %+v", p)
	}
	if len(applied) != 1 {
		t.Errorf("applied %d times, want once", len(applied))
	}
	ticks <- time.Time{}
	if len(applied) != 1 {
		t.Errorf("a poll without a change reloaded")
	}
	if err := a.Delete(t.Context(), store.EntryPartner, "P", 0); err != nil {
		t.Fatal(err)
	}
	ticks <- time.Time{}
	ticks <- time.Time{}
	cancel()
	<-done
	if b.reg.current().cfg.Partner("P") != nil {
		t.Error("the other node still has the deleted partner")
	}
}

// TestEntriesExpiryWatch shows a certificate uploaded at run time reaching the expiry
// watch, which is woken to check it at once.
func TestEntriesExpiryWatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gw := cmstest.New(t, "GW", nil)
	cert, key := gw.WriteFiles(t, dir, "gw")
	path := filepath.Join(dir, "as2gate.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf("data_dir: %s\nstations: [{as2_id: GW, key: %s, cert: %s}]\n", filepath.Join(dir, "data"), key, cert)), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(t.Context(), filepath.Join(dir, "as2gate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &expiryWatch{certs: cfg.Certificates(), changed: make(chan struct{}, 1)}
	m := newManagedEntries(cfg, st, newPartners(cfg, t.TempDir(), nil), slog.New(slog.DiscardHandler), func(c *config.Config) { w.setCertificates(c.Certificates()) })
	if err := m.load(t.Context()); err != nil {
		t.Fatal(err)
	}
	<-w.changed
	pc := cmstest.New(t, "EXPIRING", nil)
	doc := []byte(`{"as2_id": "P", "url": "https://p.example/as2"}`)
	if _, err := m.Put(t.Context(), api.EntryChange{Kind: store.EntryPartner, Name: "P", Document: doc, Certificates: [][]byte{pc.CertPEM()}, Create: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.changed:
	default:
		t.Fatal("the expiry watch was not woken by the change")
	}
	var found bool
	for _, nc := range w.certList() {
		found = found || nc.Owner == "partner P" && nc.Certificate.Equal(pc.Certificate)
	}
	if !found {
		t.Errorf("the watched certificates lack the new partner's: %+v", w.certList())
	}

	// After a restart the entries kept in the database are watched from the start, before
	// any change.
	w2 := &expiryWatch{certs: cfg.Certificates(), changed: make(chan struct{}, 1)}
	m2 := newManagedEntries(cfg, st, newPartners(cfg, t.TempDir(), nil), slog.New(slog.DiscardHandler), func(c *config.Config) { w2.setCertificates(c.Certificates()) })
	if err := m2.load(t.Context()); err != nil {
		t.Fatal(err)
	}
	found = false
	for _, nc := range w2.certList() {
		found = found || nc.Owner == "partner P" && nc.Certificate.Equal(pc.Certificate)
	}
	if !found {
		t.Errorf("after a restart the watched certificates lack the stored partner's: %+v", w2.certList())
	}
}

// TestRegistryKeepsClients shows which partners keep their HTTP clients (and pooled
// connections) when the configuration is swapped: those whose agreement did not change.
func TestRegistryKeepsClients(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gw := cmstest.New(t, "GW", nil)
	cert, key := gw.WriteFiles(t, dir, "gw")
	path := filepath.Join(dir, "as2gate.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf("data_dir: %s\nstations: [{as2_id: GW, key: %s, cert: %s}]\n"+
		"partners: [{as2_id: FILEP, url: \"https://f.example/as2\", sign: none, encrypt: none, mdn: none}]\n", filepath.Join(dir, "data"), key, cert)), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	entry := func(url string) config.Entry {
		return config.Entry{Kind: config.EntryPartner, Name: "DBP", Document: []byte("url: " + url + "\nsign: none\nencrypt: none\nmdn: none\n")}
	}
	c1, err := cfg.WithEntries([]config.Entry{entry("https://a.example/as2")})
	if err != nil {
		t.Fatal(err)
	}
	p := newPartners(cfg, t.TempDir(), nil)
	p.swap(c1, map[string]revision{"partner/DBP": {N: 1, Written: time.Unix(1, 0)}})
	r1 := p.current()
	c2, err := cfg.WithEntries([]config.Entry{entry("https://b.example/as2")})
	if err != nil {
		t.Fatal(err)
	}
	p.swap(c2, map[string]revision{"partner/DBP": {N: 2, Written: time.Unix(2, 0)}})
	r2 := p.current()
	if r2.clients["FILEP"] != r1.clients["FILEP"] {
		t.Error("a file partner got a new client although nothing changed")
	}
	if r2.clients["DBP"] == r1.clients["DBP"] || r2.clients["DBP"] == nil {
		t.Error("a partner at a new revision kept its old client")
	}
	if route, err := p.Route(t.Context(), "DBP"); err != nil || route.URL != "https://b.example/as2" {
		t.Errorf("route after the swap: %+v, %v", route, err)
	}
	p.swap(c2, map[string]revision{"partner/DBP": {N: 2, Written: time.Unix(2, 0)}})
	if p.current().clients["DBP"] != r2.clients["DBP"] {
		t.Error("the same revision got a new client")
	}
	// Removed and added again on another node between two polls: revision 2 again, but a
	// later write, so the clients are built anew.
	p.swap(c2, map[string]revision{"partner/DBP": {N: 2, Written: time.Unix(3, 0)}})
	if p.current().clients["DBP"] == r2.clients["DBP"] {
		t.Error("an entry written again at the same revision number kept its old client")
	}
	p.swap(cfg, map[string]revision{})
	if _, err := p.Route(t.Context(), "DBP"); err == nil {
		t.Error("a removed partner still routes")
	}
}

// TestEntriesInvalidAtStart shows a start refused, with the entry's key path, when the
// file no longer fits an entry kept in the database.
func TestEntriesInvalidAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gw := cmstest.New(t, "GW", nil)
	cert, key := gw.WriteFiles(t, dir, "gw")
	data := filepath.Join(dir, "data")
	os.MkdirAll(data, 0o750)
	st, err := sqlite.Open(t.Context(), filepath.Join(data, "as2gate.db"))
	if err != nil {
		t.Fatal(err)
	}
	err = st.CreateConfigEntry(t.Context(), &store.ConfigEntry{Kind: store.EntryPartner, Name: "ORPHAN",
		Document: "as2_id: ORPHAN\nstation: GONE\nurl: https://o.example/as2\nsign: none\nencrypt: none\nmdn: none\n"})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "as2gate.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf("data_dir: %s\nlisten: {as2: \"127.0.0.1:0\", admin: \"127.0.0.1:0\"}\nstations: [{as2_id: GW, key: %s, cert: %s}]\n", data, key, cert)), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	gwy, err := Open(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err == nil {
		gwy.Close()
		t.Fatal("the gateway started with an entry its file makes invalid")
	}
	if !strings.Contains(err.Error(), `partners[ORPHAN].station: "GONE" is not a station's AS2 id`) {
		t.Errorf("start refused with %v", err)
	}
}

// TestEntriesMaterial shows that an entry kept in the database names only files uploaded
// with it: a path on the gateway's host is refused, and a password file sent in the form's
// material field is used on the wire.
func TestEntriesMaterial(t *testing.T) {
	t.Parallel()
	n, _ := apiNode(t)
	auth := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case auth <- r.Header.Get("Authorization"):
		default:
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	hostPath := `{"as2_id": "P9", "station": "GW", "url": "https://p9.example/as2", "sign": "none", "encrypt": "none", "mdn": "none", "auth": {"bearer_file": "/etc/hostname"}}`
	code, body := n.call("POST", "/api/v1/partners", []byte(hostPath), "application/json")
	expect(t, "an entry naming a host file", code, body, http.StatusUnprocessableEntity, "names only files uploaded with it")

	entry := fmt.Sprintf(`{"as2_id": "P9", "station": "GW", "url": "%s/as2", "sign": "none", "encrypt": "none", "mdn": "none", "auth": {"bearer_file": "p9.token"}}`, srv.URL)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("entry", entry)
	fw, _ := mw.CreateFormFile("material", "p9.token")
	fw.Write([]byte("s3cret-token\n"))
	mw.Close()
	code, body = n.call("POST", "/api/v1/partners", buf.Bytes(), mw.FormDataContentType())
	expect(t, "an entry with its password file", code, body, http.StatusCreated, `"source": "database"`)
	if strings.Contains(string(body), "s3cret") {
		t.Fatalf("the answer shows the token: %s", body)
	}

	s := n.submit("P9", map[string][]byte{"a.txt": []byte("hello")})
	if got := n.await(s.ID, "sent", "failed"); got.State != "sent" {
		t.Fatalf("message to P9: %+v", got)
	}
	if got := <-auth; got != "Bearer s3cret-token" {
		t.Fatalf("Authorization on the wire: %q", got)
	}
}
