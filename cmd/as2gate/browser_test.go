package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/as2gate/as2gate/internal/web"
)

// chromiumPath finds Debian's Chromium. Outside CI a missing browser skips the test; in CI
// (CI=true) it fails it, since scripts/testdeps.sh installs it there.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (scripts/testdeps.sh installs it)")
	}
	t.Skip("chromium is not installed; run scripts/testdeps.sh")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile and returns a tab that ends, with
// the browser, after limit or when the test ends.
func newBrowser(t *testing.T, limit time.Duration) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // containers and CI runners have no user namespaces
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	}
	// The whole run, browser start included, is bounded: a hung browser fails the test
	// instead of stalling the package.
	limited, cancelLimit := context.WithTimeout(context.Background(), limit)
	actx, cancelAlloc := chromedp.NewExecAllocator(limited, opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancelLimit()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// screenshotDir is where the pages visited are kept as PNG files: the test's artifact
// directory, which `go test -artifacts` keeps under the output folder.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.ArtifactDir(), "screenshots")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	return dir
}

// console drives the web console of one gateway in a browser tab.
type console struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
	n     int
}

// do runs browser steps, failing the test with what was being done.
func (c *console) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	if err := chromedp.Do(c.ctx, steps...); err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
}

// open loads a page of the console and waits until sel is shown.
func (c *console) open(path, sel string) {
	c.t.Helper()
	c.do("open "+path, chromedp.Navigate(c.base+path), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// text returns the visible text of the first element matching sel.
func (c *console) text(sel string) string {
	c.t.Helper()
	s, err := chromedp.Run(c.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		c.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// eval returns the value of a JavaScript expression on the current page.
func eval[T any](c *console, expr string) T {
	c.t.Helper()
	v, err := chromedp.Run(c.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		c.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// submitForm clicks a form's button and waits until the page it leads to has loaded: one
// whose address satisfies the JavaScript condition arrived.
func (c *console) submitForm(button, arrived string) {
	c.t.Helper()
	c.do("click "+button, chromedp.Click(chromedp.CSS(button)))
	cond := arrived + ` && document.readyState === "complete"`
	// The old page answers until the new one replaces it, and an evaluation that straddles
	// the switch fails; both just mean not yet.
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, err := chromedp.Run(c.ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return
		}
		if c.ctx.Err() != nil || time.Now().After(deadline) {
			c.t.Fatalf("after clicking %s, %s never held (last error: %v)", button, cond, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// shot saves a full-page PNG of the current page under a numbered name.
func (c *console) shot(name string) {
	c.t.Helper()
	png, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.t.Fatalf("screenshot %s: %v", name, err)
	}
	c.n++
	path := filepath.Join(c.shots, fmt.Sprintf("%02d-%s.png", c.n, name))
	if err := os.WriteFile(path, png, 0o600); err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("screenshot %s", path)
}

// until reloads path until the JavaScript condition holds on it, for at most 20 seconds.
func (c *console) until(path, sel, cond string) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.open(path, sel)
		if eval[bool](c, cond) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: %s never held; the page reads:\n%s", path, cond, c.text("main"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestBrowserConsole is an operator's session in a real browser: sign in, send a file from
// the compose page, watch the message reach the Sent box and read its MDN, then watch one to an unreachable partner wait in
// Queued with the failed attempt and what to do about it, stop it, and retry it once the
// partner is back. Every page visited is kept as a screenshot.
func TestBrowserConsole(t *testing.T) {
	t.Parallel()
	ctx := newBrowser(t, 60*time.Second)
	A, B := startPair(t, actionsAgreement)
	c := &console{t: t, ctx: ctx, base: "http://" + A.gw.AdminAddr().String(), shots: screenshotDir(t)}

	// Any page leads to the sign-in form first.
	c.open("/", "form.login")
	c.shot("login")
	c.do("sign in",
		chromedp.SendKeys(chromedp.CSS("#name"), web.FirstAdmin),
		chromedp.SendKeys(chromedp.CSS("#password"), A.gw.AdminPassword()))
	c.submitForm(`form.login button[type="submit"]`, `location.pathname === "/messages"`)
	if h := c.text("h1"); h != "Outbox" {
		t.Fatalf("after signing in the page is %q, want the Outbox", h)
	}
	c.shot("outbox")

	// The first message goes out through the compose form.
	edi := []byte("ISA*00*          *00*          *ZZ*GWA*ZZ*GWB~\nIEA*1*000000001~\n")
	upload := filepath.Join(t.TempDir(), "po-850.edi")
	if err := os.WriteFile(upload, edi, 0o600); err != nil {
		t.Fatal(err)
	}
	c.do("open the compose form", chromedp.Click(chromedp.CSS(`nav a[href="/compose"]`)), chromedp.WaitVisible(chromedp.CSS("form.compose")))
	c.do("fill in the compose form",
		chromedp.SetValue(chromedp.CSS("#partner"), "GW-B"),
		chromedp.SendKeys(chromedp.CSS("#subject"), "Purchase order 850"),
		chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{upload}))
	c.shot("compose")
	c.submitForm(`form.compose button[type="submit"]`, `location.search.includes("done=submitted")`)
	if n := c.text(".notice"); n != "The message is queued for sending." {
		t.Errorf("after sending, the notice reads %q", n)
	}
	if h := c.text("h1"); h != "Purchase order 850" {
		t.Errorf("after sending, the details page is headed %q", h)
	}
	var s submitted
	if _, err := fmt.Sscanf(eval[string](c, "location.pathname"), "/messages/%d", &s.ID); err != nil {
		t.Fatalf("after sending, the page is %s: %v", eval[string](c, "location.href"), err)
	}
	s.MessageID = c.text("dl.fields dd.mid")
	if m := A.await(s.ID, "sent", "failed"); m.State != "sent" || len(m.Files) != 1 || m.Files[0].Name != "po-850.edi" {
		t.Fatalf("the composed message ended %s with files %+v", m.State, m.Files)
	}
	row := fmt.Sprintf(`a[href="/messages/%d"]`, s.ID)
	c.until("/messages?box=sent", "h1", fmt.Sprintf(`document.querySelector(%s) !== null`, jsString(row)))
	if mid := c.text(fmt.Sprintf(`tr:has(%s) .mid`, row)); mid != s.MessageID {
		t.Errorf("the Sent row shows Message-ID %q, want %q", mid, s.MessageID)
	}
	c.shot("sent-box")

	c.submitForm(row, fmt.Sprintf(`location.pathname === "/messages/%d"`, s.ID))
	mdn := c.text(`section[aria-labelledby="h-mdn"]`)
	for _, want := range []string{"automatic-action/MDN-sent-automatically; processed (positive)", "MIC\nmatches", "Signed\nyes"} {
		if !strings.Contains(mdn, want) {
			t.Errorf("the MDN section lacks %q; it reads:\n%s", want, mdn)
		}
	}
	if st := c.text(`dl.fields .state`); st != "sent" {
		t.Errorf("the details show state %q, want sent", st)
	}
	c.shot("sent-details")

	// The partner stops answering. A long first wait keeps the message in Queued while the
	// operator looks at it.
	pt := A.cfg.Partner("GW-B")
	good := pt.URL
	pt.URL = "http://127.0.0.1:1/as2"
	pt.Retry.Failed.Initial = 10 * time.Minute
	s2 := A.submit("GW-B", map[string][]byte{"po-850-2.edi": edi})
	details := fmt.Sprintf("/messages/%d", s2.ID)
	c.until(details, "h1", `document.querySelector("li.attempt") !== null`)
	attempt := c.text("li.attempt")
	for _, want := range []string{"transient", "connect_refused", "What to do: Nothing accepted the connection"} {
		if !strings.Contains(attempt, want) {
			t.Errorf("the failed attempt lacks %q; it reads:\n%s", want, attempt)
		}
	}
	if st := c.text(`dl.fields .state`); st != "queued" {
		t.Errorf("after a refused connection the state is %q, want queued", st)
	}
	c.shot("queued-details")
	c.open("/messages?box=queued", "h1")
	if le := c.text(fmt.Sprintf(`tr:has(a[href="%s"]) .lasterror`, details)); le == "" {
		t.Error("the Queued row shows no last failure")
	}
	c.shot("queued-box")

	// Stop it: the button sits behind a confirmation. While the worker holds the message
	// the gateway refuses the stop with a conflict, and the operator tries again.
	for i := 0; ; i++ {
		c.open(details, "h1")
		c.do("open the stop confirmation", chromedp.Click(chromedp.CSS(`details:has(form[action$="/stop"]) > summary`)),
			chromedp.WaitVisible(chromedp.CSS(`form[action$="/stop"] button`)))
		if i == 0 {
			c.shot("stop-confirm")
		}
		c.submitForm(`form[action$="/stop"] button`, `(location.search.includes("done=stop") || location.pathname.endsWith("/stop"))`)
		if !strings.HasSuffix(eval[string](c, "location.pathname"), "/stop") {
			break
		}
		if i == 50 {
			t.Fatalf("the stop was refused every time; the page reads:\n%s", c.text("main"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := c.text(".notice"); n != "The message was stopped." {
		t.Errorf("after the stop the notice reads %q", n)
	}
	if st := c.text(`dl.fields .state`); st != "failed" {
		t.Errorf("after the stop the state is %q, want failed", st)
	}
	c.shot("stopped")
	c.open("/messages?box=failed", "h1")
	if eval[bool](c, fmt.Sprintf(`document.querySelector(%s) === null`, jsString(fmt.Sprintf(`a[href="%s"]`, details)))) {
		t.Error("the stopped message is not in the Failed box")
	}
	c.shot("failed-box")

	// Left alone, a message to the unreachable partner is retried by its policy (here one
	// retry, two seconds later) and then fails by itself, with the corrective action.
	pt.Retry.Failed.Attempts, pt.Retry.Failed.Initial = 1, 2*time.Second
	s3 := A.submit("GW-B", map[string][]byte{"po-850-3.edi": edi})
	details3 := fmt.Sprintf("/messages/%d", s3.ID)
	c.until(details3, "h1", `document.querySelector("dl.fields .state").textContent === "queued" && document.querySelector("li.attempt") !== null`)
	c.shot("retrying-queued")
	c.until(details3, "h1", `document.querySelector("dl.fields .state").textContent === "failed"`)
	if n := eval[int](c, `document.querySelectorAll("li.attempt").length`); n != 2 {
		t.Errorf("the message failed after %d attempts, want 2 (the first and one retry)", n)
	}
	attempts := c.text("main")
	for _, want := range []string{"connect_refused", "What to do: Nothing accepted the connection"} {
		if !strings.Contains(attempts, want) {
			t.Errorf("the failed message's page lacks %q; it reads:\n%s", want, attempts)
		}
	}
	c.shot("failed-by-policy")

	// The partner is back: retry it from its details page.
	pt.URL = good
	c.open(details, "h1")
	c.do("open the retry confirmation", chromedp.Click(chromedp.CSS(`details:has(form[action$="/retry"]) > summary`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action$="/retry"] button`)))
	c.submitForm(`form[action$="/retry"] button`, `location.search.includes("done=retry")`)
	if n := c.text(".notice"); n != "The message is queued again." {
		t.Errorf("after the retry the notice reads %q", n)
	}
	c.shot("retried")
	if m := A.await(s2.ID, "sent", "failed"); m.State != "sent" {
		t.Fatalf("after the retry the message is %s (attempts %+v)", m.State, m.Attempts)
	}
	B.received(s2.MessageID)
	// The message that failed by its policy goes too, once retried.
	c.open(details3, "h1")
	c.do("open the retry confirmation", chromedp.Click(chromedp.CSS(`details:has(form[action$="/retry"]) > summary`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action$="/retry"] button`)))
	c.submitForm(`form[action$="/retry"] button`, `location.search.includes("done=retry")`)
	if m := A.await(s3.ID, "sent", "failed"); m.State != "sent" {
		t.Fatalf("after its retry the message that failed by policy is %s (attempts %+v)", m.State, m.Attempts)
	}
	c.until(details, "h1", `document.querySelector("dl.fields .state").textContent === "sent"`)
	if mdn := c.text(`section[aria-labelledby="h-mdn"]`); !strings.Contains(mdn, "processed (positive)") {
		t.Errorf("after the retry the MDN section reads:\n%s", mdn)
	}
	c.shot("retried-sent")

	// Bulk delete from the Sent box: tick the first message, confirm, and it is gone while
	// the retried one stays.
	c.open("/messages?box=sent", "h1")
	box := fmt.Sprintf(`input[type="checkbox"][value="%d"]`, s.ID)
	c.do("tick the first message", chromedp.Click(chromedp.CSS(box)),
		chromedp.Click(chromedp.CSS(`form#bulk-delete summary`)),
		chromedp.WaitVisible(chromedp.CSS(`form#bulk-delete button`)))
	c.shot("bulk-delete-confirm")
	c.submitForm(`form#bulk-delete button`, `location.search.includes("deleted=1")`)
	if n := c.text(".notice"); !strings.Contains(n, "1 message(s) deleted.") {
		t.Errorf("after the bulk delete the notice reads %q", n)
	}
	if eval[bool](c, fmt.Sprintf(`document.querySelector(%s) !== null`, jsString(row))) {
		t.Error("the deleted message is still listed")
	}
	if eval[bool](c, fmt.Sprintf(`document.querySelector(%s) === null`, jsString(fmt.Sprintf(`a[href="%s"]`, details)))) {
		t.Error("the message not ticked is gone from the Sent box")
	}
	c.shot("bulk-deleted")

	// The overview pages, each reached from the navigation.
	for _, pg := range []struct{ path, sel, want string }{
		{"/dashboard", "main h1", "GW-B"},
		{"/failures", "main h1", "connect_refused"},
		{"/timeline", "main h1", "attempt_failed"},
		{"/partners", "main h1", "GW-B"},
		{"/profiles", "main h1", "Send profiles"},
	} {
		c.do("open "+pg.path, chromedp.Click(chromedp.CSS(fmt.Sprintf(`nav a[href="%s"]`, pg.path))), chromedp.WaitVisible(chromedp.CSS(pg.sel)))
		if got := c.text("main"); !strings.Contains(got, pg.want) {
			t.Errorf("%s lacks %q; it reads:\n%s", pg.path, pg.want, got)
		}
		c.shot(strings.TrimPrefix(pg.path, "/"))
	}

	// The admin's own pages: users and roles, and the account with its sessions.
	c.do("open the users page", chromedp.Click(chromedp.CSS(`nav a[href="/users"]`)), chromedp.WaitVisible(chromedp.CSS("table.users")))
	c.shot("users")
	c.do("open the account page", chromedp.Click(chromedp.CSS(`a.who`)), chromedp.WaitVisible(chromedp.CSS("table.sessions")))
	if cur := c.text("table.sessions"); !strings.Contains(cur, "(this browser)") {
		t.Errorf("the account page does not mark this browser's session:\n%s", cur)
	}
	c.shot("account")

	if err := chromedp.Cancel(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("closing chromium: %v", err)
	}
}
