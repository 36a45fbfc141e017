package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/youmark/pkcs8"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/as2gate/as2gate/cms/cmstest"
)

func TestLoadKeyFormats(t *testing.T) {
	t.Parallel()
	f := newFiles(t)
	id := newIdentity(t, "K", 0, time.Time{}, time.Time{})
	ca := cmstest.New(t, "K CA", &cmstest.Options{IsCA: true})
	_, ecKey := newECDSA(t, "EC")

	pkcs8DER, err := x509.MarshalPKCS8PrivateKey(id.key)
	if err != nil {
		t.Fatal(err)
	}
	scrypt, err := pkcs8.MarshalPrivateKey(id.key, []byte("pw"), &pkcs8.Opts{
		Cipher: pkcs8.AES256GCM,
		KDFOpts: pkcs8.ScryptOpts{
			CostParameter: 1 << 10, BlockSize: 8, ParallelizationParameter: 1, SaltSize: 16,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	des3, err := pkcs8.MarshalPrivateKey(id.key, []byte("pw"), &pkcs8.Opts{
		Cipher:  pkcs8.TripleDESCBC,
		KDFOpts: pkcs8.PBKDF2Opts{SaltSize: 8, IterationCount: 2048, HMACHash: crypto.SHA1},
	})
	if err != nil {
		t.Fatal(err)
	}
	legacyP12, err := pkcs12.LegacyDES.Encode(id.key, id.cert, []*x509.Certificate{ca.Certificate}, "pw")
	if err != nil {
		t.Fatal(err)
	}
	noPasswordP12, err := pkcs12.Passwordless.Encode(id.key, id.cert, nil, "")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		file     string
		password string // "" means no key_password_file
		want     crypto.PublicKey
		chain    int // certificates after ours in a PKCS#12 file
	}{
		{"PKCS#1 PEM", f.pkcs1("k1.pem", id.key), "", id.key.Public(), 0},
		{"PKCS#8 PEM", f.pkcs8("k8.pem", id.key), "", id.key.Public(), 0},
		{"encrypted PKCS#8 PEM, PBKDF2 AES-256-CBC", f.encryptedPKCS8("k8e.pem", id.key, "pw"), "pw", id.key.Public(), 0},
		{"encrypted PKCS#8 PEM, scrypt AES-256-GCM", f.write("k8s.pem", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: scrypt})), "pw", id.key.Public(), 0},
		{"encrypted PKCS#8 PEM, 3DES", f.write("k8d.pem", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: des3})), "pw", id.key.Public(), 0},
		{"password file with an unencrypted key", f.pkcs8("k8p.pem", id.key), "ignored", id.key.Public(), 0},
		{"PKCS#8 DER", f.write("k8.der", pkcs8DER), "", id.key.Public(), 0},
		{"PKCS#1 DER", f.write("k1.der", x509.MarshalPKCS1PrivateKey(id.key)), "", id.key.Public(), 0},
		{"encrypted PKCS#8 DER", f.write("k8e.der", scrypt), "pw", id.key.Public(), 0},
		{"PEM with the certificate first", f.write("both.pem", append(pemCert(id.cert), mustRead(t, f.pkcs8("tmp.pem", id.key))...)), "", id.key.Public(), 0},
		{"EC PRIVATE KEY", f.write("ec.pem", ecPEM(t, ecKey)), "", ecKey.Public(), 0},
		{"PKCS#12 modern", f.pkcs12("k.p12", id.key, id.cert, nil, "pw"), "pw", id.key.Public(), 0},
		{"PKCS#12 legacy 3DES with a chain", f.write("k.pfx", legacyP12), "pw", id.key.Public(), 1},
		{"PKCS#12 without password", f.write("nopw.p12", noPasswordP12), "", id.key.Public(), 0},
		{"PKCS#12 without its extension", f.write("k12.bin", legacyP12), "pw", id.key.Public(), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lk, err := loadKey(tc.file, tc.password, tc.password != "")
			if err != nil {
				t.Fatal(err)
			}
			if !publicKeysEqual(lk.key.Public(), tc.want) {
				t.Error("loaded a different key")
			}
			if len(lk.chain) != tc.chain {
				t.Errorf("chain of %d certificates, want %d", len(lk.chain), tc.chain)
			}
			if lk.cert != nil && !lk.cert.Equal(id.cert) {
				t.Error("the PKCS#12 file gave another certificate")
			}
		})
	}
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ecPEM(t *testing.T, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func TestLoadCertificates(t *testing.T) {
	t.Parallel()
	f := newFiles(t)
	a := newIdentity(t, "A", 0, time.Time{}, time.Time{})
	b := newIdentity(t, "B", 1, time.Time{}, time.Time{})
	tests := []struct {
		name string
		data []byte
		want []*x509.Certificate
		err  string
	}{
		{"one PEM", pemCert(a.cert), []*x509.Certificate{a.cert}, ""},
		{"two PEM with text and a key between", append(append([]byte("subject=A\n"), pemCert(a.cert)...),
			append(mustRead(t, f.pkcs8("a.key", a.key)), pemCert(b.cert)...)...), []*x509.Certificate{a.cert, b.cert}, ""},
		{"DER", a.cert.Raw, []*x509.Certificate{a.cert}, ""},
		{"two DER concatenated", append(append([]byte{}, a.cert.Raw...), b.cert.Raw...), []*x509.Certificate{a.cert, b.cert}, ""},
		{"PEM without certificate", mustRead(t, f.pkcs8("b.key", b.key)), nil, "no CERTIFICATE block in the PEM file (found PRIVATE KEY)"},
		{"broken PEM certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0x03, 1, 2, 3}}), nil, "certificate 1:"},
		{"text", []byte("not a certificate"), nil, "neither a PEM nor a DER certificate"},
		{"empty", []byte("\n"), nil, "the file is empty"},
	}
	for i, tc := range tests {
		path := f.write(fmt.Sprintf("c%d", i), tc.data)
		got, err := loadCertificates(path)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), path) {
				t.Errorf("%s: error %v, want one naming the file and containing %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: %d certificates, want %d", tc.name, len(got), len(tc.want))
			continue
		}
		for j := range got {
			if !got[j].Equal(tc.want[j]) {
				t.Errorf("%s: certificate %d differs", tc.name, j)
			}
		}
	}
}

func TestReadSecret(t *testing.T) {
	t.Parallel()
	f := newFiles(t)
	tests := []struct{ content, want, err string }{
		{"pw", "pw", ""},
		{"pw\n", "pw", ""},
		{"pw\r\n", "pw", ""},
		{" pw with spaces \n", " pw with spaces ", ""},
		{"pw\n\n", "pw\n", ""},
		{"", "", "is empty"},
		{"\n", "", "is empty"},
		{strings.Repeat("x", maxSecretFile+1), "", "is larger than 64KiB"},
	}
	for i, tc := range tests {
		got, err := readSecret(f.writeString(fmt.Sprintf("s%d", i), tc.content))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("readSecret(%q): error %v, want %q", tc.content, err, tc.err)
			}
		} else if err != nil || got != tc.want {
			t.Errorf("readSecret(%q) = %q, %v; want %q", tc.content, got, err, tc.want)
		}
	}
	if _, err := readSecret(f.dir); err == nil || !strings.Contains(err.Error(), "is a folder") {
		t.Errorf("readSecret(folder): %v", err)
	}
}

// TestTLSFromConfig makes a real TLS exchange on loopback with the listener and partner
// settings of a loaded configuration: the server certificate is trusted through tls.ca, and
// the listener demands a client certificate from client_ca, which the station presents.
func TestTLSFromConfig(t *testing.T) {
	t.Parallel()
	f := newFiles(t)
	serverCA := cmstest.New(t, "server CA", &cmstest.Options{IsCA: true})
	server := cmstest.New(t, "127.0.0.1", &cmstest.Options{
		Parent: serverCA, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	clientCA := cmstest.New(t, "client CA", &cmstest.Options{IsCA: true})
	client := cmstest.New(t, "GW client", &cmstest.Options{
		Parent: clientCA, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	stranger := cmstest.New(t, "stranger", &cmstest.Options{ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	gw := newIdentity(t, "GW", 0, time.Time{}, time.Time{})
	f.certs("server.crt", server.Certificate)
	f.pkcs8("server.key", server.Key)
	f.certs("server-ca.crt", serverCA.Certificate)
	f.certs("client-ca.crt", clientCA.Certificate)
	f.certs("client.crt", client.Certificate)
	f.encryptedPKCS8("client.key", client.Key, "tls pw")
	f.writeString("client.pass", "tls pw\n")
	f.certs("stranger.crt", stranger.Certificate)
	f.pkcs8("stranger.key", stranger.Key)
	f.certs("gw.crt", gw.cert)
	f.pkcs8("gw.key", gw.key)

	c, err := f.load(`
tls: {as2: {cert: server.crt, key: server.key, client_ca: client-ca.crt}}
stations:
  - {as2_id: GW, cert: gw.crt, key: gw.key, tls_cert: client.crt, tls_key: client.key, tls_key_password_file: client.pass}
  - {as2_id: OTHER, cert: gw.crt, key: gw.key, tls_cert: stranger.crt, tls_key: stranger.key}
  - {as2_id: NOCERT, cert: gw.crt, key: gw.key}
partners:
  - {as2_id: PX, station: GW, url: "https://127.0.0.1/as2", sign: none, encrypt: none, mdn: none, tls: {ca: server-ca.crt}}
  - {as2_id: PY, station: GW, url: "https://127.0.0.1/as2", sign: none, encrypt: none, mdn: none}
`)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	srv.TLS = c.TLS.AS2.ServerConfig()
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.StartTLS()
	defer srv.Close()

	get := func(p *Partner, st *Station) (string, error) {
		tr := &http.Transport{TLSClientConfig: p.TLSConfig(st)}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get(srv.URL)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	px, py := c.Partner("PX"), c.Partner("PY")
	if got, err := get(px, c.Station("GW")); err != nil || got != "GW client" {
		t.Errorf("pinned CA and client certificate: %q, %v", got, err)
	}
	if _, err := get(px, c.Station("OTHER")); err == nil {
		t.Error("a client certificate from another CA was accepted")
	}
	if _, err := get(px, c.Station("NOCERT")); err == nil {
		t.Error("no client certificate was accepted")
	}
	if _, err := get(py, c.Station("GW")); err == nil {
		t.Error("the server certificate was trusted without tls.ca")
	}
	if cfg := px.TLSConfig(nil); cfg.MinVersion < 0x0303 || cfg.Certificates != nil {
		t.Errorf("TLSConfig(nil) = %+v: want TLS 1.2 at least and no client certificate", cfg)
	}
}

// TestOpenSSLKeys loads keys and PKCS#12 files written by the openssl command line tool,
// which is what operators use to make and convert them.
func TestOpenSSLKeys(t *testing.T) {
	t.Parallel()
	openssl := needOpenSSL(t)
	f := newFiles(t)
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(openssl, args...)
		cmd.Dir = f.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	f.writeString("pw", "open sesame\n")
	run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "plain.key")
	run("req", "-new", "-x509", "-key", "plain.key", "-subj", "/CN=OPENSSL", "-days", "30", "-out", "cert.pem")
	run("x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der")
	run("pkcs8", "-topk8", "-in", "plain.key", "-passout", "file:pw", "-out", "aes.key") // PBES2, AES-256-CBC, PBKDF2-SHA256
	run("pkcs8", "-topk8", "-in", "plain.key", "-passout", "file:pw", "-v2", "des3", "-out", "des3.key")
	run("pkcs8", "-topk8", "-in", "plain.key", "-passout", "file:pw", "-scrypt", "-out", "scrypt.key")
	run("pkcs8", "-topk8", "-in", "plain.key", "-passout", "file:pw", "-outform", "DER", "-out", "aes.der")
	run("rsa", "-in", "plain.key", "-traditional", "-out", "pkcs1.key")
	run("rsa", "-in", "plain.key", "-traditional", "-aes256", "-passout", "file:pw", "-out", "legacy.key")
	run("pkcs12", "-export", "-inkey", "plain.key", "-in", "cert.pem", "-passout", "file:pw", "-out", "modern.p12")
	run("pkcs12", "-export", "-inkey", "plain.key", "-in", "cert.pem", "-passout", "file:pw",
		"-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1", "-out", "legacy.pfx")

	tests := []struct {
		name, station string
		err           string
	}{
		{"PKCS#8", "cert: cert.pem, key: plain.key", ""},
		{"DER certificate", "cert: cert.der, key: plain.key", ""},
		{"encrypted PKCS#8 AES", "cert: cert.pem, key: aes.key, key_password_file: pw", ""},
		{"encrypted PKCS#8 3DES", "cert: cert.pem, key: des3.key, key_password_file: pw", ""},
		{"encrypted PKCS#8 scrypt", "cert: cert.pem, key: scrypt.key, key_password_file: pw", ""},
		{"encrypted PKCS#8 DER", "cert: cert.pem, key: aes.der, key_password_file: pw", ""},
		{"PKCS#1", "cert: cert.pem, key: pkcs1.key", ""},
		{"PKCS#12", "key: modern.p12, key_password_file: pw", ""},
		{"PKCS#12 legacy", "key: legacy.pfx, key_password_file: pw", ""},
		{"legacy PEM encryption", "cert: cert.pem, key: legacy.key, key_password_file: pw", "legacy OpenSSL PEM encryption"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(f.writeString(fmt.Sprintf("c%d.yaml", i), "stations: [{as2_id: GW, "+tc.station+"}]\n"))
			switch {
			case tc.err == "" && err != nil:
				t.Error(err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

// needOpenSSL returns the openssl program, skipping the test when it is missing outside CI
// and failing it in CI, where scripts/testdeps.sh installs it.
func needOpenSSL(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("openssl")
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("openssl is not installed; scripts/testdeps.sh should have installed it")
	}
	t.Skip("openssl is not installed (run `make testdeps`)")
	return ""
}
