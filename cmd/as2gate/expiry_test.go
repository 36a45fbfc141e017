package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/as2gate/as2gate/cms/cmstest"
	"github.com/as2gate/as2gate/internal/config"
	"github.com/as2gate/as2gate/internal/notify"
)

const day = 24 * time.Hour

// expiryT0 is the tests' start time.
var expiryT0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

// expiryRig is an expiryWatch on a fake clock that records what it notifies and logs.
type expiryRig struct {
	t      *testing.T
	w      *expiryWatch
	logBuf *syncBuffer

	mu     sync.Mutex
	now    time.Time
	events []notify.Event
	queued chan notify.Event // receives every event too, when not nil
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newExpiryRig watches certs with the state file in dir.
func newExpiryRig(t *testing.T, dir string, window time.Duration, certs []config.NamedCertificate) *expiryRig {
	r := &expiryRig{t: t, now: expiryT0, logBuf: &syncBuffer{}}
	r.w = &expiryWatch{
		certs:  certs,
		window: window,
		path:   filepath.Join(dir, expiryStateFile),
		now:    r.clock,
		notify: func(_ context.Context, ev notify.Event) {
			r.mu.Lock()
			r.events = append(r.events, ev)
			q := r.queued
			r.mu.Unlock()
			if q != nil {
				q <- ev
			}
		},
		log: slog.New(slog.NewJSONHandler(r.logBuf, nil)),
	}
	return r
}

func (r *expiryRig) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func (r *expiryRig) advance(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now = r.now.Add(d)
}

// take returns the events notified since the last call, each as "owner@threshold".
func (r *expiryRig) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		out = append(out, fmt.Sprintf("%s@%d", ev.Partner, ev.Certificate.Threshold))
	}
	r.events = nil
	return out
}

func (r *expiryRig) check() []string {
	r.t.Helper()
	if err := r.w.check(context.Background()); err != nil {
		r.t.Fatalf("check: %v", err)
	}
	return r.take()
}

// expiringCerts returns a station, a partner and a listener certificate expiring after
// the given times from expiryT0.
func expiringCerts(t *testing.T, station, partner, listener time.Duration) []config.NamedCertificate {
	t.Helper()
	cert := func(name string, left time.Duration) *config.NamedCertificate {
		notAfter := expiryT0.Add(left)
		id := cmstest.New(t, name, &cmstest.Options{NotBefore: notAfter.AddDate(-1, 0, 0), NotAfter: notAfter})
		return &config.NamedCertificate{Certificate: id.Certificate}
	}
	s, p, l := cert("GATEWAY", station), cert("PARTNERX", partner), cert("as2.example.com", listener)
	s.Key, s.Owner = "stations[0].cert", "station GATEWAY"
	p.Key, p.Owner = "partners[0].certs[0]", "partner PARTNERX"
	l.Key, l.Owner = "tls.as2.cert", "listener as2"
	return []config.NamedCertificate{*s, *p, *l}
}

// TestExpirySteps walks a month and a half in daily checks: each certificate is reported
// once per step it reaches, in the order of the configuration, and a second check on the
// same day reports nothing.
func TestExpirySteps(t *testing.T) {
	t.Parallel()
	r := newExpiryRig(t, t.TempDir(), config.DefaultCertExpiryWarning,
		expiringCerts(t, 10*day, 40*day, 8*day+time.Hour))
	want := map[int][]string{
		0:  {"GATEWAY@14", "listener as2@14"},
		2:  {"listener as2@7"},
		3:  {"GATEWAY@7"},
		8:  {"listener as2@1"},
		9:  {"GATEWAY@1", "listener as2@0"},
		10: {"GATEWAY@0", "PARTNERX@30"},
		26: {"PARTNERX@14"},
		33: {"PARTNERX@7"},
		39: {"PARTNERX@1"},
		40: {"PARTNERX@0"},
	}
	for d := 0; d <= 45; d++ {
		got := r.check()
		if !slices.Equal(got, want[d]) {
			t.Errorf("day %d: notified %q, want %q", d, got, want[d])
		}
		if again := r.check(); len(again) > 0 {
			t.Errorf("day %d: the second check notified %q", d, again)
		}
		r.advance(day)
	}
}

// TestExpiryRestart: a new watch on the same data folder, as after a restart, does not
// notify a step again, and the state file is JSON keyed by fingerprint with no temporary
// file left beside it.
func TestExpiryRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certs := expiringCerts(t, 5*day, 20*day, 100*day)
	first := newExpiryRig(t, dir, config.DefaultCertExpiryWarning, certs)
	if got := first.check(); !slices.Equal(got, []string{"GATEWAY@7", "PARTNERX@30"}) {
		t.Fatalf("first start notified %q", got)
	}

	second := newExpiryRig(t, dir, config.DefaultCertExpiryWarning, certs)
	if got := second.check(); len(got) > 0 {
		t.Errorf("after a restart on the same day: notified %q again", got)
	}
	second.advance(5 * day)
	if got := second.check(); !slices.Equal(got, []string{"GATEWAY@0"}) {
		t.Errorf("five days later: notified %q, want only GATEWAY@0", got)
	}

	data, err := os.ReadFile(filepath.Join(dir, expiryStateFile))
	if err != nil {
		t.Fatal(err)
	}
	var st expiryState
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("state file: %v\n%s", err, data)
	}
	want := map[string]int{fingerprint(certs[0].Certificate): 0, fingerprint(certs[1].Certificate): 30}
	if len(st.Notified) != len(want) {
		t.Errorf("state %v, want %v", st.Notified, want)
	}
	for fp, th := range want {
		if got, ok := st.Notified[fp]; !ok || got != th {
			t.Errorf("state[%s…] = %d, %v; want %d", fp[:12], got, ok, th)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("data folder holds %q, want only %s", names, expiryStateFile)
	}
}

// TestExpiryWindow: cert_expiry_warning shorter than 30 days skips the steps before it;
// longer adds a step of its own when the certificate enters it.
func TestExpiryWindow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		window time.Duration
		left   time.Duration // of the partner certificate at the first check
		want   map[int][]string
	}{
		{"14 days", 14 * day, 20 * day, map[int][]string{6: {"PARTNERX@14"}, 13: {"PARTNERX@7"}, 19: {"PARTNERX@1"}, 20: {"PARTNERX@0"}}},
		{"3 days", 3 * day, 10 * day, map[int][]string{7: {"PARTNERX@7"}, 9: {"PARTNERX@1"}, 10: {"PARTNERX@0"}}},
		{"60 days", 60 * day, 70 * day, map[int][]string{10: {"PARTNERX@60"}, 40: {"PARTNERX@30"}, 56: {"PARTNERX@14"}, 63: {"PARTNERX@7"}, 69: {"PARTNERX@1"}, 70: {"PARTNERX@0"}}},
		{"45 days entered while down", 45 * day, 35 * day, map[int][]string{0: {"PARTNERX@45"}, 5: {"PARTNERX@30"}, 21: {"PARTNERX@14"}, 28: {"PARTNERX@7"}, 34: {"PARTNERX@1"}, 35: {"PARTNERX@0"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			certs := expiringCerts(t, 10*365*day, tt.left, 10*365*day)
			r := newExpiryRig(t, t.TempDir(), tt.window, certs)
			for d := 0; d <= int(tt.left/day)+2; d++ {
				if got := r.check(); !slices.Equal(got, tt.want[d]) {
					t.Errorf("day %d: notified %q, want %q", d, got, tt.want[d])
				}
				r.advance(day)
			}
		})
	}
}

// TestExpiryEvent checks what an event says: the owner, the station, the code, and an
// action that names the configuration key to change.
func TestExpiryEvent(t *testing.T) {
	t.Parallel()
	certs := expiringCerts(t, -day, 3*day, 3*day)
	certs = append(certs, config.NamedCertificate{Key: "stations[0].tls_cert", Owner: "station GATEWAY", Certificate: certs[2].Certificate})
	r := newExpiryRig(t, t.TempDir(), config.DefaultCertExpiryWarning, certs)
	if err := r.w.check(context.Background()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, partner, station, code string
		days                         int
		action                       []string
	}{
		{"station", "GATEWAY", "GATEWAY", "certificate_expired", -1, []string{"as2gate keys generate", "stations[0].cert", "previous_keys"}},
		{"partner", "PARTNERX", "", "certificate_expiring", 3, []string{"Ask PARTNERX", "partners[0].certs[0]"}},
		{"listener", "listener as2", "", "certificate_expiring", 3, []string{"HTTPS certificate of the listener as2", "tls.as2.cert"}},
		{"station TLS client", "GATEWAY", "GATEWAY", "certificate_expiring", 3, []string{"TLS client certificate", "stations[0].tls_cert"}},
	}
	if len(r.events) != len(tests) {
		t.Fatalf("%d events, want %d: %+v", len(r.events), len(tests), r.events)
	}
	for i, tt := range tests {
		ev := r.events[i]
		t.Run(tt.name, func(t *testing.T) {
			if ev.Type != notify.CertificateExpiring || ev.Partner != tt.partner || ev.Station != tt.station || ev.Code != tt.code {
				t.Errorf("event %s/%s/%s/%s, want %s/%s/%s", ev.Type, ev.Partner, ev.Station, ev.Code, tt.partner, tt.station, tt.code)
			}
			if ev.Certificate == nil || ev.Certificate.DaysLeft != tt.days || !ev.At.Equal(expiryT0) {
				t.Fatalf("certificate %+v at %s, want %d days left at %s", ev.Certificate, ev.At, tt.days, expiryT0)
			}
			for _, s := range tt.action {
				if !strings.Contains(ev.Action, s) {
					t.Errorf("action %q does not mention %q", ev.Action, s)
				}
			}
		})
	}
}

// TestExpiryStateFile: a damaged state file is replaced after a warning (a step may be
// reported twice, never not at all), and certificates gone from the configuration are
// forgotten.
func TestExpiryStateFile(t *testing.T) {
	t.Parallel()
	certs := expiringCerts(t, 5*day, 10*365*day, 10*365*day)
	tests := []struct {
		name, content string
		want          []string
		warning       string
	}{
		{"missing", "", []string{"GATEWAY@7"}, ""},
		{"damaged", `{"notified": {"abc`, []string{"GATEWAY@7"}, "certificate expiry state unreadable"},
		{"not an object", `[1, 2]`, []string{"GATEWAY@7"}, "certificate expiry state unreadable"},
		{"null map", `{"notified": null}`, []string{"GATEWAY@7"}, ""},
		{"already notified", `{"notified": {"` + fingerprint(certs[0].Certificate) + `": 7}}`, nil, ""},
		{"notified at an earlier step", `{"notified": {"` + fingerprint(certs[0].Certificate) + `": 14}}`, []string{"GATEWAY@7"}, ""},
		{"a certificate no longer configured", `{"notified": {"00ff": 1, "` + fingerprint(certs[0].Certificate) + `": 7}}`, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, expiryStateFile)
			if tt.content != "" {
				if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r := newExpiryRig(t, dir, config.DefaultCertExpiryWarning, certs)
			if got := r.check(); !slices.Equal(got, tt.want) {
				t.Errorf("notified %q, want %q", got, tt.want)
			}
			if log := r.logBuf.String(); tt.warning != "" && !strings.Contains(log, tt.warning) {
				t.Errorf("log %s\nhas no %q", log, tt.warning)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var st expiryState
			if err := json.Unmarshal(data, &st); err != nil {
				t.Fatalf("state file after the check: %v\n%s", err, data)
			}
			if want := map[string]int{fingerprint(certs[0].Certificate): 7}; len(st.Notified) != 1 || st.Notified[fingerprint(certs[0].Certificate)] != 7 {
				t.Errorf("state %v, want %v", st.Notified, want)
			}
		})
	}
}

// TestExpiryRun: at start the watch warns in the log about every certificate within the
// window, reported before or not, notifies, then waits 24 hours between checks and stops
// when its context ends.
func TestExpiryRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certs := expiringCerts(t, 20*day, -2*day, 31*day)
	// The partner's expired certificate was reported before the restart.
	state := `{"notified": {"` + fingerprint(certs[1].Certificate) + `": 0}}`
	if err := os.WriteFile(filepath.Join(dir, expiryStateFile), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newExpiryRig(t, dir, config.DefaultCertExpiryWarning, certs)
	r.queued = make(chan notify.Event, 8)
	waits := make(chan time.Duration)
	tick := make(chan time.Time)
	after := func(d time.Duration) <-chan time.Time {
		waits <- d
		return tick
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.w.run(ctx, after)
	}()

	if d := <-waits; d != 24*time.Hour {
		t.Errorf("waits %s between checks, want 24h", d)
	}
	<-r.queued
	if got := r.take(); !slices.Equal(got, []string{"GATEWAY@30"}) {
		t.Errorf("at start: notified %q, want [GATEWAY@30]", got)
	}
	var warned []string
	for line := range strings.Lines(r.logBuf.String()) {
		var rec struct {
			Level, Msg, Certificate string
			DaysLeft                int `json:"days_left"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Level == "WARN" {
			warned = append(warned, fmt.Sprintf("%s %s %d", rec.Msg, rec.Certificate, rec.DaysLeft))
		}
	}
	wantWarned := []string{"certificate expires soon stations[0].cert 20", "certificate has expired partners[0].certs[0] -2"}
	if !slices.Equal(warned, wantWarned) {
		t.Errorf("warnings at start %q, want %q", warned, wantWarned)
	}

	r.advance(day)
	tick <- expiryT0.Add(day)
	if ev := <-r.queued; ev.Partner != "listener as2" || ev.Certificate.Threshold != 30 {
		t.Errorf("a day later: notified %s@%d, want the listener's at 30 days", ev.Partner, ev.Certificate.Threshold)
	}
	if d := <-waits; d != 24*time.Hour {
		t.Errorf("waits %s, want 24h", d)
	}
	cancel()
	<-done
}

// TestExpiryStopsWhenRunFails: when a listener fails, Run stops the expiry check too and
// returns, although its context is still alive.
func TestExpiryStopsWhenRunFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert, key := cmstest.New(t, "GW-STOP", nil).WriteFiles(t, dir, "station")
	yaml := "data_dir: data\nlisten: {as2: \"127.0.0.1:0\", admin: \"127.0.0.1:0\"}\napi_tokens: [test-token]\n" +
		"stations:\n  - {as2_id: GW-STOP, key: " + key + ", cert: " + cert + "}\n"
	path := filepath.Join(dir, "as2gate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.as2Ln.Close() // the partner listener fails at once
	done := make(chan error, 1)
	go func() { done <- g.Run(context.Background()) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Run returned no error after its listener failed")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its listener failed")
	}
}
