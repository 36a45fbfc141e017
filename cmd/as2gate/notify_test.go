package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/cms/cmstest"
	"github.com/as2gate/as2gate/internal/config"
	"github.com/as2gate/as2gate/internal/notify"
)

// TestNotifyConfig loads notify sections as an operator writes them and checks that what
// the configuration accepts maps to settings the notifier accepts, with the TLS mode and
// port the file says, or is refused at start under the configuration's key path.
func TestNotifyConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"smtp.pass":  "smtp secret\n",
		"hook.key":   "0123456789abcdef0123456789abcdef\n",
		"hook16.key": "0123456789abcdef\n",
		"short.key":  "0123456789abcde\n",
		"hook.crlf":  "0123456789abcdef\r\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const email = "from: as2gate@example.com\n    to: [ops@example.com]\n    "
	tests := []struct {
		name, notify string
		wantEmail    *notify.EmailConfig // Host, Port, TLS, Username, Password
		wantSecret   string
		err          string
	}{
		{"no notifications", "{}", nil, "", ""},
		{"starttls by default", "email:\n    smtp: mail.example.com:587\n    " + email + "username: edi\n    password_file: smtp.pass",
			&notify.EmailConfig{Host: "mail.example.com", Port: 587, TLS: notify.EmailSTARTTLS, Username: "edi", Password: "smtp secret"}, "", ""},
		{"implicit tls", "email:\n    smtp: mail.example.com:465\n    " + email + "tls: true\n    starttls: false",
			&notify.EmailConfig{Host: "mail.example.com", Port: 465, TLS: notify.EmailImplicitTLS}, "", ""},
		{"plain relay", "email:\n    smtp: 127.0.0.1:25\n    " + email + "starttls: false",
			&notify.EmailConfig{Host: "127.0.0.1", Port: 25, TLS: notify.EmailNoTLS}, "", ""},
		{"IPv6 relay on another port", "email:\n    smtp: '[::1]:2525'\n    " + email + "starttls: false",
			&notify.EmailConfig{Host: "::1", Port: 2525, TLS: notify.EmailNoTLS}, "", ""},
		{"password in clear", "email:\n    smtp: mail.example.com:25\n    " + email + "starttls: false\n    username: edi\n    password_file: smtp.pass",
			nil, "", "notify.email.username: set with starttls: false and tls: false"},
		{"webhook", "webhook: {url: 'https://hooks.example.com/as2', secret_file: hook.key}",
			nil, "0123456789abcdef0123456789abcdef", ""},
		{"webhook secret of 16 bytes, line end dropped", "webhook: {url: 'https://hooks.example.com/as2', secret_file: hook.crlf}",
			nil, "0123456789abcdef", ""},
		{"webhook secret too short", "webhook: {url: 'https://hooks.example.com/as2', secret_file: short.key}",
			nil, "", "notify.webhook.secret_file: " + filepath.Join(dir, "short.key") + " holds 15 bytes: at least 16"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			yaml := "data_dir: data\nnotify:\n  " + strings.ReplaceAll(tt.notify, "\n", "\n  ") + "\n"
			if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(path)
			if tt.err != "" {
				// Refused by the configuration itself, so that `config check` says it too.
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("config.Load: %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("case %d: config.Load: %v\n%s", i, err, yaml)
			}
			nc, err := notifyConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := nc.Email, tt.wantEmail; (got == nil) != (want == nil) {
				t.Fatalf("email %+v, want %+v", got, want)
			} else if want != nil && (got.Host != want.Host || got.Port != want.Port || got.TLS != want.TLS || got.Username != want.Username || got.Password != want.Password) {
				t.Errorf("email %s:%d tls=%s user=%q password=%q, want %s:%d tls=%s user=%q password=%q",
					got.Host, got.Port, got.TLS, got.Username, got.Password, want.Host, want.Port, want.TLS, want.Username, want.Password)
			}
			if got := nc.Webhook; (got == nil) != (tt.wantSecret == "") || got != nil && got.Secret != tt.wantSecret {
				t.Errorf("webhook %+v, want secret %q", got, tt.wantSecret)
			}
			n, err := notify.New(nc, nil)
			if err != nil {
				t.Fatalf("the notifier refuses what the configuration accepted: %v", err)
			}
			n.Close(context.Background())
		})
	}
}

// TestExpiryGateway starts a gateway whose partner certificate expires in five days: its
// first check POSTs a signed certificate_expiring notification to the webhook and records
// the step in the data folder.
func TestExpiryGateway(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	station := cmstest.New(t, "GW-EXP", nil)
	stationCert, stationKey := station.WriteFiles(t, dir, "station")
	notAfter := time.Now().Add(5 * 24 * time.Hour).Truncate(time.Second)
	partner := cmstest.New(t, "PARTNER-EXP", &cmstest.Options{NotBefore: notAfter.AddDate(-1, 0, 0), NotAfter: notAfter})
	partnerCert, _ := partner.WriteFiles(t, dir, "partner")
	const secret = "a webhook secret of 32 bytes...."
	if err := os.WriteFile(filepath.Join(dir, "hook.key"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}

	posts := make(chan notify.Event, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := notify.Verify([]byte(secret), r.Header, body, time.Now(), time.Minute); err != nil {
			t.Errorf("webhook signature: %v", err)
		}
		var ev notify.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("webhook body %s: %v", body, err)
		}
		posts <- ev
	}))
	t.Cleanup(hook.Close)

	yaml := `data_dir: data
listen: {as2: "127.0.0.1:0", admin: "127.0.0.1:0"}
api_tokens: [test-token]
log: {format: json, level: warn}
notify:
  webhook: {url: "` + hook.URL + `/as2gate", secret_file: hook.key}
stations:
  - {as2_id: GW-EXP, key: ` + stationKey + `, cert: ` + stationCert + `}
partners:
  - as2_id: PARTNER-EXP
    url: http://127.0.0.1:1/as2
    certs: [` + partnerCert + `]
`
	path := filepath.Join(dir, "as2gate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var logBuf syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, err := Open(ctx, cfg, slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()

	select {
	case ev := <-posts:
		if ev.Type != notify.CertificateExpiring || ev.Partner != "PARTNER-EXP" || ev.Certificate == nil ||
			ev.Certificate.Threshold != 7 || !ev.Certificate.NotAfter.Equal(notAfter) || !strings.Contains(ev.Action, "partners[0].certs[0]") {
			t.Errorf("notification %+v (certificate %+v)", ev, ev.Certificate)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no webhook notification within 20s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(cfg.DataDir, expiryStateFile))
	if err != nil || !strings.Contains(string(data), fingerprint(partner.Certificate)) {
		t.Errorf("state file %s, %v: the step is not recorded", data, err)
	}
	if log := logBuf.String(); !strings.Contains(log, `"msg":"certificate expires soon"`) || !strings.Contains(log, `"certificate":"partners[0].certs[0]"`) {
		t.Errorf("no warning at start about the partner's certificate:\n%s", log)
	}
}
