package config

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
)

// fullFixture writes next to a copy of testdata/full.yaml every file it names.
type fullFixture struct {
	f                   files
	gateway, gateway24  identity
	client, partnerX    identity
	yOld, yNow, yFuture identity
	serverCA, server    *cmstest.Identity
	clientCA            *cmstest.Identity
	partnerTLS          identity
}

func newFullFixture(t *testing.T, now time.Time) *fullFixture {
	t.Helper()
	f := newFiles(t)
	text, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f.write("as2gate.yaml", text)
	x := &fullFixture{
		f:          f,
		gateway:    newIdentity(t, "GATEWAY", 0, time.Time{}, time.Time{}),
		gateway24:  newIdentity(t, "GATEWAY 2024", 1, now.AddDate(-2, 0, 0), now.AddDate(0, 1, 0)),
		client:     newIdentity(t, "gateway client", 2, time.Time{}, time.Time{}),
		partnerX:   newIdentity(t, "PARTNERX", 3, time.Time{}, time.Time{}),
		yOld:       newIdentity(t, "Partner Y 2025", 4, now.AddDate(-1, 0, 0), now.AddDate(0, 0, 20)),
		yNow:       newIdentity(t, "Partner Y 2026", 5, now.AddDate(0, 0, -1), now.AddDate(2, 0, 0)),
		yFuture:    newIdentity(t, "Partner Y 2027", 6, now.AddDate(0, 0, 2), now.AddDate(3, 0, 0)),
		partnerTLS: newIdentity(t, "partner-x.example", 7, time.Time{}, time.Time{}),
	}
	x.serverCA = cmstest.New(t, "server CA", &cmstest.Options{IsCA: true})
	x.server = cmstest.New(t, "gateway.example", &cmstest.Options{
		Parent: x.serverCA, DNSNames: []string{"gateway.example"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	x.clientCA = cmstest.New(t, "partners CA", &cmstest.Options{IsCA: true})
	admin := cmstest.New(t, "admin", nil)

	f.certs("certs/server.crt", x.server.Certificate, x.serverCA.Certificate)
	f.pkcs8("certs/server.key", x.server.Key)
	f.certs("certs/partners-ca.pem", x.clientCA.Certificate)
	f.pkcs12("certs/admin.p12", admin.Key, admin.Certificate, nil, "admin pass")
	f.writeString("secrets/admin.pass", "admin pass\n")
	f.writeString("secrets/smtp.pass", "smtp-secret\n")
	f.writeString("secrets/webhook.key", "a long enough hmac key\r\n")
	f.certs("keys/gateway.crt", x.gateway.cert)
	f.encryptedPKCS8("keys/gateway.key", x.gateway.key, "gateway pass")
	f.writeString("keys/gateway.pass", "gateway pass")
	f.certs("keys/client.crt", x.client.cert)
	f.pkcs1("keys/client.key", x.client.key)
	f.write("keys/gateway-2024.der", x.gateway24.cert.Raw)
	der, err := x509.MarshalPKCS8PrivateKey(x.gateway24.key)
	if err != nil {
		t.Fatal(err)
	}
	f.write("keys/gateway-2024.der.key", der)
	f.certs("keys/partnerx.crt", x.partnerX.cert)
	f.writeString("secrets/partnerx.pass", "x pass\n")
	f.certs("certs/partner-tls.crt", x.partnerTLS.cert)
	f.certs("keys/partnery-old.crt", x.yOld.cert)
	f.certs("keys/partnery.pem", x.yFuture.cert, x.yNow.cert)
	f.writeString("secrets/partnery.token", "y-token\n")
	return x
}

func TestLoadFull(t *testing.T) {
	t.Parallel()
	now := time.Now()
	x := newFullFixture(t, now)
	path := x.f.path("as2gate.yaml")
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	dir := x.f.dir

	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", name, got, want)
		}
	}
	check("File", c.File, path)
	check("DataDir", c.DataDir, filepath.Join(dir, "as2gate-data"))
	check("Database", c.Database, "sqlite")
	check("Listen", c.Listen, Listen{AS2: ":4080", Admin: "127.0.0.1:8080"})
	check("PublicURL", c.PublicURL, "http://gateway.example:4080/as2")
	check("APITokens", c.APITokens, []string{"k3Zq9vR7wT2mX8pL4nB6cY1d"})
	check("AllowPrivateMDNURLs", c.AllowPrivateMDNURLs, true)
	check("DedupWindow", c.DedupWindow, 90*24*time.Hour)
	check("Workers", c.Workers, 16)
	check("InboxDir", c.InboxDir, filepath.Join(dir, "received"))
	check("Inbox", c.Inbox("PARTNERX"), filepath.Join(dir, "received", "PARTNERX"))
	check("KeysDir", c.KeysDir(), filepath.Join(dir, "as2gate-data", "keys"))
	check("Log", c.Log, Log{Format: LogJSON, Level: slog.LevelDebug})

	// Listeners.
	if l := c.TLS.AS2; l == nil || l.Certificate == nil || l.ClientCAs == nil {
		t.Fatalf("tls.as2 not loaded: %+v", l)
	}
	check("tls.as2 leaf", c.TLS.AS2.Certificate.Leaf.Subject.CommonName, "gateway.example")
	check("tls.as2 chain length", len(c.TLS.AS2.Certificate.Certificate), 2)
	check("tls.as2 key file", c.TLS.AS2.KeyFile, filepath.Join(dir, "certs/server.key"))
	if l := c.TLS.Admin; l == nil || l.Certificate == nil || l.Certificate.Leaf.Subject.CommonName != "admin" || l.ClientCAs != nil {
		t.Errorf("tls.admin from the PKCS#12 file: %+v", l)
	}

	// Notifications.
	check("CertExpiryWarning", c.Notify.CertExpiryWarning, 14*24*time.Hour)
	check("Email", *c.Notify.Email, Email{
		SMTP: "mail.example.com:587", From: "as2gate@example.com",
		To:       []string{"edi-team@example.com", "Operations <ops@example.com>"},
		Username: "as2gate", PasswordFile: filepath.Join(dir, "secrets/smtp.pass"),
		StartTLS: true, Password: "smtp-secret",
	})
	check("Webhook", *c.Notify.Webhook, Webhook{
		URL: "https://hooks.example.com/as2gate", SecretFile: filepath.Join(dir, "secrets/webhook.key"),
		Secret: []byte("a long enough hmac key"),
	})

	// Defaults: the block over DefaultSettings; require follows sign and encrypt.
	oaep256 := cms.KeyTransport{OAEP: true, Hash: crypto.SHA256}
	wantDefaults := Settings{
		Sign: as2.MICAlgSHA384, Encrypt: cms.AES192CBC, KeyTransport: oaep256,
		Compress: as2.NoCompression, MDN: as2.MDNSync, MDNSigned: false,
		Require: Require{Signed: true, Encrypted: true},
		Retry: RetryPolicies{
			Failed:     Retry{Enabled: true, Strategy: Exponential, Attempts: 5, Initial: time.Minute, Interval: 15 * time.Minute, Duration: 2 * time.Hour},
			Incomplete: DefaultSettings().Retry.Incomplete,
		},
		Timeouts:    Timeouts{Connect: 10 * time.Second, Transmission: 60 * time.Second, AsyncMDN: time.Hour},
		MaxSize:     2 << 30,
		Concurrency: 3,
		MDNPolicy:   MDNPolicySender,
	}
	check("Defaults", c.Defaults, wantDefaults)

	// Station.
	if len(c.Stations) != 1 {
		t.Fatalf("%d stations, want 1", len(c.Stations))
	}
	st := c.Station("GATEWAY")
	if st == nil {
		t.Fatal(`Station("GATEWAY") = nil`)
	}
	if !st.Certificate.Equal(x.gateway.cert) || !x.gateway.key.PublicKey.Equal(st.Key.Public()) {
		t.Error("the station identity is not the one written")
	}
	if len(st.Previous) != 1 || !st.Previous[0].Certificate.Equal(x.gateway24.cert) || st.Previous[0].Key == nil {
		t.Errorf("previous_keys not loaded: %+v", st.Previous)
	}
	if r := st.Recipients(); len(r) != 2 || !r[0].Certificate.Equal(x.gateway.cert) || !r[1].Certificate.Equal(x.gateway24.cert) {
		t.Errorf("Recipients() = %d keys, want the current one then the previous one", len(r))
	}
	if st.TLSCertificate == nil || !st.TLSCertificate.Leaf.Equal(x.client.cert) {
		t.Error("the station's TLS client certificate is not loaded")
	}

	// PARTNERX sets everything itself.
	px := c.Partner("PARTNERX")
	if px == nil {
		t.Fatal(`Partner("PARTNERX") = nil`)
	}
	check("PARTNERX.Station", px.Station, "GATEWAY")
	check("PARTNERX.URL", px.URL, "http://127.0.0.1:4081/as2")
	check("PARTNERX.Settings", px.Settings, Settings{
		Sign: as2.MICAlgSHA256, Encrypt: cms.AES256CBC, KeyTransport: cms.KeyTransport{},
		Compress: as2.NoCompression, MDN: as2.MDNSync, MDNSigned: true,
		Require: Require{Signed: true, Encrypted: true},
		Retry: RetryPolicies{
			Failed:     Retry{Enabled: true, Strategy: Exponential, Attempts: 10, Initial: 30 * time.Second, Interval: 15 * time.Minute, Duration: 2 * time.Hour},
			Incomplete: Retry{Enabled: false, Strategy: Exponential, Attempts: 3, Initial: 30 * time.Second, Interval: 15 * time.Minute, Duration: 2 * time.Hour},
		},
		Timeouts:    Timeouts{Connect: 30 * time.Second, Transmission: 60 * time.Second, AsyncMDN: time.Hour},
		MaxSize:     1 << 30,
		Concurrency: 3,
		MDNPolicy:   MDNPolicySender,
	})
	check("PARTNERX.Header", px.Header.Get("X-Custom"), "value")
	check("PARTNERX authorization", px.Auth.Authorization(), "Basic "+base64.StdEncoding.EncodeToString([]byte("u:x pass")))
	if len(px.Certificates) != 1 || !px.Certificates[0].Equal(x.partnerX.cert) {
		t.Error("PARTNERX certificate not loaded")
	}
	if px.TLS.Roots == nil {
		t.Error("PARTNERX tls.ca not loaded")
	}

	// Partner Y inherits what it does not set.
	py := c.Partner("Partner Y")
	if py == nil {
		t.Fatal(`Partner("Partner Y") = nil`)
	}
	check("Partner Y.Station (the only station)", py.Station, "GATEWAY")
	check("Partner Y.Settings", py.Settings, Settings{
		Sign: as2.MICAlgSHA384, PSS: true, Encrypt: cms.AES128GCM, KeyTransport: oaep256,
		Compress: as2.CompressBeforeSign, MDN: as2.MDNAsync, MDNSigned: false,
		Require: Require{Signed: true, Encrypted: true, Compressed: true},
		Retry: RetryPolicies{
			Failed:     Retry{Enabled: true, Strategy: Fixed, Attempts: 5, Initial: time.Minute, Interval: 15 * time.Minute, Duration: 2 * time.Hour},
			Incomplete: Retry{Enabled: true, Strategy: Exponential, Attempts: 3, Initial: 30 * time.Second, Interval: 15 * time.Minute, Duration: 2 * time.Hour},
		},
		Timeouts:      Timeouts{Connect: 10 * time.Second, Transmission: 60 * time.Second, AsyncMDN: 4 * time.Hour},
		MaxSize:       500_000_000,
		Concurrency:   1,
		MDNPolicy:     MDNPolicyAgreement,
		SourceAddress: netip.MustParseAddr("127.0.0.1"),
	})
	check("Partner Y authorization", py.Auth.Authorization(), "Bearer y-token")
	check("Partner Y certificates", len(py.Certificates), 3)
	check("Partner Y inbox", filepath.Dir(c.Inbox("Partner Y")), filepath.Join(dir, "received"))
	if got := py.EncryptionCertificate(now); got == nil || !got.Equal(x.yNow.cert) {
		t.Errorf("EncryptionCertificate(now) = %v, want the newest valid one", subject(got))
	}
	if got := py.EncryptionCertificate(now.AddDate(0, 0, 3)); got == nil || !got.Equal(x.yFuture.cert) {
		t.Errorf("EncryptionCertificate(in 3 days) = %v, want the one valid from tomorrow", subject(got))
	}

	// Every certificate the gateway relies on, for expiry warnings.
	var keys []string
	for _, nc := range c.Certificates() {
		keys = append(keys, nc.Key)
	}
	check("Certificates()", keys, []string{
		"stations[0].cert", "stations[0].previous_keys[0].cert", "stations[0].tls_cert",
		"tls.as2.cert", "tls.admin.cert",
		"partners[0].certs[0]", "partners[1].certs[0]", "partners[1].certs[1]", "partners[1].certs[2]",
	})
}

func subject(c *x509.Certificate) string {
	if c == nil {
		return "nil"
	}
	return c.Subject.CommonName
}

func TestLoadEmptyFileGivesDefaults(t *testing.T) {
	t.Parallel()
	f := newFiles(t)
	for _, text := range []string{"", "# nothing set\n", "---\n"} {
		c, err := f.load(text)
		if err != nil {
			t.Fatalf("Load(%q): %v", text, err)
		}
		want := Default()
		want.File = f.path("as2gate.yaml")
		want.DataDir = filepath.Join(f.dir, DefaultDataDir)
		if !reflect.DeepEqual(c, want) {
			t.Errorf("Load(%q) = %+v\nwant %+v", text, c, want)
		}
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate(): %v", err)
	}
	d := c.Defaults
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"data_dir", c.DataDir, "as2gate-data"},
		{"database", c.Database, "sqlite"},
		{"listen.as2", c.Listen.AS2, ":4080"},
		{"listen.admin", c.Listen.Admin, "127.0.0.1:8080"},
		{"dedup_window", c.DedupWindow, 30 * 24 * time.Hour},
		{"workers", c.Workers, 8},
		{"log.format", c.Log.Format, "auto"},
		{"log.level", c.Log.Level, slog.LevelInfo},
		{"notify.cert_expiry_warning", c.Notify.CertExpiryWarning, 30 * 24 * time.Hour},
		{"sign", d.Sign, as2.MICAlgSHA256},
		{"encrypt", d.Encrypt, cms.AES256CBC},
		{"key_transport", d.KeyTransport.String(), "rsa-pkcs1v15"},
		{"compress", d.Compress, as2.NoCompression},
		{"mdn", d.MDN, as2.MDNSync},
		{"mdn_signed", d.MDNSigned, true},
		{"require", d.Require, Require{Signed: true, Encrypted: true}},
		{"retry.failed", d.Retry.Failed, Retry{Enabled: true, Strategy: Exponential, Attempts: 10, Initial: 30 * time.Second, Interval: 15 * time.Minute, Duration: 2 * time.Hour}},
		{"retry.incomplete", d.Retry.Incomplete, Retry{Enabled: false, Strategy: Exponential, Attempts: 3, Initial: 30 * time.Second, Interval: 15 * time.Minute, Duration: 2 * time.Hour}},
		{"timeouts", d.Timeouts, Timeouts{Connect: 30 * time.Second, Transmission: 60 * time.Second, AsyncMDN: time.Hour}},
		{"max_size", d.MaxSize, int64(1 << 30)},
		{"concurrency", d.Concurrency, 4},
	} {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

// TestLoadInheritance checks the rule: a partner setting falls back to the defaults block,
// then to DefaultSettings, field by field.
func TestLoadInheritance(t *testing.T) {
	t.Parallel()
	f := newFiles(t)
	gw := newIdentity(t, "GW", 0, time.Time{}, time.Time{})
	px := newIdentity(t, "PX", 1, time.Time{}, time.Time{})
	f.certs("gw.crt", gw.cert)
	f.pkcs8("gw.key", gw.key)
	f.certs("px.crt", px.cert)
	c, err := f.load(`
defaults:
  retry:
    failed: {attempts: 3}
    incomplete: {enabled: true, initial: 1m}
  timeouts: {transmission: 5m}
stations: [{as2_id: GW, cert: gw.crt, key: gw.key}]
partners:
  - {as2_id: A, url: "http://a.example/as2", certs: [px.crt]}
  - as2_id: B
    url: http://b.example/as2
    certs: [px.crt]
    retry: {failed: {initial: 10s}, incomplete: {attempts: 5}}
    timeouts: {connect: 1s}
`)
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Partner("A"), c.Partner("B")
	if a.Retry != c.Defaults.Retry || a.Timeouts != c.Defaults.Timeouts {
		t.Errorf("partner A does not inherit the defaults block: %+v", a.Settings)
	}
	wantB := RetryPolicies{
		Failed:     Retry{Enabled: true, Strategy: Exponential, Attempts: 3, Initial: 10 * time.Second, Interval: 15 * time.Minute, Duration: 2 * time.Hour},
		Incomplete: Retry{Enabled: true, Strategy: Exponential, Attempts: 5, Initial: time.Minute, Interval: 15 * time.Minute, Duration: 2 * time.Hour},
	}
	if b.Retry != wantB {
		t.Errorf("partner B retry = %+v\nwant %+v", b.Retry, wantB)
	}
	if want := (Timeouts{Connect: time.Second, Transmission: 5 * time.Minute, AsyncMDN: time.Hour}); b.Timeouts != want {
		t.Errorf("partner B timeouts = %+v, want %+v", b.Timeouts, want)
	}
}

// TestLoadRequireFollowsWhatWeSend checks the default of require.signed and
// require.encrypted: what we send the partner, unless the partner or the defaults block sets
// it.
func TestLoadRequireFollowsWhatWeSend(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		defaults string
		partner  string
		want     Require
	}{
		{"signed and encrypted", "", "", Require{Signed: true, Encrypted: true}},
		{"plain", "", "sign: none, encrypt: none", Require{}},
		{"signed only", "", "encrypt: none", Require{Signed: true}},
		{"partner sets it", "", "sign: none, encrypt: none, require: {signed: true}", Require{Signed: true}},
		{"defaults block sets it", "require: {signed: false}", "", Require{Encrypted: true}},
		{"defaults block sign none", "sign: none", "", Require{Encrypted: true}},
		{"compressed", "", "require: {compressed: true}", Require{Signed: true, Encrypted: true, Compressed: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFiles(t)
			gw := newIdentity(t, "GW", 0, time.Time{}, time.Time{})
			f.certs("gw.crt", gw.cert)
			f.pkcs8("gw.key", gw.key)
			f.certs("px.crt", newIdentity(t, "PX", 1, time.Time{}, time.Time{}).cert)
			c, err := f.load("defaults: {" + tc.defaults + "}\n" +
				"stations: [{as2_id: GW, cert: gw.crt, key: gw.key}]\n" +
				"partners: [{as2_id: PX, url: 'http://px.example/as2', certs: [px.crt], " + tc.partner + "}]\n")
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Partners[0].Require; got != tc.want {
				t.Errorf("Require = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestLoadRelativePaths checks that paths are relative to the file's folder, not to the
// working directory.
func TestLoadRelativePaths(t *testing.T) {
	f := newFiles(t)
	gw := newIdentity(t, "GW", 0, time.Time{}, time.Time{})
	f.certs("etc/keys/gw.crt", gw.cert)
	f.pkcs8("etc/keys/gw.key", gw.key)
	f.writeString("etc/as2gate.yaml", "data_dir: ../var/as2gate\nstations: [{as2_id: GW, cert: keys/gw.crt, key: keys/gw.key}]\n")
	t.Chdir(f.dir)
	c, err := Load(filepath.Join("etc", "as2gate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("var", "as2gate"); c.DataDir != want {
		t.Errorf("DataDir = %q, want %q", c.DataDir, want)
	}
	if want := filepath.Join("etc", "keys", "gw.key"); c.Stations[0].KeyFile != want {
		t.Errorf("KeyFile = %q, want %q", c.Stations[0].KeyFile, want)
	}
	if c.Stations[0].Key == nil {
		t.Error("the key was not loaded")
	}

	// The same file loaded from its own folder.
	t.Chdir(filepath.Join(f.dir, "etc"))
	c, err = Load("as2gate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("..", "var", "as2gate"); c.DataDir != want {
		t.Errorf("DataDir = %q, want %q", c.DataDir, want)
	}
}

func TestLoadUnknownKey(t *testing.T) {
	t.Parallel()
	f := newFiles(t)
	_, err := f.load("listen: {as2: ':4080'}\nworkrs: 4\n")
	ps := problemsOf(t, err)
	if len(ps) != 1 {
		t.Fatalf("problems:%s\nwant one", formatProblems(ps))
	}
	p := ps[0]
	if p.Key != "workrs" || p.Line != 2 || !strings.Contains(p.Message, `unknown key (did you mean "workers"?)`) ||
		!strings.Contains(p.Message, "api_tokens, data_dir, database") {
		t.Errorf("problem = %+v", p)
	}
	msg := err.Error()
	if !strings.Contains(msg, "as2gate.yaml:2: workrs: unknown key") {
		t.Errorf("Error() = %q, want the file, line and key", msg)
	}
}

func TestLoadReportsEveryProblemInFileOrder(t *testing.T) {
	t.Parallel()
	f := newFiles(t)
	_, err := f.load(`workers: 0
listen: {as2: "4080"}
partners:
  - as2_id: PX
    url: http://px.example/as2
    sign: none
    encrypt: aes512
    mdn: none
    max_size: 10 parsecs
`)
	ps := problemsOf(t, err)
	want := []struct {
		key  string
		line int
		msg  string
	}{
		{"workers", 1, "0: at least 1 is needed"},
		{"listen.as2", 2, `"4080" is not host:port`},
		{"partners[0].encrypt", 7, `"aes512" is not one of none, 3des, aes128-cbc, aes192-cbc, aes256-cbc, aes128-gcm, aes256-gcm`},
		{"partners[0].max_size", 9, `"10 parsecs" has an unknown unit "parsecs"`},
		// encrypt keeps its default when its value is wrong; the certificate it needs is
		// missing too.
		{"partners[0].certs", 4, "encrypt is aes256-cbc"},
	}
	if len(ps) != len(want) {
		t.Fatalf("problems:%s\nwant %d", formatProblems(ps), len(want))
	}
	for _, w := range want {
		found := false
		for _, p := range ps {
			if p.Key == w.key && p.Line == w.line && strings.Contains(p.Message, w.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem %s (line %d) containing %q in:%s", w.key, w.line, w.msg, formatProblems(ps))
		}
	}
	for i := 1; i < len(ps); i++ {
		if ps[i].Line < ps[i-1].Line {
			t.Errorf("problems not in file order:%s", formatProblems(ps))
		}
	}
	if n := strings.Count(err.Error(), "\n"); n != len(want) {
		t.Errorf("Error() has %d problem lines, want %d:\n%s", n, len(want), err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !strings.Contains(err.Error(), "nope.yaml: no such file") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func TestLoadNotYAML(t *testing.T) {
	t.Parallel()
	f := newFiles(t)
	_, err := f.load("listen: {as2: ':4080'\nworkers: [")
	ps := problemsOf(t, err)
	if len(ps) != 1 || ps[0].Key != "" || !strings.HasPrefix(ps[0].Message, "not valid YAML: ") {
		t.Errorf("problems:%s", formatProblems(ps))
	}
}

func TestLoadNotAMapping(t *testing.T) {
	t.Parallel()
	f := newFiles(t)
	for _, text := range []string{"hello\n", "- a\n- b\n"} {
		_, err := f.load(text)
		ps := problemsOf(t, err)
		if len(ps) != 1 || ps[0].Key != "" || !strings.HasPrefix(ps[0].Message, "expected keys and values") {
			t.Errorf("Load(%q): problems:%s", text, formatProblems(ps))
		}
	}
}

// TestLoadNullItemsKeepTheirPlace checks that an empty list item does not shift the key
// paths of the items after it.
func TestLoadNullItemsKeepTheirPlace(t *testing.T) {
	t.Parallel()
	f := newFiles(t)
	_, err := f.load(`
partners:
  -
  - {as2_id: B, url: "http://b.example/as2", encrypt: aes512, certs: [~, b.crt]}
`)
	ps := problemsOf(t, err)
	want := map[string]string{
		"partners[0].as2_id":   "empty AS2 name",
		"partners[0].url":      "required",
		"partners[1].encrypt":  `"aes512" is not one of`,
		"partners[1].certs[0]": "empty: the path of a certificate file",
		"partners[1].certs[1]": "b.crt: no such file or directory",
	}
	for _, p := range ps {
		if msg, ok := want[p.Key]; ok && strings.Contains(p.Message, msg) {
			delete(want, p.Key)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing %v in:%s", want, formatProblems(ps))
	}
}

func TestLoadSelfReferringAlias(t *testing.T) {
	t.Parallel()
	f := newFiles(t)
	_, err := f.load("partners: &p [{as2_id: A, url: 'http://a.example/', certs: *p}]\n")
	ps := problemsOf(t, err)
	found := false
	for _, p := range ps {
		found = found || strings.HasPrefix(p.Key, "partners[0].certs")
	}
	if !found {
		t.Errorf("problems:%s\nwant one under partners[0].certs", formatProblems(ps))
	}
}

func TestLoadAnchorsAndMerge(t *testing.T) {
	t.Parallel()
	f := newFiles(t)
	gw := newIdentity(t, "GW", 0, time.Time{}, time.Time{})
	f.certs("gw.crt", gw.cert)
	f.pkcs8("gw.key", gw.key)
	c, err := f.load(`
stations: [{as2_id: GW, cert: gw.crt, key: gw.key}]
partners:
  - &plain {as2_id: A, url: "http://a.example/as2", sign: none, encrypt: none, mdn: none, concurrency: 2}
  - {<<: *plain, as2_id: B}
`)
	if err != nil {
		t.Fatal(err)
	}
	if b := c.Partner("B"); b == nil || b.Concurrency != 2 || b.URL != "http://a.example/as2" {
		t.Errorf("merged partner B = %+v", b)
	}
	_, err = f.load("stations: [{as2_id: GW, cert: gw.crt, key: gw.key}]\n" +
		"partners:\n  - &p {as2_id: A, url: 'http://a.example/as2', encrypt: none, mdn: none, sign: none}\n" +
		"  - {<<: *p, as2_id: B, sing: sha1}\n")
	ps := problemsOf(t, err)
	if len(ps) != 1 || ps[0].Key != "partners[1].sing" || !strings.Contains(ps[0].Message, `did you mean "sign"?`) {
		t.Errorf("a misspelt key next to a merge:%s", formatProblems(ps))
	}
}

func TestAuthorization(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		auth Auth
		want string
	}{
		{"none", Auth{}, ""},
		{"basic", Auth{Basic: &BasicAuth{User: "Aladdin", Password: "open sesame"}}, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="},
		{"bearer", Auth{Bearer: "abc.def"}, "Bearer abc.def"},
	}
	for _, tc := range tests {
		if got := tc.auth.Authorization(); got != tc.want {
			t.Errorf("%s: Authorization() = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestEncryptionCertificate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	key := cmstest.Key(t, 2048, 0)
	cert := func(name string, nb, na time.Time, usage x509.KeyUsage) *x509.Certificate {
		return makeCert(t, name, key, nb, na, usage)
	}
	day := 24 * time.Hour
	expired := cert("expired", now.Add(-400*day), now.Add(-day), 0)
	older := cert("older", now.Add(-300*day), now.Add(60*day), 0)
	newer := cert("newer", now.Add(-10*day), now.Add(700*day), 0)
	future := cert("future", now.Add(day), now.Add(800*day), 0)
	signOnly := cert("sign only", now.Add(-day), now.Add(700*day), x509.KeyUsageDigitalSignature)

	tests := []struct {
		name  string
		certs []*x509.Certificate
		want  *x509.Certificate
	}{
		{"none", nil, nil},
		{"only expired", []*x509.Certificate{expired}, nil},
		{"only future", []*x509.Certificate{future}, nil},
		{"newest valid", []*x509.Certificate{expired, older, newer, future}, newer},
		{"order does not matter", []*x509.Certificate{newer, older}, newer},
		{"key encipherment preferred", []*x509.Certificate{older, signOnly}, older},
		{"signing only when nothing else", []*x509.Certificate{expired, signOnly}, signOnly},
	}
	for _, tc := range tests {
		p := &Partner{Certificates: tc.certs}
		if got := p.EncryptionCertificate(now); got != tc.want {
			t.Errorf("%s: EncryptionCertificate = %s, want %s", tc.name, subject(got), subject(tc.want))
		}
	}
}

func TestSafeName(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, prefix string }{
		{"PARTNERX", "PARTNERX"},
		{"partner-x_1.eu", "partner-x_1.eu"},
		{"Partner Y", "Partner_Y-"},
		{"../etc/passwd", "_._etc_passwd-"},
		{"..", "_.-"},
		{"a/b", "a_b-"},
		{"", "-"},
	}
	seen := map[string]string{}
	for _, tc := range tests {
		got := safeName(tc.in)
		if tc.in == tc.prefix && got != tc.in || !strings.HasPrefix(got, tc.prefix) {
			t.Errorf("safeName(%q) = %q, want %q...", tc.in, got, tc.prefix)
		}
		if strings.ContainsAny(got, `/\`) || got == "." || got == ".." || strings.HasPrefix(got, ".") {
			t.Errorf("safeName(%q) = %q is not a safe file name", tc.in, got)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("safeName(%q) = safeName(%q) = %q", tc.in, other, got)
		}
		seen[got] = tc.in
	}
	if safeName("A B") == safeName("A_B") {
		t.Error(`"A B" and "A_B" share a name`)
	}
}

func TestFormatSizeRoundTrips(t *testing.T) {
	t.Parallel()
	for _, n := range []int64{1, 1000, 1024, 1536, 1 << 20, 500_000_000, 1 << 30, 3 << 40, 1<<40 + 1} {
		s := FormatSize(n)
		back, err := ParseSize(s)
		if err != nil || back != n {
			t.Errorf("ParseSize(FormatSize(%d) = %q) = %d, %v", n, s, back, err)
		}
	}
	if s := FormatSize(1 << 30); s != "1GiB" {
		t.Errorf("FormatSize(1<<30) = %q", s)
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{"1048576", 1 << 20, ""},
		{"1GiB", 1 << 30, ""},
		{"1 GiB", 1 << 30, ""},
		{"1gib", 1 << 30, ""},
		{"500MB", 500_000_000, ""},
		{"64KiB", 64 << 10, ""},
		{"2TB", 2_000_000_000_000, ""},
		{"10B", 10, ""},
		{"0", 0, ""},
		{"", 0, "is not a size"},
		{"GiB", 0, "is not a size"},
		{"-1", 0, "is not a size"},
		{"1.5GiB", 0, "1536MiB"},
		{"1 parsec", 0, `unknown unit "parsec"`},
		{"9999999999TiB", 0, "too large"},
		{"99999999999999999999", 0, "too large"},
	}
	for _, tc := range tests {
		got, err := ParseSize(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseSize(%q) error = %v, want one containing %q", tc.in, err, tc.err)
		}
	}
}

func TestProblemError(t *testing.T) {
	t.Parallel()
	e := &ValidationError{File: "gw.yaml", Problems: []Problem{
		{Key: "workers", Line: 3, Message: "0: at least 1 is needed"},
		{Key: "stations[0].key", Message: "required"},
	}}
	want := "config: gw.yaml is invalid (2 problems)\n  gw.yaml:3: workers: 0: at least 1 is needed\n  stations[0].key: required"
	if got := e.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	e = &ValidationError{Problems: []Problem{{Key: "workers", Line: 3, Message: "bad"}}}
	if got, want := e.Error(), "config: invalid configuration (1 problem)\n  workers: bad"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestCertificatesOfConfigBuiltInGo checks that a Config built in Go with loaded values and
// no files validates.
func TestValidateConfigBuiltInGo(t *testing.T) {
	t.Parallel()
	gw := newIdentity(t, "GW", 0, time.Time{}, time.Time{})
	px := newIdentity(t, "PX", 1, time.Time{}, time.Time{})
	c := Default()
	c.Stations = []*Station{{AS2ID: "GW", Identity: Identity{Certificate: gw.cert, Key: gw.key}}}
	c.Partners = []*Partner{{AS2ID: "PX", URL: "http://px.example/as2", Certificates: []*x509.Certificate{px.cert}, Settings: DefaultSettings()}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Partners[0].Station != "GW" {
		t.Errorf("Validate did not give the partner the only station: %q", c.Partners[0].Station)
	}
	if !bytes.Equal(c.Stations[0].Certificate.Raw, gw.cert.Raw) {
		t.Error("Validate replaced the station certificate")
	}
}
