package config

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/youmark/pkcs8"
)

// newValidateFixture writes the files the validation cases name.
func newValidateFixture(t *testing.T) files {
	t.Helper()
	f := newFiles(t)
	gw := newIdentity(t, "GW", 0, time.Time{}, time.Time{})
	px := newIdentity(t, "PX", 1, time.Time{}, time.Time{})
	other := newIdentity(t, "OTHER", 2, time.Time{}, time.Time{})
	f.certs("keys/gw.crt", gw.cert)
	f.pkcs8("keys/gw.key", gw.key)
	f.pkcs12("keys/gw.p12", gw.key, gw.cert, nil, "secret")
	f.encryptedPKCS8("keys/enc.key", gw.key, "secret")
	f.certs("keys/px.crt", px.cert)
	f.pkcs8("keys/other.key", other.key)
	ecCert, ecKey := newECDSA(t, "EC")
	f.certs("keys/ec.crt", ecCert)
	f.pkcs8("keys/ec.key", ecKey)
	f.writeString("secrets/pw", "secret\n")
	f.writeString("secrets/hook", "0123456789abcdef0123456789abcdef\n")
	f.writeString("secrets/wrong", "not the password\n")
	f.writeString("secrets/empty", "\n")
	f.writeString("secrets/spaced-token", "two words\n")
	f.writeString("keys/junk.pem", "hello\n")
	f.write("keys/legacy.key", pem.EncodeToMemory(&pem.Block{
		Type:    "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"},
		Bytes:   make([]byte, 64),
	}))
	f.write("keys/truncated-enc.key", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: truncatedEncryptedPKCS8(t, gw)}))
	return f
}

// truncatedEncryptedPKCS8 is an encrypted PKCS#8 key whose ciphertext is one byte short of a
// whole number of blocks: github.com/youmark/pkcs8 panics on it.
func truncatedEncryptedPKCS8(t *testing.T, id identity) []byte {
	t.Helper()
	der, err := pkcs8.MarshalPrivateKey(id.key, []byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		Data      []byte
	}
	if _, err := asn1.Unmarshal(der, &info); err != nil {
		t.Fatal(err)
	}
	info.Data = info.Data[:len(info.Data)-1]
	der, err = asn1.Marshal(info)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

const (
	validStation = "stations: [{as2_id: GW, cert: keys/gw.crt, key: keys/gw.key}]\n"
	validPartner = "partners: [{as2_id: PX, url: 'http://px.example/as2', certs: [keys/px.crt]}]\n"
)

// withTop is a valid configuration with top-level keys added.
func withTop(s string) string { return s + "\n" + validStation + validPartner }

// withStation is a valid configuration whose station has the given keys.
func withStation(s string) string {
	return "stations: [{" + s + "}]\n" + validPartner
}

// withPartner is a valid configuration whose partner has further keys.
func withPartner(s string) string {
	return validStation + "partners: [{as2_id: PX, url: 'http://px.example/as2', certs: [keys/px.crt], " + s + "}]\n"
}

// partner is a valid station and a partner with the given keys.
func partner(s string) string { return validStation + "partners: [{as2_id: PX, " + s + "}]\n" }

// plainPartner is a valid configuration whose partner needs no certificate.
func plainPartner(s string) string {
	return validStation + "partners: [{as2_id: PX, url: 'http://px.example/as2', sign: none, encrypt: none, mdn: none, " + s + "}]\n"
}

func TestValidateProblems(t *testing.T) {
	t.Parallel()
	f := newValidateFixture(t)
	long := strings.Repeat("A", 129)
	tests := []struct {
		name string
		yaml string
		key  string
		msg  string
	}{
		// The file's shape.
		{"unknown top-level key", withTop("listn: {as2: ':1'}"), "listn", `unknown key (did you mean "listen"?)`},
		{"unknown nested key", withPartner("retry: {failed: {attempt: 3}}"), "partners[0].retry.failed.attempt", `did you mean "attempts"?`},
		{"key set twice", withTop("workers: 1\nworkers: 2"), "workers", "set twice (lines 1 and 2)"},
		{"not a bool", withTop("allow_private_mdn_urls: maybe"), "allow_private_mdn_urls", `"maybe" is not true or false`},
		{"not a number", withTop("workers: many"), "workers", `"many" is not a whole number`},
		{"list for a value", withTop("public_url: [a, b]"), "public_url", "expected a single value, found a list"},
		{"value for a list", plainPartner("certs: keys/px.crt"), "partners[0].certs", "expected a list"},
		{"value for keys", withTop("listen: ':4080'"), "listen", `expected keys and values (key: value), found ":4080"`},
		{"list for names", withPartner("headers: [a]"), "partners[0].headers", "expected names and values"},

		// Top level.
		{"data_dir empty", withTop("data_dir: ''"), "data_dir", "required"},
		{"database", withTop("database: mysql://u:pw@db/as2"), "database", `"mysql://u:xxxxx@db/as2" is not sqlite or a postgres:// URL`},
		{"payload_store scheme", withTop("payload_store: /var/lib/payloads"), "payload_store", `"/var/lib/payloads" is not an s3:// URL`},
		{"payload_store parameter", withTop("payload_store: 's3://as2?endpoint=http://127.0.0.1:9000&regoin=x'"), "payload_store", `unknown parameter "regoin"`},
		{"payload_store endpoint", withTop("payload_store: 's3://as2?endpoint=minio:9000'"), "payload_store", `endpoint "minio:9000" must be an http:// or https:// URL`},
		{"listen not host:port", withTop("listen: {as2: '4080'}"), "listen.as2", `"4080" is not host:port`},
		{"listen port", withTop("listen: {admin: '127.0.0.1:70000'}"), "listen.admin", "the port must be a number from 0 to 65535"},
		{"listen twice", withTop("listen: {as2: ':9000', admin: ':9000'}"), "listen.admin", "need different addresses"},
		{"public_url scheme", withTop("public_url: ftp://gw.example/as2"), "public_url", "is not an absolute http:// or https:// URL"},
		{"public_url relative", withTop("public_url: /as2"), "public_url", "is not an absolute http:// or https:// URL"},
		{"public_url port", withTop("public_url: 'http://gw.example:99999/as2'"), "public_url", "the port must be a number from 1 to 65535"},
		{"api token empty", withTop("api_tokens: ['']"), "api_tokens[0]", "empty"},
		{"api token with space", withTop("api_tokens: ['a b']"), "api_tokens[0]", "must fit in an HTTP header"},
		{"api token twice", withTop("api_tokens: [abc, def, abc]"), "api_tokens[2]", "the same token as api_tokens[0]"},
		{"dedup_window days", withTop("dedup_window: 30d"), "dedup_window", `"30d" is not a duration: write a number with a unit (ms, s, m, h)`},
		{"dedup_window zero", withTop("dedup_window: 0s"), "dedup_window", "0s: must be more than 0"},
		{"workers zero", withTop("workers: 0"), "workers", "0: at least 1 is needed"},
		{"log format", withTop("log: {format: xml}"), "log.format", `"xml" is not one of auto, text, json`},
		{"log level", withTop("log: {level: loud}"), "log.level", `"loud" is not one of debug, info, warn, error`},

		// Listener TLS.
		{"tls key missing", withTop("tls: {as2: {cert: keys/gw.crt}}"), "tls.as2.key", "required: the private key file"},
		{"tls cert missing", withTop("tls: {admin: {key: keys/gw.key}}"), "tls.admin.cert", "required: the certificate file"},
		{"tls cert not found", withTop("tls: {as2: {cert: keys/nope.crt, key: keys/gw.key}}"), "tls.as2.cert", "keys/nope.crt: no such file or directory"},
		{"tls client_ca junk", withTop("tls: {as2: {cert: keys/gw.crt, key: keys/gw.key, client_ca: keys/junk.pem}}"), "tls.as2.client_ca", "neither a PEM nor a DER certificate"},
		{"tls key of another cert", withTop("tls: {as2: {cert: keys/gw.crt, key: keys/other.key}}"), "tls.as2.key", "does not belong to the certificate"},

		// Notifications.
		{"email smtp missing", withTop("notify: {email: {from: a@example.com, to: [b@example.com]}}"), "notify.email.smtp", "required: the mail server as host:port"},
		{"email smtp port", withTop("notify: {email: {smtp: 'mail:smtp', from: a@example.com, to: [b@example.com]}}"), "notify.email.smtp", "the port must be a number"},
		{"email from", withTop("notify: {email: {smtp: 'mail:25', from: nobody, to: [b@example.com]}}"), "notify.email.from", `"nobody" is not an email address`},
		{"email to empty", withTop("notify: {email: {smtp: 'mail:25', from: a@example.com}}"), "notify.email.to", "required: a list of one or more"},
		{"email to bad", withTop("notify: {email: {smtp: 'mail:25', from: a@example.com, to: [b@example.com, '@']}}"), "notify.email.to[1]", `"@" is not an email address`},
		{"email username without password", withTop("notify: {email: {smtp: 'mail:25', from: a@example.com, to: [b@example.com], username: u}}"), "notify.email.password_file", "required with username"},
		{"email password without username", withTop("notify: {email: {smtp: 'mail:25', from: a@example.com, to: [b@example.com], password_file: secrets/pw}}"), "notify.email.username", "required with password_file"},
		{"email password file missing", withTop("notify: {email: {smtp: 'mail:25', from: a@example.com, to: [b@example.com], username: u, password_file: secrets/nope}}"), "notify.email.password_file", "secrets/nope: no such file or directory"},
		{"email password file empty", withTop("notify: {email: {smtp: 'mail:25', from: a@example.com, to: [b@example.com], username: u, password_file: secrets/empty}}"), "notify.email.password_file", "secrets/empty is empty"},
		{"email starttls and tls", withTop("notify: {email: {smtp: 'mail:465', from: a@example.com, to: [b@example.com], tls: true}}"), "notify.email.starttls", "choose one"},
		{"webhook url", withTop("notify: {webhook: {url: 'hooks.example.com/x', secret_file: secrets/hook}}"), "notify.webhook.url", "is not an absolute http:// or https:// URL"},
		{"webhook secret short", withTop("notify: {webhook: {url: 'https://hooks.example.com/x', secret_file: secrets/pw}}"), "notify.webhook.secret_file", "holds 6 bytes: at least 16"},
		{"email password in clear", withTop("notify: {email: {smtp: 'mail:25', from: a@example.com, to: [b@example.com], starttls: false, username: u, password_file: secrets/pw}}"), "notify.email.username", "would cross the network in clear"},
		{"webhook secret missing", withTop("notify: {webhook: {url: 'https://hooks.example.com/x'}}"), "notify.webhook.secret_file", "required: the file holding the key"},
		{"cert expiry warning", withTop("notify: {cert_expiry_warning: -1h}"), "notify.cert_expiry_warning", "-1h: must be more than 0"},

		// Defaults block: reported once, under defaults, though the partner inherits it.
		{"defaults sign", withTop("defaults: {sign: md5}"), "defaults.sign", `"md5" is not one of none, sha1, sha256, sha384, sha512`},
		{"defaults attempts", withTop("defaults: {retry: {failed: {attempts: 4}}}"), "defaults.retry.failed.attempts", "4 is not one of 3, 5, 10"},
		{"defaults max_size", withTop("defaults: {max_size: 0}"), "defaults.max_size", "0: must be more than 0"},
		{"defaults timeout", withTop("defaults: {timeouts: {connect: 0s}}"), "defaults.timeouts.connect", "0s: must be more than 0"},

		// Partner algorithms.
		{"sign", withPartner("sign: sha3"), "partners[0].sign", `"sha3" is not one of none, sha1, sha256, sha384, sha512`},
		{"encrypt", withPartner("encrypt: aes512"), "partners[0].encrypt", `"aes512" is not one of none, 3des, aes128-cbc, aes192-cbc, aes256-cbc, aes128-gcm, aes256-gcm`},
		{"key_transport", withPartner("key_transport: rsa-oaep-md5"), "partners[0].key_transport", `"rsa-oaep-md5" is not one of rsa-pkcs1v15, rsa-oaep-sha1, rsa-oaep-sha256, rsa-oaep-sha384, rsa-oaep-sha512`},
		{"compress", withPartner("compress: during-sign"), "partners[0].compress", `"during-sign" is not one of none, before-sign, after-sign`},
		{"mdn", withPartner("mdn: later"), "partners[0].mdn", `"later" is not one of sync, async, none`},
		{"mdn async without public_url", withPartner("mdn: async"), "partners[0].mdn", "async needs public_url"},

		// Partner retry, timeouts, limits.
		{"strategy", withPartner("retry: {failed: {strategy: linear}}"), "partners[0].retry.failed.strategy", `"linear" is not one of exponential, fixed`},
		{"attempts", withPartner("retry: {incomplete: {attempts: 7}}"), "partners[0].retry.incomplete.attempts", "7 is not one of 3, 5, 10"},
		{"initial", withPartner("retry: {failed: {initial: 0s}}"), "partners[0].retry.failed.initial", "0s: the first wait must be more than 0"},
		{"fixed interval", withPartner("retry: {failed: {strategy: fixed, interval: 0s}}"), "partners[0].retry.failed.interval", "0s: the wait between attempts must be more than 0"},
		{"fixed duration", withPartner("retry: {failed: {strategy: fixed, interval: 15m, duration: 10m}}"), "partners[0].retry.failed.duration", "10m is shorter than interval 15m"},
		{"timeout without unit", withPartner("timeouts: {connect: 30}"), "partners[0].timeouts.connect", `"30" is not a duration`},
		{"timeout negative", withPartner("timeouts: {transmission: -5s}"), "partners[0].timeouts.transmission", "-5s: must be more than 0"},
		{"max_size fraction", withPartner("max_size: 1.5GiB"), "partners[0].max_size", "1536MiB"},
		{"max_size unit", withPartner("max_size: 10 parsecs"), "partners[0].max_size", `unknown unit "parsecs"`},
		{"lease", withTop("lease: 30s"), "lease", "30s: at least 1m"},
		{"concurrency", withPartner("concurrency: 0"), "partners[0].concurrency", "0: at least 1 message in flight"},
		{"mdn policy", withPartner("mdn_policy: strict"), "partners[0].mdn_policy", `"strict" is not one of sender, agreement`},
		{"source address", withPartner("source_address: gateway.local"), "partners[0].source_address", `"gateway.local" is not an IP address`},

		// Stations.
		{"station id empty", withStation("as2_id: '', cert: keys/gw.crt, key: keys/gw.key"), "stations[0].as2_id", "empty AS2 name"},
		{"station id too long", withStation("as2_id: " + long + ", cert: keys/gw.crt, key: keys/gw.key"), "stations[0].as2_id", "AS2 name of 129 characters: at most 128"},
		{"station id not ASCII", withStation("as2_id: GÄTEWAY, cert: keys/gw.crt, key: keys/gw.key"), "stations[0].as2_id", "not printable ASCII"},
		{"station id twice", "stations: [{as2_id: GW, cert: keys/gw.crt, key: keys/gw.key}, {as2_id: GW, cert: keys/gw.crt, key: keys/gw.key}]\npartners: [{as2_id: PX, station: GW, url: 'http://px.example/as2', certs: [keys/px.crt]}]\n", "stations[1].as2_id", `"GW" is already the AS2 id of stations[0]`},
		{"station key missing", withStation("as2_id: GW, cert: keys/gw.crt"), "stations[0].key", "required: the private key file"},
		{"station key not found", withStation("as2_id: GW, cert: keys/gw.crt, key: keys/nope.key"), "stations[0].key", "cannot read"},
		{"station cert missing", withStation("as2_id: GW, key: keys/gw.key"), "stations[0].cert", "unless stations[0].key is a PKCS#12 file"},
		{"station cert junk", withStation("as2_id: GW, cert: keys/junk.pem, key: keys/gw.key"), "stations[0].cert", "neither a PEM nor a DER certificate"},
		{"station cert is a key", withStation("as2_id: GW, cert: keys/gw.key, key: keys/gw.key"), "stations[0].cert", "no CERTIFICATE block in the PEM file (found PRIVATE KEY)"},
		{"station key is a cert", withStation("as2_id: GW, cert: keys/gw.crt, key: keys/gw.crt"), "stations[0].key", "no private key in the PEM file (found CERTIFICATE)"},
		{"station key junk", withStation("as2_id: GW, cert: keys/gw.crt, key: keys/junk.pem"), "stations[0].key", "not a private key"},
		{"station key of another cert", withStation("as2_id: GW, cert: keys/gw.crt, key: keys/other.key"), "stations[0].key", `keys/other.key does not belong to the certificate "CN=GW"`},
		{"station key ECDSA", withStation("as2_id: GW, cert: keys/ec.crt, key: keys/ec.key"), "stations[0].key", "is an ECDSA key: AS2 signing and decryption need an RSA key"},
		{"encrypted key without password", withStation("as2_id: GW, cert: keys/gw.crt, key: keys/enc.key"), "stations[0].key", "the key is encrypted: set key_password_file"},
		{"encrypted key wrong password", withStation("as2_id: GW, cert: keys/gw.crt, key: keys/enc.key, key_password_file: secrets/wrong"), "stations[0].key", "cannot decrypt the key (is key_password_file right?)"},
		{"encrypted key malformed", withStation("as2_id: GW, cert: keys/gw.crt, key: keys/truncated-enc.key, key_password_file: secrets/pw"), "stations[0].key", "malformed encrypted PKCS#8 key"},
		{"password file missing", withStation("as2_id: GW, cert: keys/gw.crt, key: keys/enc.key, key_password_file: secrets/nope"), "stations[0].key_password_file", "no such file or directory"},
		{"legacy PEM encryption", withStation("as2_id: GW, cert: keys/gw.crt, key: keys/legacy.key"), "stations[0].key", "legacy OpenSSL PEM encryption"},
		{"p12 without password", withStation("as2_id: GW, key: keys/gw.p12"), "stations[0].key", "the PKCS#12 file needs a password: set key_password_file"},
		{"p12 wrong password", withStation("as2_id: GW, key: keys/gw.p12, key_password_file: secrets/wrong"), "stations[0].key", "wrong password in key_password_file"},
		{"p12 with another cert", withStation("as2_id: GW, cert: keys/px.crt, key: keys/gw.p12, key_password_file: secrets/pw"), "stations[0].key", "does not belong to the certificate"},
		{"tls_cert without tls_key", withStation("as2_id: GW, cert: keys/gw.crt, key: keys/gw.key, tls_cert: keys/gw.crt"), "stations[0].tls_key", "required"},
		{"tls_key of another cert", withStation("as2_id: GW, cert: keys/gw.crt, key: keys/gw.key, tls_cert: keys/gw.crt, tls_key: keys/other.key"), "stations[0].tls_key", "does not belong"},
		{"tls password without key", withStation("as2_id: GW, cert: keys/gw.crt, key: keys/gw.key, tls_key_password_file: secrets/pw"), "stations[0].tls_key_password_file", "set without tls_key"},
		{"previous key mismatch", withStation("as2_id: GW, cert: keys/gw.crt, key: keys/gw.key, previous_keys: [{cert: keys/px.crt, key: keys/other.key}]"), "stations[0].previous_keys[0].key", "does not belong"},

		// Partners.
		{"partner id empty", validStation + "partners: [{url: 'http://px.example/as2', certs: [keys/px.crt]}]", "partners[0].as2_id", "empty AS2 name"},
		{"partner id twice", validStation + "partners: [{as2_id: PX, url: 'http://a.example/', certs: [keys/px.crt]}, {as2_id: PX, url: 'http://b.example/', certs: [keys/px.crt]}]", "partners[1].as2_id", `"PX" is already the AS2 id of partners[0]`},
		{"partner id is a station's", validStation + "partners: [{as2_id: GW, url: 'http://a.example/', certs: [keys/px.crt]}]", "partners[0].as2_id", "is also a station's AS2 id"},
		{"partner station unknown", withPartner("station: NOPE"), "partners[0].station", `"NOPE" is not a station's AS2 id: one of GW`},
		{"partner station needed", "stations: [{as2_id: GW, cert: keys/gw.crt, key: keys/gw.key}, {as2_id: GW2, cert: keys/gw.crt, key: keys/gw.key}]\n" + validPartner, "partners[0].station", "required when there are several stations: one of GW, GW2"},
		{"partner station without stations", "partners: [{as2_id: PX, station: GW, url: 'http://px.example/as2', certs: [keys/px.crt]}]", "partners[0].station", "no stations are configured, so the only station is the generated AS2GATE"},
		{"partner url missing", validStation + "partners: [{as2_id: PX, certs: [keys/px.crt]}]", "partners[0].url", "required"},
		{"partner url without scheme", partner("url: px.example/as2, certs: [keys/px.crt]"), "partners[0].url", "is not an absolute http:// or https:// URL"},
		{"partner url without host", partner("url: 'http:///as2', certs: [keys/px.crt]"), "partners[0].url", "has no host"},
		{"partner url with credentials", partner("url: 'https://u:pw@px.example/as2', certs: [keys/px.crt]"), "partners[0].url", `"https://u:xxxxx@px.example/as2" holds credentials: put them in auth`},
		{"partner url not a URL", partner("url: 'http://px.example:port/', certs: [keys/px.crt]"), "partners[0].url", "is not a URL"},
		{"partner certs needed", partner("url: 'http://px.example/as2', sign: none, encrypt: 3des, mdn: none"), "partners[0].certs", "required: the partner's certificate is needed because encrypt is 3des"},
		{"partner certs needed to verify", partner("url: 'http://px.example/as2', sign: none, encrypt: none, mdn: none, require: {signed: true}"), "partners[0].certs", "require.signed is true"},
		{"partner certs needed for MDN", partner("url: 'http://px.example/as2', sign: none, encrypt: none, mdn_signed: true"), "partners[0].certs", "mdn_signed is true"},
		{"partner cert not found", partner("url: 'http://px.example/as2', certs: [keys/px.crt, keys/nope.crt]"), "partners[0].certs[1]", "keys/nope.crt: no such file or directory"},
		{"partner cert ECDSA", partner("url: 'http://px.example/as2', certs: [keys/ec.crt]"), "partners[0].certs[0]", `holds a certificate with an ECDSA key ("CN=EC")`},
		{"header reserved", withPartner("headers: {AS2-To: X}"), "partners[0].headers.As2-To", "the gateway sets As2-To itself"},
		{"header name", withPartner("headers: {'X Bad': 1}"), "partners[0].headers.X Bad", "is not an HTTP header name"},
		{"auth both", withPartner("auth: {basic: {user: u, password_file: secrets/pw}, bearer_file: secrets/pw}"), "partners[0].auth", "basic and bearer_file both set"},
		{"auth basic user", withPartner("auth: {basic: {password_file: secrets/pw}}"), "partners[0].auth.basic.user", "required"},
		{"auth basic user colon", withPartner("auth: {basic: {user: 'a:b', password_file: secrets/pw}}"), "partners[0].auth.basic.user", "has a colon"},
		{"auth basic password", withPartner("auth: {basic: {user: u}}"), "partners[0].auth.basic.password_file", "required"},
		{"auth bearer missing", withPartner("auth: {bearer_file: secrets/nope}"), "partners[0].auth.bearer_file", "no such file or directory"},
		{"auth bearer with space", withPartner("auth: {bearer_file: secrets/spaced-token}"), "partners[0].auth.bearer_file", "must fit in an HTTP header"},
		{"tls ca junk", partner("url: 'https://px.example/as2', certs: [keys/px.crt], tls: {ca: keys/junk.pem}"), "partners[0].tls.ca", "neither a PEM nor a DER certificate"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Load(f.writeString(fmt.Sprintf("case%d.yaml", i), tc.yaml))
			ps := problemsOf(t, err)
			if len(ps) != 1 {
				t.Fatalf("problems:%s\nwant only %s: ...%s...", formatProblems(ps), tc.key, tc.msg)
			}
			if ps[0].Key != tc.key || !strings.Contains(ps[0].Message, tc.msg) {
				t.Errorf("problem %s\nwant %s: ...%s...", ps[0], tc.key, tc.msg)
			}
			if ps[0].Line == 0 {
				t.Errorf("problem %s has no line", ps[0])
			}
		})
	}
}

// TestValidateAcceptedSpellings checks values that are valid though not the canonical
// spelling, and options that need no certificate.
func TestValidateAccepted(t *testing.T) {
	t.Parallel()
	f := newValidateFixture(t)
	tests := []struct{ name, yaml string }{
		{"sign spellings", withPartner("sign: SHA-256")},
		{"encrypt in capitals", withPartner("encrypt: AES128-GCM")},
		{"oaep with a different MGF1 digest", withPartner("key_transport: rsa-oaep-sha256-mgf1-sha1")},
		{"oaep sha512 as libas2 sends", withPartner("key_transport: rsa-oaep-sha512")},
		{"plain partner without certificate", plainPartner("")},
		{"http url with a tls ca", withPartner("tls: {ca: keys/px.crt}")},
		{"postgres", withTop("database: 'postgres://as2:pw@db.example/as2gate?sslmode=verify-full'")},
		{"s3 payload store", withTop("payload_store: 's3://as2gate-payloads?endpoint=https://minio.example:9000&region=eu-central-1&prefix=prod'")},
		{"port 0 twice", withTop("listen: {as2: '127.0.0.1:0', admin: '127.0.0.1:0'}")},
		{"ipv6 listener", withTop("listen: {as2: '[::1]:4080'}")},
		{"station from PKCS#12", withStation("as2_id: GW, key: keys/gw.p12, key_password_file: secrets/pw")},
		{"encrypted PKCS#8", withStation("as2_id: GW, cert: keys/gw.crt, key: keys/enc.key, key_password_file: secrets/pw")},
		{"ECDSA TLS client key", withStation("as2_id: GW, cert: keys/gw.crt, key: keys/gw.key, tls_cert: keys/ec.crt, tls_key: keys/ec.key")},
		{"no stations, default station named", "partners: [{as2_id: PX, station: AS2GATE, url: 'http://px.example/as2', certs: [keys/px.crt]}]"},
		{"no stations, no station named", "partners: [{as2_id: PX, url: 'http://px.example/as2', certs: [keys/px.crt]}]"},
		{"email without authentication", withTop("notify: {email: {smtp: 'localhost:25', from: a@example.com, to: [b@example.com], starttls: false}}")},
		{"async MDN with public_url", withTop("public_url: 'https://gw.example/as2'\ndefaults: {mdn: async}")},
		{"spaces in AS2 ids", "stations: [{as2_id: 'My Gateway', cert: keys/gw.crt, key: keys/gw.key}]\npartners: [{as2_id: 'The \"Partner\"', url: 'http://px.example/as2', certs: [keys/px.crt]}]"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Load(f.writeString(fmt.Sprintf("ok%d.yaml", i), tc.yaml)); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestValidateInGo checks the values a Config built in Go may get wrong, which the file
// cannot express.
func TestValidateInGo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		modify func(c *Config)
		key    string
		msg    string
	}{
		{"strategy zero", func(c *Config) { c.Defaults.Retry.Failed.Strategy = 0 }, "defaults.retry.failed.strategy", "unknown is not one of exponential, fixed"},
		{"sign unknown", func(c *Config) { c.Defaults.Sign = 99 }, "defaults.sign", "is not one of none, sha1"},
		{"cipher unknown", func(c *Config) { c.Defaults.Encrypt = 42 }, "defaults.encrypt", "Cipher(42) is not one of"},
		{"compress unknown", func(c *Config) { c.Defaults.Compress = 7 }, "defaults.compress", "7 is not one of none, before-sign, after-sign"},
		{"mdn unknown", func(c *Config) { c.Defaults.MDN = -1 }, "defaults.mdn", "-1 is not one of sync, async, none"},
		{"log format empty", func(c *Config) { c.Log.Format = "" }, "log.format", `"" is not one of auto, text, json`},
		{"station without identity", func(c *Config) { c.Stations = []*Station{{AS2ID: "GW"}} }, "stations[0].key", "required"},
		{"webhook without secret", func(c *Config) { c.Notify.Webhook = &Webhook{URL: "https://h.example/"} }, "notify.webhook.secret_file", "required"},
	}
	for _, tc := range tests {
		c := Default()
		tc.modify(c)
		ps := problemsOf(t, c.Validate())
		found := false
		for _, p := range ps {
			found = found || p.Key == tc.key && strings.Contains(p.Message, tc.msg)
		}
		if !found {
			t.Errorf("%s: problems:%s\nwant %s: ...%s...", tc.name, formatProblems(ps), tc.key, tc.msg)
		}
	}
}
