package config

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/cms"
)

func TestGenerateIdentity(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "keys")
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	certPath, keyPath, err := GenerateIdentity(dir, "My Gateway", now)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(certPath) != dir || !strings.HasPrefix(filepath.Base(certPath), "My_Gateway-") || !strings.HasSuffix(certPath, ".crt") {
		t.Errorf("certificate path %s", certPath)
	}
	if strings.TrimSuffix(certPath, ".crt") != strings.TrimSuffix(keyPath, ".key") {
		t.Errorf("key %s and certificate %s are not named alike", keyPath, certPath)
	}
	for path, mode := range map[string]os.FileMode{keyPath: 0o600, certPath: 0o644, dir: 0o700} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != mode {
			t.Errorf("%s has mode %v, want %v", path, st.Mode().Perm(), mode)
		}
	}

	block, _ := pem.Decode(mustRead(t, keyPath))
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("the key file is not PKCS#8 PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok || rk.N.BitLen() != IdentityKeyBits {
		t.Fatalf("key %T, want RSA-%d", key, IdentityKeyBits)
	}
	certs, err := loadCertificates(certPath)
	if err != nil {
		t.Fatal(err)
	}
	cert := certs[0]
	if cert.Subject.CommonName != "My Gateway" {
		t.Errorf("common name %q", cert.Subject.CommonName)
	}
	if !cert.NotBefore.Equal(now.Add(-time.Hour)) || !cert.NotAfter.Equal(now.Add(IdentityValidity)) {
		t.Errorf("valid %v to %v", cert.NotBefore, cert.NotAfter)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment {
		t.Errorf("key usage %v", cert.KeyUsage)
	}
	if cert.IsCA || len(cert.SubjectKeyId) != 20 || cert.SerialNumber.Sign() <= 0 {
		t.Errorf("IsCA %v, subject key id %x, serial %v", cert.IsCA, cert.SubjectKeyId, cert.SerialNumber)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}

	// The identity works as a station: it signs and decrypts.
	f := files{tb: t, dir: filepath.Dir(dir)}
	c, err := f.load("stations: [{as2_id: My Gateway, cert: " + certPath + ", key: " + keyPath + "}]\n")
	if err != nil {
		t.Fatal(err)
	}
	st := c.Stations[0]
	var env, plain bytes.Buffer
	if err := cms.Encrypt(&env, strings.NewReader("payload"), -1, []*x509.Certificate{st.Certificate}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Decrypt(&plain, &env, st.Recipients(), nil); err != nil || plain.String() != "payload" {
		t.Errorf("decrypting with the generated key: %q, %v", plain.String(), err)
	}
	sig, err := cms.Sign([]byte("payload"), st.Certificate, st.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := cms.ParseSignedData(sig)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sd.Verify(nil, []*x509.Certificate{cert}); err != nil {
		t.Errorf("verifying a signature of the generated key: %v", err)
	}

	// Never overwritten, and the name must be an AS2 name.
	if _, _, err := GenerateIdentity(dir, "My Gateway", now); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second GenerateIdentity: %v", err)
	}
	if _, _, err := GenerateIdentity(dir, "", now); err == nil || !strings.Contains(err.Error(), "empty AS2 name") {
		t.Errorf("GenerateIdentity with an empty id: %v", err)
	}
}

func TestDefaultStation(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	now := time.Now()
	st, created, err := DefaultStation(dataDir, now)
	if err != nil {
		t.Fatal(err)
	}
	if !created || st.AS2ID != DefaultStationID || st.Key == nil || st.Certificate == nil {
		t.Fatalf("first start: created %v, station %+v", created, st)
	}
	if want := filepath.Join(dataDir, "keys", "AS2GATE.key"); st.KeyFile != want {
		t.Errorf("KeyFile = %s, want %s", st.KeyFile, want)
	}

	again, created, err := DefaultStation(dataDir, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if created || !again.Certificate.Equal(st.Certificate) {
		t.Error("a later start did not reuse the identity")
	}

	// A key without its certificate (a crash between the two files) gets a certificate.
	if err := os.Remove(st.CertFile); err != nil {
		t.Fatal(err)
	}
	healed, created, err := DefaultStation(dataDir, now)
	if err != nil {
		t.Fatal(err)
	}
	if !created || healed.Certificate.Equal(st.Certificate) || !publicKeysEqual(healed.Key.Public(), st.Key.Public()) {
		t.Error("a key without certificate did not get a new certificate for the same key")
	}

	// A certificate without its key is not replaced.
	if err := os.Remove(st.KeyFile); err != nil {
		t.Fatal(err)
	}
	if _, _, err := DefaultStation(dataDir, now); err == nil || !strings.Contains(err.Error(), "exists without its key") {
		t.Errorf("certificate without key: %v", err)
	}
}

func TestEnsureStation(t *testing.T) {
	t.Parallel()
	f := newFiles(t)
	// A key in place of a generated one keeps the test fast; its certificate is made.
	f.pkcs8("data/keys/AS2GATE.key", newIdentity(t, "AS2GATE", 0, time.Time{}, time.Time{}).key)
	px := newIdentity(t, "PX", 1, time.Time{}, time.Time{})
	f.certs("px.crt", px.cert)
	c, err := f.load("data_dir: data\npartners:\n  - {as2_id: PX, url: 'http://px.example/as2', certs: [px.crt]}\n" +
		"  - {as2_id: PY, station: AS2GATE, url: 'http://py.example/as2', certs: [px.crt]}\n")
	if err != nil {
		t.Fatal(err)
	}
	st, created, err := c.EnsureStation(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st == nil || !created || len(c.Stations) != 1 || c.Station(DefaultStationID) != st {
		t.Fatalf("EnsureStation = %v, %v; stations %v", st, created, c.Stations)
	}
	for _, p := range c.Partners {
		if p.Station != DefaultStationID {
			t.Errorf("partner %s has station %q", p.AS2ID, p.Station)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate after EnsureStation: %v", err)
	}
	if st, _, err := c.EnsureStation(time.Now()); st != nil || err != nil {
		t.Errorf("EnsureStation with a station = %v, %v; want nil", st, err)
	}
}

func TestEnsureAPIToken(t *testing.T) {
	t.Parallel()
	c := Default()
	c.DataDir = t.TempDir()
	tok, created, err := c.EnsureAPIToken()
	if err != nil {
		t.Fatal(err)
	}
	if !created || len(tok) != 43 || len(c.APITokens) != 1 || c.APITokens[0] != tok {
		t.Fatalf("EnsureAPIToken = %q, %v; tokens %v", tok, created, c.APITokens)
	}
	st, err := os.Stat(filepath.Join(c.KeysDir(), "api-token"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("token file: %v, %v", st, err)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}

	c2 := Default()
	c2.DataDir = c.DataDir
	tok2, created, err := c2.EnsureAPIToken()
	if err != nil || created || tok2 != tok {
		t.Errorf("second start: %q, %v, %v; want the same token, not created", tok2, created, err)
	}
	if tok3, _, _ := c2.EnsureAPIToken(); tok3 != "" {
		t.Errorf("EnsureAPIToken with tokens configured = %q, want \"\"", tok3)
	}
}

func TestWriteNewNeverOverwrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := writeNew(p, []byte("one"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeNew(p, []byte("two"), 0o600); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("second writeNew: %v", err)
	}
	if b := mustRead(t, p); string(b) != "one" {
		t.Errorf("content %q", b)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Errorf("temporary files left behind: %v, %v", entries, err)
	}
}
