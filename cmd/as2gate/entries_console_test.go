package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/as2gate/as2gate/cms/cmstest"
)

// consoleClient is a signed-in browser of a node's console that does not follow redirects.
type consoleClient struct {
	t    *testing.T
	base string
	c    *http.Client
}

func signInConsole(t *testing.T, n *node) *consoleClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	cc := &consoleClient{t: t, base: "http://" + n.gw.AdminAddr().String(), c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	resp, err := cc.c.PostForm(cc.base+"/login", url.Values{"name": {"admin"}, "password": {n.gw.AdminPassword()}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	return cc
}

func (cc *consoleClient) do(req *http.Request) (int, string, string) {
	cc.t.Helper()
	resp, err := cc.c.Do(req)
	if err != nil {
		cc.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header.Get("Location")
}

func (cc *consoleClient) get(path string) (int, string) {
	cc.t.Helper()
	req, _ := http.NewRequest("GET", cc.base+path, nil)
	code, body, _ := cc.do(req)
	return code, body
}

func (cc *consoleClient) post(path string, fields map[string]string, files map[string][][]byte) (int, string, string) {
	cc.t.Helper()
	body, ct := form(cc.t, fields, files)
	req, _ := http.NewRequest("POST", cc.base+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", ct)
	return cc.do(req)
}

func has(t *testing.T, what, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Fatalf("%s: %q is missing:\n%s", what, w, body)
		}
	}
}

// TestConsoleEntries adds, edits and deletes a partner, a station and a send profile from
// the console of a running gateway, uploads certificates, and finds the file's entries
// read-only.
func TestConsoleEntries(t *testing.T) {
	t.Parallel()
	n, _ := apiNode(t)
	cc := signInConsole(t, n)

	code, body := cc.get("/partners")
	if code != http.StatusOK {
		t.Fatalf("partners page: %d", code)
	}
	has(t, "partners page", body, `href="/partners/new"`, `href="/stations/new"`, "FILEP", "from the configuration file (read-only here)")
	if strings.Contains(body, `/partners/FILEP/edit`) || strings.Contains(body, `/partners/FILEP/delete`) {
		t.Fatal("a file partner can be edited from the console")
	}
	code, body = cc.get("/partners/new")
	if code != http.StatusOK {
		t.Fatalf("new partner form: %d", code)
	}
	has(t, "new partner form", body, `name="as2_id"`, `<option>GW</option>`, `name="cert"`, `<option selected>sha256</option>`)

	// A partner with its certificate from the form.
	pc := cmstest.New(t, "CONSOLE-P", nil)
	code, body, loc := cc.post("/partners", map[string]string{"as2_id": "CP", "url": "https://cp.example/as2", "station": "GW",
		"sign": "sha256", "encrypt": "aes128-gcm", "mdn": "sync"}, map[string][][]byte{"cert": {pc.CertPEM()}})
	if code != http.StatusSeeOther || loc != "/partners?saved=CP" {
		t.Fatalf("add partner: %d %s %s", code, loc, body)
	}
	code, body = cc.get(loc)
	has(t, "partners after the add", body, "CP saved: in effect now", "https://cp.example/as2", "encrypt aes128-gcm", "CN=CONSOLE-P", "days left",
		"added at run time", `href="/partners/CP/edit"`, `action="/partners/CP/delete"`, `action="/partners/CP/certificates"`)

	// Problems come back on the form with their key paths.
	code, body, _ = cc.post("/partners", map[string]string{"as2_id": "BAD", "url": "ftp://bad", "station": "GW", "sign": "none", "encrypt": "none", "mdn": "none"}, nil)
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("invalid partner: %d", code)
	}
	has(t, "invalid partner", body, "Not saved", "partners[BAD].url: &#34;ftp://bad&#34; is not an absolute", `value="BAD"`)
	code, body, _ = cc.post("/partners", map[string]string{"as2_id": "FILEP", "url": "https://x.example/as2"}, nil)
	if code != http.StatusConflict || !strings.Contains(body, "managed in the configuration file") {
		t.Fatalf("partner over a file partner: %d\n%s", code, body)
	}

	// Another certificate, then the edit form with the document.
	pc2 := cmstest.New(t, "CONSOLE-P2", nil)
	code, _, loc = cc.post("/partners/CP/certificates", map[string]string{"revision": "1"}, map[string][][]byte{"cert": {pc2.Certificate.Raw}})
	if code != http.StatusSeeOther {
		t.Fatalf("certificate upload: %d", code)
	}
	_, body = cc.get("/partners")
	has(t, "partners after the upload", body, "CN=CONSOLE-P2")
	code, body = cc.get("/partners/CP/edit")
	if code != http.StatusOK {
		t.Fatalf("edit form: %d", code)
	}
	has(t, "edit form", body, "as2_id: CP", "encrypt: aes128-gcm", "certs:", `name="revision" value="2"`)
	doc := regexp.MustCompile(`(?s)<textarea[^>]*>(.*?)</textarea>`).FindStringSubmatch(body)
	if doc == nil {
		t.Fatal("no document on the edit form")
	}
	edited := strings.Replace(htmlUnescape(doc[1]), "https://cp.example/as2", "https://cp2.example/as2", 1)
	code, body, _ = cc.post("/partners/CP", map[string]string{"revision": "1", "document": edited}, nil)
	if code != http.StatusConflict {
		t.Fatalf("edit from a stale revision: %d %s", code, body)
	}
	code, body, _ = cc.post("/partners/CP", map[string]string{"revision": "2", "document": edited + "sing: sha1\n"}, nil)
	if code != http.StatusUnprocessableEntity {
		t.Fatalf("edit with an unknown key: %d", code)
	}
	has(t, "edit with an unknown key", body, "partners[CP].sing: unknown key")
	code, _, loc = cc.post("/partners/CP", map[string]string{"revision": "2", "document": edited}, nil)
	if code != http.StatusSeeOther {
		t.Fatalf("edit: %d", code)
	}
	_, body = cc.get(loc)
	has(t, "partners after the edit", body, "https://cp2.example/as2", "CN=CONSOLE-P2")
	if code, _ := cc.get("/partners/FILEP/edit"); code != http.StatusConflict {
		t.Fatalf("edit form of a file partner: %d", code)
	}

	// A station from a PKCS#12 file, then deleted.
	st := cmstest.New(t, "CST", nil)
	p12, err := pkcs12.Modern.Encode(st.Key, st.Certificate, nil, "pw")
	if err != nil {
		t.Fatal(err)
	}
	code, body, _ = cc.post("/stations", map[string]string{"as2_id": "CST", "password": "pw"}, map[string][][]byte{"pkcs12": {p12}})
	if code != http.StatusSeeOther {
		t.Fatalf("add station: %d %s", code, body)
	}
	_, body = cc.get("/partners")
	has(t, "partners with the station", body, "CN=CST", `action="/stations/CST/identity"`, `action="/stations/CST/delete"`)
	code, body, _ = cc.post("/stations/CST/identity", nil, map[string][][]byte{"key": {[]byte("not a key")}})
	if code != http.StatusBadRequest || !strings.Contains(body, "key") {
		t.Fatalf("bad identity: %d %s", code, body)
	}
	if code, _, _ := cc.post("/stations/CST/delete", map[string]string{"revision": "1"}, nil); code != http.StatusSeeOther {
		t.Fatalf("delete station: %d", code)
	}

	// Send profiles.
	code, body = cc.get("/profiles")
	has(t, "profiles page", body, "fileprof", "X-From-File", `href="/profiles/new"`)
	code, body, loc = cc.post("/profiles", map[string]string{"name": "orders", "headers": "X-Biz-Type: order\r\nX-Route: 7"}, nil)
	if code != http.StatusSeeOther {
		t.Fatalf("add profile: %d %s", code, body)
	}
	_, body = cc.get(loc)
	has(t, "profiles after the add", body, "orders", "X-Biz-Type, X-Route", `action="/profiles/orders/delete"`)
	code, body, _ = cc.post("/profiles", map[string]string{"name": "broken", "headers": "no colon here"}, nil)
	if code != http.StatusBadRequest || !strings.Contains(body, "is not Name: value") {
		t.Fatalf("profile with a bad header line: %d %s", code, body)
	}
	if code, _, _ := cc.post("/profiles/orders/delete", map[string]string{"revision": "1"}, nil); code != http.StatusSeeOther {
		t.Fatalf("delete profile: %d", code)
	}
	if code, _, _ := cc.post("/partners/CP/delete", map[string]string{"revision": "3"}, nil); code != http.StatusSeeOther {
		t.Fatalf("delete partner: %d", code)
	}
	_, body = cc.get("/partners")
	if strings.Contains(body, "cp2.example") {
		t.Fatal("the deleted partner is still listed")
	}
	if code, _, _ := cc.post("/partners/FILEP/delete", nil, nil); code != http.StatusConflict {
		t.Fatalf("delete a file partner: %d", code)
	}

	// A form from another site is refused.
	req, _ := http.NewRequest("POST", cc.base+"/partners/CP/delete", strings.NewReader("revision=1"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if code, _, _ := cc.do(req); code != http.StatusForbidden {
		t.Fatalf("cross-origin delete: %d", code)
	}
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}
