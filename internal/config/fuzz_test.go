package config

import (
	"os"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary text to the configuration reader: it must report problems,
// never panic or hang, whatever the YAML holds (anchors, aliases, merges, wrong types).
func FuzzParse(f *testing.F) {
	full, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(full),
		"",
		"workers: many\nlisten: ':4080'\n",
		"partners: [{<<: &p {as2_id: A}, url: x}, *p, [1]]\n",
		"a: &a [*a]\n",
		"defaults: {retry: {failed: {strategy: fixed, interval: 1s, duration: 0s}}}\n",
		"stations: [{as2_id: \"\\x01\"}]\npartners: {as2_id: B}\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parse(data, dir)
		if (c == nil) == (err == nil) {
			t.Fatalf("parse returned config %v and error %v", c != nil, err)
		}
		if err != nil {
			_ = err.Error()
		}
	})
}

// FuzzParseKey feeds arbitrary bytes to the key and certificate readers, which read files
// an operator may have mixed up (a PKCS#12 file named .key, a truncated download).
func FuzzParseKey(f *testing.F) {
	id := newIdentity(f, "F", 0, time.Time{}, time.Time{})
	fs := newFiles(f)
	f.Add(mustRead(f, fs.pkcs8("k.pem", id.key)))
	f.Add(mustRead(f, fs.encryptedPKCS8("e.pem", id.key, "pw")))
	f.Add(mustRead(f, fs.pkcs12("k.p12", id.key, id.cert, nil, "pw")))
	f.Add(id.cert.Raw)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, p12 := range []bool{false, true} {
			if lk, err := parseKey(data, "pw", true, p12); err == nil && lk.key == nil {
				t.Fatal("no key and no error")
			}
		}
		if certs, err := parseCertificates(data); err == nil && len(certs) == 0 {
			t.Fatal("no certificate and no error")
		}
	})
}
