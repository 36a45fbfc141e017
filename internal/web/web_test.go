package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/as2gate/as2gate/internal/outbound"
	"github.com/as2gate/as2gate/internal/payload"
	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/sqlite"
)

// fixture is a console on a real sqlite store with one admin, "ops" / "secret-password".
// Its clock is the real one moved on by skew, so that a test can let sessions age without
// waiting.
type fixture struct {
	t        *testing.T
	store    *sqlite.Store
	payloads *payload.Dir
	actions  Actions
	srv      *httptest.Server
	skew     atomic.Int64
}

func (f *fixture) now() time.Time { return time.Now().Add(time.Duration(f.skew.Load())) }

// advance moves the fixture's clock on by d.
func (f *fixture) advance(d time.Duration) { f.skew.Add(int64(d)) }

// console returns a new console on the fixture's store, as a restarted gateway has.
func (f *fixture) console() *Console {
	f.t.Helper()
	c, err := New(Config{Store: f.store, Payloads: f.payloads, Actions: f.actions, NowFunc: f.now})
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

const (
	testUser     = "ops"
	testPassword = "secret-password"
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, dir+"/as2gate.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	pl, err := payload.OpenDir(dir + "/payloads")
	if err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(ctx, &store.User{Name: testUser, Role: store.RoleAdmin, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	w, err := outbound.New(outbound.Config{Store: st, Payloads: pl, Partners: offline{}, Owner: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, store: st, payloads: pl, actions: outbound.NewActions(w, offline{})}
	f.srv = httptest.NewServer(f.console().Handler())
	t.Cleanup(f.srv.Close)
	return f
}

// client returns a browser-like client: it keeps cookies and does not follow redirects,
// so that a test sees where each answer points.
func (f *fixture) client() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// post sends a form as a same-origin browser does.
func (f *fixture) post(c *http.Client, path string, form url.Values) *http.Response {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", f.srv.URL)
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp
}

func (f *fixture) get(c *http.Client, path string) (*http.Response, string) {
	f.t.Helper()
	resp, err := c.Get(f.srv.URL + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp, string(body)
}

// signIn returns a client with a session of the fixture's admin.
func (f *fixture) signIn() *http.Client {
	f.t.Helper()
	return f.signInAs(testUser, testPassword)
}

// signInAs returns a client with a session of name.
func (f *fixture) signInAs(name, password string) *http.Client {
	f.t.Helper()
	c := f.client()
	resp := f.post(c, "/login", url.Values{"name": {name}, "password": {password}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		f.t.Fatalf("sign-in of %s: status %d, want 303", name, resp.StatusCode)
	}
	return c
}

// addUser creates a user with role; its password is its name followed by "-password".
func (f *fixture) addUser(name, role string) string {
	f.t.Helper()
	pw := name + "-password"
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.store.CreateUser(context.Background(), &store.User{Name: name, Role: role, PasswordHash: hash}); err != nil {
		f.t.Fatal(err)
	}
	return pw
}

// body reads and closes an answer's body.
func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (f *fixture) create(m *store.Message) *store.Message {
	f.t.Helper()
	if err := f.store.CreateMessage(context.Background(), m, nil); err != nil {
		f.t.Fatal(err)
	}
	return m
}

func outboundMessage(subject string) *store.Message {
	return &store.Message{
		Direction: store.Outbound, Kind: store.KindMessage, MessageID: "<" + subject + "-" + time.Now().Format("150405.000000000") + "@test>",
		Station: "GATEWAY", Partner: "PARTNER", Subject: subject, State: store.StateQueued, MDNMode: "sync",
		URL: "http://127.0.0.1:1/as2", NextAttemptAt: time.Now(),
	}
}

// sessionCookieOf returns the session cookie an answer sets, or nil.
func sessionCookieOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	return nil
}

// offline is the send worker's view of the partners: it knows the route to PARTNER but
// cannot send; the worker never runs here, the actions only change the queue.
type offline struct{}

func (offline) Partner(ctx context.Context, station, partner string) (*outbound.Partner, error) {
	return nil, errors.New("offline")
}

func (offline) MDNClient(ctx context.Context, station, partner string) (*http.Client, error) {
	return nil, errors.New("offline")
}

func (offline) Route(ctx context.Context, partner string) (*outbound.Route, error) {
	if partner != "PARTNER" {
		return nil, fmt.Errorf("no partner %s", partner)
	}
	return &outbound.Route{Station: "GATEWAY", URL: "http://127.0.0.1:1/as2", MessageIDDomain: "gw.example"}, nil
}

func itoa(n int64) string { return fmt.Sprint(n) }
