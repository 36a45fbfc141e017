package config

import (
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestWithEntries(t *testing.T) {
	f := newFiles(t)
	st := newIdentity(t, "GATEWAY", 0, time.Time{}, time.Time{})
	acme := newIdentity(t, "ACME", 1, time.Time{}, time.Time{})
	f.certs("gw.pem", st.cert)
	f.pkcs8("gw.key", st.key)
	base, err := f.load(`
data_dir: data
defaults: {sign: sha256, encrypt: none}
stations: [{as2_id: GATEWAY, cert: gw.pem, key: gw.key}]
partners:
  - {as2_id: FILEPARTNER, url: "https://file.example/as2", encrypt: none, sign: none, mdn_signed: false}
profiles: [{name: base, headers: {X-A: "1"}}]
`)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/acme.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: acme.cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	merged, err := base.WithEntries([]Entry{
		{Kind: EntryPartner, Name: "ACME", Dir: dir, Document: []byte("url: https://acme.example/as2\ncerts: [acme.pem]\nheaders: {X-Partner: acme}\n")},
		{Kind: EntryProfile, Name: "invoices", Document: []byte("name: invoices\nheaders: {X-Biz: invoice}\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := merged.Partner("ACME")
	if p == nil || p.Station != "GATEWAY" || len(p.Certificates) != 1 || !p.Certificates[0].Equal(acme.cert) {
		t.Fatalf("merged partner = %+v, want ACME on the only station with its certificate", p)
	}
	// Settings the entry does not set come from the file's defaults block, and require
	// follows them as for a partner of the file.
	if p.Encrypt != 0 || !p.Require.Signed || p.Require.Encrypted {
		t.Errorf("ACME settings: encrypt %v, require %+v; want the defaults' encrypt none and require signed only", p.Encrypt, p.Require)
	}
	if merged.Profile("invoices") == nil || merged.Profile("base") == nil {
		t.Errorf("profiles = %v, want base and invoices", merged.ProfileNames())
	}
	if base.Partner("ACME") != nil || len(base.Profiles) != 1 {
		t.Error("WithEntries changed the configuration it started from")
	}
	if merged.Partner("FILEPARTNER") == base.Partner("FILEPARTNER") {
		t.Error("the merged configuration shares a partner record with the one in use")
	}
}

func TestWithEntriesProblems(t *testing.T) {
	f := newFiles(t)
	base, err := f.load("data_dir: data\nstations: []\n")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		entries []Entry
		want    []string // key: message fragment
	}{
		{"bad url", []Entry{{Kind: EntryPartner, Name: "ACME", Document: []byte("url: ftp://acme\nsign: none\nencrypt: none\nmdn: none\n")}},
			[]string{"partners[ACME].url: \"ftp://acme\" is not an absolute http:// or https:// URL"}},
		{"unknown key", []Entry{{Kind: EntryPartner, Name: "ACME", Document: []byte("url: https://a.example\nsing: sha256\n")}},
			[]string{"partners[ACME].sing: unknown key (did you mean \"sign\"?)"}},
		{"bad algorithm", []Entry{{Kind: EntryPartner, Name: "ACME", Document: []byte("url: https://a.example\nencrypt: rot13\n")}},
			[]string{"partners[ACME].encrypt: \"rot13\" is not one of"}},
		{"name differs", []Entry{{Kind: EntryProfile, Name: "a", Document: []byte("name: b\nheaders: {X-A: b}\n")}},
			[]string{"profiles[a].name: \"b\" differs from the entry's name \"a\""}},
		{"missing certificate", []Entry{{Kind: EntryPartner, Name: "ACME", Dir: t.TempDir(), Document: []byte("url: https://a.example\ncerts: [gone.pem]\n")}},
			[]string{"partners[ACME].certs[0]: "}},
		{"host path", []Entry{{Kind: EntryPartner, Name: "ACME", Dir: t.TempDir(), Document: []byte("url: https://a.example\nsign: none\nencrypt: none\nmdn: none\nauth: {bearer_file: /etc/passwd}\n")}},
			[]string{"partners[ACME]: \"/etc/passwd\": an entry kept in the database names only files uploaded with it"}},
		{"parent folder", []Entry{{Kind: EntryPartner, Name: "ACME", Dir: t.TempDir(), Document: []byte("url: https://a.example\ncerts: [../other/cert.pem]\n")}},
			[]string{"partners[ACME]: \"../other/cert.pem\": an entry kept in the database names only files"}},
		{"not yaml", []Entry{{Kind: EntryStation, Name: "S", Document: []byte("as2_id: [")}},
			[]string{"stations[S]: not valid YAML"}},
		{"station key", []Entry{{Kind: EntryStation, Name: "S", Document: []byte("as2_id: S\n")}},
			[]string{"stations[S].key: required"}},
		{"duplicate profile", []Entry{
			{Kind: EntryProfile, Name: "a", Document: []byte("headers: {X-A: b}\n")},
			{Kind: EntryProfile, Name: "a", Document: []byte("headers: {X-A: c}\n")},
		}, []string{"profiles[a].name: \"a\" is already the name of profiles[0]"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := base.WithEntries(tc.entries)
			ps := problemsOf(t, err)
			text := formatProblems(ps)
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("problems:\n%s\nwant one starting %q", text, w)
				}
			}
		})
	}
}

func TestParseUploads(t *testing.T) {
	f := newFiles(t)
	id := newIdentity(t, "UP", 2, time.Time{}, time.Time{})
	other := newIdentity(t, "OTHER", 3, time.Time{}, time.Time{})
	pemCert := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.cert.Raw})
	for name, data := range map[string][]byte{"pem": pemCert, "der": id.cert.Raw} {
		certs, err := ParseCertificates(data, "")
		if err != nil || len(certs) != 1 || !certs[0].Equal(id.cert) {
			t.Errorf("%s: %v, %v", name, certs, err)
		}
	}
	p12, err := os.ReadFile(f.pkcs12("id.p12", id.key, id.cert, nil, "pw"))
	if err != nil {
		t.Fatal(err)
	}
	if certs, err := ParseCertificates(p12, "pw"); err != nil || !certs[0].Equal(id.cert) {
		t.Errorf("PKCS#12: %v, %v", certs, err)
	}
	if _, err := ParseCertificates(p12, "wrong"); err == nil || !strings.Contains(err.Error(), "password") {
		t.Errorf("PKCS#12 with a wrong password: %v", err)
	}
	if _, err := ParseCertificates([]byte("hello"), ""); err == nil {
		t.Error("garbage parsed as a certificate")
	}
	if c, _, err := ParseIdentity(nil, p12, "pw", true); err != nil || !c.Equal(id.cert) {
		t.Errorf("identity from PKCS#12: %v, %v", c, err)
	}
	key, _ := os.ReadFile(f.pkcs8("id.key", id.key))
	if c, _, err := ParseIdentity(pemCert, key, "", false); err != nil || !c.Equal(id.cert) {
		t.Errorf("identity from PEM: %v, %v", c, err)
	}
	otherKey, _ := os.ReadFile(f.pkcs8("other.key", other.key))
	if _, _, err := ParseIdentity(pemCert, otherKey, "", false); err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("mismatched key: %v", err)
	}
}

// BenchmarkWithEntries measures a change's validation: the file and 200 partner entries,
// each with a certificate file, checked together.
func BenchmarkWithEntries(b *testing.B) {
	f := newFiles(b)
	st := newIdentity(b, "GATEWAY", 0, time.Time{}, time.Time{})
	pt := newIdentity(b, "PARTNER", 1, time.Time{}, time.Time{})
	f.certs("gw.pem", st.cert)
	f.pkcs8("gw.key", st.key)
	f.certs("entries/p.pem", pt.cert)
	base, err := f.load("data_dir: data\nstations: [{as2_id: GATEWAY, cert: gw.pem, key: gw.key}]\n")
	if err != nil {
		b.Fatal(err)
	}
	entries := make([]Entry, 200)
	for i := range entries {
		name := fmt.Sprintf("P%03d", i)
		entries[i] = Entry{Kind: EntryPartner, Name: name, Dir: f.path("entries"),
			Document: []byte("url: https://" + name + ".example/as2\ncerts: [p.pem]\nheaders: {X-Partner: " + name + "}\n")}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := base.WithEntries(entries); err != nil {
			b.Fatal(err)
		}
	}
}
