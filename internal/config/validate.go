package config

import (
	"crypto/rsa"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/internal/payload"
)

// Validate checks every setting of c and loads the files it names: station and listener
// identities, partner certificates and TLS roots, passwords, tokens and secrets. It returns
// a *ValidationError with every problem found, each naming its key path and what is allowed,
// or nil when c is ready to use.
//
// Loaded values that have no file set (a Certificate without CertFile, a Password without
// PasswordFile) are kept as they are, so a Config built in Go may carry them directly.
// Validate also fills Partner.Station when it is empty and there is exactly one station.
func (c *Config) Validate() error {
	var ps problems
	c.validate(&ps)
	return ps.err(c.File)
}

func (c *Config) validate(ps *problems) {
	if strings.TrimSpace(c.DataDir) == "" {
		ps.add("data_dir", "required: the folder for the database, payloads and generated keys")
	}
	c.validateDatabase(ps)
	if err := checkListenAddr(c.Listen.AS2); err != nil {
		ps.addErr("listen.as2", err)
	}
	if err := checkListenAddr(c.Listen.Admin); err != nil {
		ps.addErr("listen.admin", err)
	}
	if c.Listen.AS2 != "" && c.Listen.AS2 == c.Listen.Admin && !strings.HasSuffix(c.Listen.AS2, ":0") {
		ps.add("listen.admin", "%q is also listen.as2: the console and the partner listener need different addresses", c.Listen.Admin)
	}
	c.TLS.AS2.validate("tls.as2", ps)
	c.TLS.Admin.validate("tls.admin", ps)
	if c.PublicURL != "" {
		if err := checkHTTPURL(c.PublicURL); err != nil {
			ps.addErr("public_url", err)
		}
	}
	for i, tok := range c.APITokens {
		key := keyf("api_tokens[%d]", i)
		switch {
		case tok == "":
			ps.add(key, "empty: a token needs at least one character")
		case strings.IndexFunc(tok, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
			ps.add(key, "has a space, control or non-ASCII character: a bearer token must fit in an HTTP header")
		case slices.Index(c.APITokens, tok) < i:
			ps.add(key, "the same token as api_tokens[%d]", slices.Index(c.APITokens, tok))
		}
	}
	if c.DedupWindow <= 0 {
		ps.add("dedup_window", "%s: must be more than 0, e.g. 720h (30 days)", fmtDuration(c.DedupWindow))
	}
	if c.Lease < time.Minute {
		ps.add("lease", "%s: at least 1m, and more than the longest transmission to any partner", fmtDuration(c.Lease))
	}
	if c.Workers < 1 {
		ps.add("workers", "%d: at least 1 is needed", c.Workers)
	}
	if c.PayloadStore != "" {
		if !strings.HasPrefix(c.PayloadStore, "s3://") {
			ps.add("payload_store", "%q is not an s3:// URL; leave payload_store out to keep payloads in data_dir/payloads", c.PayloadStore)
		} else if err := payload.CheckS3URL(c.PayloadStore); err != nil {
			ps.addErr("payload_store", err)
		}
	}
	switch c.Log.Format {
	case LogAuto, LogText, LogJSON:
	default:
		ps.add("log.format", "%q is not %s", c.Log.Format, oneOf(LogAuto, LogText, LogJSON))
	}
	c.Notify.validate(ps)
	c.validateSettings(&c.Defaults, nil, "defaults", ps)
	c.validateStations(ps)
	c.validatePartners(ps)
	c.validateProfiles(ps)
}

func (c *Config) validateDatabase(ps *problems) {
	switch {
	case c.Database == DefaultDatabase:
	case strings.HasPrefix(c.Database, "postgres://"), strings.HasPrefix(c.Database, "postgresql://"):
		if _, err := url.Parse(c.Database); err != nil {
			ps.add("database", "not a valid PostgreSQL URL: %v", urlError(err))
		}
	default:
		ps.add("database", "%q is not sqlite or a postgres:// URL", redactURL(c.Database))
	}
}

// redactURL hides a password in a database URL before it is shown.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}

// urlError returns the reason of a url.Parse error without the URL, which may hold a
// password.
func urlError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

func checkListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. \":4080\", \"127.0.0.1:8080\")", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: the port must be a number from 0 to 65535", addr)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("%q: %q is not a host name or address", addr, host)
	}
	return nil
}

// checkHTTPURL checks an absolute http or https URL without credentials.
func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", s, urlError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q is not an absolute http:// or https:// URL", s)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if u.User != nil {
		return fmt.Errorf("%q holds credentials: put them in auth (with a password_file), not in the URL", u.Redacted())
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: the port must be a number from 1 to 65535", s)
		}
	}
	return nil
}

func (l *ListenerTLS) validate(key string, ps *problems) {
	if l == nil {
		return
	}
	if l.CertFile != "" || l.KeyFile != "" || l.Certificate == nil {
		p := loadPair(pairKeys{key + ".cert", key + ".key", key + ".key_password_file"}, l.CertFile, l.KeyFile, l.KeyPasswordFile, ps)
		if p != nil {
			l.Certificate = p.tlsCertificate()
		}
	}
	if l.ClientCAFile != "" {
		pool, err := loadPool(l.ClientCAFile)
		if err != nil {
			ps.addErr(key+".client_ca", err)
		} else {
			l.ClientCAs = pool
		}
	}
}

func (n *Notify) validate(ps *problems) {
	if n.CertExpiryWarning <= 0 {
		ps.add("notify.cert_expiry_warning", "%s: must be more than 0, e.g. 720h (30 days)", fmtDuration(n.CertExpiryWarning))
	}
	if e := n.Email; e != nil {
		const key = "notify.email"
		if e.SMTP == "" {
			ps.add(key+".smtp", "required: the mail server as host:port, e.g. mail.example.com:587")
		} else if host, port, err := net.SplitHostPort(e.SMTP); err != nil || host == "" {
			ps.add(key+".smtp", "%q is not host:port, e.g. mail.example.com:587", e.SMTP)
		} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			ps.add(key+".smtp", "%q: the port must be a number from 1 to 65535", e.SMTP)
		}
		if e.From == "" {
			ps.add(key+".from", "required: the sender address")
		} else if _, err := mail.ParseAddress(e.From); err != nil {
			ps.add(key+".from", "%q is not an email address", e.From)
		}
		if len(e.To) == 0 {
			ps.add(key+".to", "required: a list of one or more recipient addresses")
		}
		for i, to := range e.To {
			if _, err := mail.ParseAddress(to); err != nil {
				ps.add(keyf("%s.to[%d]", key, i), "%q is not an email address", to)
			}
		}
		switch {
		case e.PasswordFile != "":
			if e.Username == "" {
				ps.add(key+".username", "required with password_file")
			}
			if pw, err := readSecret(e.PasswordFile); err != nil {
				ps.addErr(key+".password_file", err)
			} else {
				e.Password = pw
			}
		case e.Username != "" && e.Password == "":
			ps.add(key+".password_file", "required with username: the file holding the SMTP password")
		}
		if e.StartTLS && e.TLS {
			ps.add(key+".starttls", "true together with tls: true; tls means TLS from the first byte (port 465), starttls upgrades a plain connection (port 587): choose one")
		}
		if e.Username != "" && !e.StartTLS && !e.TLS {
			ps.add(key+".username", "set with starttls: false and tls: false: the SMTP password would cross the network in clear; use starttls: true (port 587) or tls: true (port 465)")
		}
	}
	if h := n.Webhook; h != nil {
		const key = "notify.webhook"
		if h.URL == "" {
			ps.add(key+".url", "required: the http:// or https:// URL notifications are POSTed to")
		} else if err := checkHTTPURL(h.URL); err != nil {
			ps.addErr(key+".url", err)
		}
		switch {
		case h.SecretFile != "":
			if s, err := readSecret(h.SecretFile); err != nil {
				ps.addErr(key+".secret_file", err)
			} else if len(s) < MinWebhookSecret {
				ps.add(key+".secret_file", "%s holds %d bytes: at least %d are needed to sign notifications (32 random bytes is a good choice: openssl rand -hex 32)", h.SecretFile, len(s), MinWebhookSecret)
			} else {
				h.Secret = []byte(s)
			}
		case len(h.Secret) == 0:
			ps.add(key+".secret_file", "required: the file holding the key that signs each notification (HMAC-SHA256)")
		}
	}
}

// MinWebhookSecret is the shortest webhook secret accepted (bytes).
const MinWebhookSecret = 16

// validateSettings checks s under key. For a partner, base is the defaults: a value equal
// to the default is not checked again, so a wrong default is reported once, under defaults.
func (c *Config) validateSettings(s, base *Settings, key string, ps *problems) {
	differs := func(get func(*Settings) any) bool { return base == nil || get(s) != get(base) }
	if s.Sign != 0 && !s.Sign.Valid() && differs(func(x *Settings) any { return x.Sign }) {
		ps.add(key+".sign", "%s is not %s", s.Sign, oneOf(signNames...))
	}
	if s.Encrypt != 0 && differs(func(x *Settings) any { return x.Encrypt }) {
		if c2, err := cms.ParseCipher(s.Encrypt.String()); err != nil || c2 != s.Encrypt {
			ps.add(key+".encrypt", "%s is not %s", s.Encrypt, oneOf(encryptNames...))
		}
	}
	if differs(func(x *Settings) any { return x.KeyTransport }) {
		if k2, err := cms.ParseKeyTransport(s.KeyTransport.String()); err != nil || !k2.Equal(s.KeyTransport) {
			ps.add(key+".key_transport", "%s is not %s", s.KeyTransport, oneOf(keyTransportNames...))
		}
	}
	if (s.Compress < as2.NoCompression || s.Compress > as2.CompressAfterSign) && differs(func(x *Settings) any { return x.Compress }) {
		ps.add(key+".compress", "%d is not %s", int(s.Compress), oneOf(compressNames...))
	}
	if (s.MDN < as2.MDNNone || s.MDN > as2.MDNAsync) && differs(func(x *Settings) any { return x.MDN }) {
		ps.add(key+".mdn", "%d is not %s", int(s.MDN), oneOf(mdnNames...))
	}
	if differs(func(x *Settings) any { return x.Retry.Failed }) {
		s.Retry.Failed.validate(key+".retry.failed", ps)
	}
	if differs(func(x *Settings) any { return x.Retry.Incomplete }) {
		s.Retry.Incomplete.validate(key+".retry.incomplete", ps)
	}
	for _, t := range []struct {
		name     string
		val, def time.Duration
	}{
		{"connect", s.Timeouts.Connect, baseOr(base, func(b *Settings) time.Duration { return b.Timeouts.Connect })},
		{"transmission", s.Timeouts.Transmission, baseOr(base, func(b *Settings) time.Duration { return b.Timeouts.Transmission })},
		{"async_mdn", s.Timeouts.AsyncMDN, baseOr(base, func(b *Settings) time.Duration { return b.Timeouts.AsyncMDN })},
	} {
		if t.val <= 0 && (base == nil || t.val != t.def) {
			ps.add(key+".timeouts."+t.name, "%s: must be more than 0, e.g. 30s, 2m, 1h", fmtDuration(t.val))
		}
	}
	if s.MaxSize <= 0 && differs(func(x *Settings) any { return x.MaxSize }) {
		ps.add(key+".max_size", "%d: must be more than 0, e.g. 1GiB, 500MB, 1048576", s.MaxSize)
	}
	if s.Concurrency < 1 && differs(func(x *Settings) any { return x.Concurrency }) {
		ps.add(key+".concurrency", "%d: at least 1 message in flight is needed", s.Concurrency)
	}
}

// baseOr returns get(base), or 0 without a base.
func baseOr(base *Settings, get func(*Settings) time.Duration) time.Duration {
	if base == nil {
		return 0
	}
	return get(base)
}

func (r *Retry) validate(key string, ps *problems) {
	switch r.Strategy {
	case Exponential:
		if !slices.Contains(ExponentialAttempts, r.Attempts) {
			ps.add(key+".attempts", "%d is not one of 3, 5, 10: an exponential policy retries 3, 5 or 10 times, the wait doubling from initial (from 30s the last wait is 2m, 8m or 256m); strategy fixed gives other schedules", r.Attempts)
		}
		if r.Initial <= 0 {
			ps.add(key+".initial", "%s: the first wait must be more than 0, e.g. 30s", fmtDuration(r.Initial))
		}
	case Fixed:
		if r.Interval <= 0 {
			ps.add(key+".interval", "%s: the wait between attempts must be more than 0, e.g. 15m", fmtDuration(r.Interval))
		}
		if r.Duration < r.Interval {
			ps.add(key+".duration", "%s is shorter than interval %s: retries run every interval until duration has passed, e.g. interval 15m, duration 2h", fmtDuration(r.Duration), fmtDuration(r.Interval))
		}
	default:
		ps.add(key+".strategy", "%s is not %s", r.Strategy, oneOf("exponential", "fixed"))
	}
}

func (c *Config) validateStations(ps *problems) {
	first := map[string]int{}
	for i, s := range c.Stations {
		key := keyf("stations[%d]", i)
		if err := as2.ValidateID(s.AS2ID); err != nil {
			ps.add(key+".as2_id", "%s", strings.TrimPrefix(err.Error(), "as2: "))
		} else if j, dup := first[s.AS2ID]; dup {
			ps.add(key+".as2_id", "%q is already the AS2 id of stations[%d]", s.AS2ID, j)
		} else {
			first[s.AS2ID] = i
		}
		s.Identity.load(pairKeys{key + ".cert", key + ".key", key + ".key_password_file"}, ps)
		for j := range s.Previous {
			pk := keyf("%s.previous_keys[%d]", key, j)
			s.Previous[j].load(pairKeys{pk + ".cert", pk + ".key", pk + ".key_password_file"}, ps)
		}
		switch {
		case s.TLSCertFile != "" || s.TLSKeyFile != "":
			p := loadPair(pairKeys{key + ".tls_cert", key + ".tls_key", key + ".tls_key_password_file"},
				s.TLSCertFile, s.TLSKeyFile, s.TLSKeyPasswordFile, ps)
			if p != nil {
				s.TLSCertificate = p.tlsCertificate()
			}
		case s.TLSKeyPasswordFile != "":
			ps.add(key+".tls_key_password_file", "set without tls_key")
		}
	}
}

// load reads an AS2 identity: an RSA key and its certificate.
func (id *Identity) load(k pairKeys, ps *problems) {
	if id.CertFile == "" && id.KeyFile == "" && id.Certificate != nil && id.Key != nil {
		return // built in Go
	}
	p := loadPair(k, id.CertFile, id.KeyFile, id.KeyPasswordFile, ps)
	if p == nil {
		return
	}
	key, ok := p.key.(PrivateKey)
	if _, isRSA := p.key.Public().(*rsa.PublicKey); !ok || !isRSA {
		ps.add(k.key, "is an %s key: AS2 signing and decryption need an RSA key", keyAlgorithm(p.key.Public()))
		return
	}
	id.Certificate, id.Chain, id.Key = p.cert, p.chain, key
}

// reservedHeaders are HTTP headers the gateway writes from other settings; neither a
// partner's headers nor a profile's may replace them (see also reservedHeader).
var reservedHeaders = map[string]string{
	"Authorization":                    "use auth",
	"Host":                             "it follows url",
	"Content-Length":                   "it frames the message",
	"Transfer-Encoding":                "it frames the message",
	"Connection":                       "it belongs to the connection",
	"Content-Type":                     "it describes the packed message",
	"Content-Transfer-Encoding":        "it describes the packed message",
	"Message-Id":                       "every message has its own",
	"As2-From":                         "it is the station's as2_id",
	"As2-To":                           "it is the partner's as2_id",
	"As2-Version":                      "the gateway speaks AS2 1.2",
	"Disposition-Notification-To":      "it follows mdn",
	"Disposition-Notification-Options": "it follows mdn_signed and sign",
	"Receipt-Delivery-Option":          "it follows mdn and public_url",
	"Mime-Version":                     "it belongs to the packed message",
	"Content-Disposition":              "it describes the packed message",
	"Ediint-Features":                  "it names what the gateway supports",
}

func (c *Config) validatePartners(ps *problems) {
	first := map[string]int{}
	stationIDs := make([]string, 0, len(c.Stations))
	for _, s := range c.Stations {
		stationIDs = append(stationIDs, s.AS2ID)
	}
	for i, p := range c.Partners {
		key := keyf("partners[%d]", i)
		if err := as2.ValidateID(p.AS2ID); err != nil {
			ps.add(key+".as2_id", "%s", strings.TrimPrefix(err.Error(), "as2: "))
		} else if j, dup := first[p.AS2ID]; dup {
			ps.add(key+".as2_id", "%q is already the AS2 id of partners[%d]", p.AS2ID, j)
		} else {
			first[p.AS2ID] = i
			if slices.Contains(stationIDs, p.AS2ID) {
				ps.add(key+".as2_id", "%q is also a station's AS2 id: AS2-From and AS2-To would be ambiguous", p.AS2ID)
			}
		}
		c.validatePartnerStation(p, key, stationIDs, ps)
		if p.URL == "" {
			ps.add(key+".url", "required: the partner's http:// or https:// AS2 URL")
		} else if err := checkHTTPURL(p.URL); err != nil {
			ps.addErr(key+".url", err)
		}
		c.validateSettings(&p.Settings, &c.Defaults, key, ps)
		if p.MDN == as2.MDNAsync && c.PublicURL == "" {
			ps.add(key+".mdn", "async needs public_url: the URL the partner sends the MDN back to")
		}
		p.loadCertificates(key, ps)
		validateHeaders(key+".headers", p.Header, ps)
		p.Auth.validate(key+".auth", ps)
		if p.TLS.CAFile != "" {
			pool, err := loadPool(p.TLS.CAFile)
			if err != nil {
				ps.addErr(key+".tls.ca", err)
			} else {
				p.TLS.Roots = pool
			}
		}
	}
}

func (c *Config) validatePartnerStation(p *Partner, key string, stationIDs []string, ps *problems) {
	switch {
	case p.Station == "" && len(c.Stations) == 1:
		p.Station = c.Stations[0].AS2ID
	case p.Station == "" && len(c.Stations) > 1:
		ps.add(key+".station", "required when there are several stations: one of %s", strings.Join(stationIDs, ", "))
	case p.Station == "":
		// No station configured: EnsureStation gives the partner the default station.
	case len(c.Stations) == 0 && p.Station == DefaultStationID:
	case c.Station(p.Station) == nil && len(c.Stations) == 0:
		ps.add(key+".station", "%q: no stations are configured, so the only station is the generated %s", p.Station, DefaultStationID)
	case c.Station(p.Station) == nil:
		ps.add(key+".station", "%q is not a station's AS2 id: one of %s", p.Station, strings.Join(stationIDs, ", "))
	}
}

// loadCertificates loads the partner's certificates and checks that the agreement has the
// ones it needs.
func (p *Partner) loadCertificates(key string, ps *problems) {
	if len(p.CertFiles) > 0 {
		p.Certificates = nil
	}
	for j, f := range p.CertFiles {
		ck := keyf("%s.certs[%d]", key, j)
		if f == "" {
			ps.add(ck, "empty: the path of a certificate file (PEM or DER)")
			continue
		}
		certs, err := loadCertificates(f)
		if err != nil {
			ps.addErr(ck, err)
			continue
		}
		for _, cert := range certs {
			if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
				ps.add(ck, "%s holds a certificate with an %s key (%q): AS2 encryption and signature verification need RSA",
					f, keyAlgorithm(cert.PublicKey), cert.Subject.String())
				continue
			}
			p.Certificates = append(p.Certificates, cert)
		}
	}
	if len(p.Certificates) > 0 || len(p.CertFiles) > 0 {
		return
	}
	var needs []string
	if p.Encrypt != 0 {
		needs = append(needs, "encrypt is "+p.Encrypt.String())
	}
	if p.Require.Signed {
		needs = append(needs, "require.signed is true (the default when sign is not none)")
	}
	if p.MDN != as2.MDNNone && p.MDNSigned {
		needs = append(needs, "mdn_signed is true")
	}
	if len(needs) > 0 {
		ps.add(key+".certs", "required: the partner's certificate is needed because %s", joinAnd(needs))
	}
}

func (a *Auth) validate(key string, ps *problems) {
	if a.Basic != nil && (a.BearerFile != "" || a.Bearer != "") {
		ps.add(key, "basic and bearer_file both set: choose one")
	}
	if b := a.Basic; b != nil {
		if b.User == "" {
			ps.add(key+".basic.user", "required: the user name")
		} else if strings.Contains(b.User, ":") {
			ps.add(key+".basic.user", "%q has a colon, which HTTP basic authentication cannot carry in a user name", b.User)
		}
		switch {
		case b.PasswordFile != "":
			if pw, err := readSecret(b.PasswordFile); err != nil {
				ps.addErr(key+".basic.password_file", err)
			} else {
				b.Password = pw
			}
		case b.Password == "":
			ps.add(key+".basic.password_file", "required: the file holding the password")
		}
	}
	if a.BearerFile != "" {
		tok, err := readSecret(a.BearerFile)
		switch {
		case err != nil:
			ps.addErr(key+".bearer_file", err)
		case strings.IndexFunc(tok, func(r rune) bool { return r <= ' ' || r > '~' }) >= 0:
			ps.add(key+".bearer_file", "%s holds a space, control or non-ASCII character: a bearer token must fit in an HTTP header", a.BearerFile)
		default:
			a.Bearer = tok
		}
	}
}

// joinAnd joins "a", "b", "c" as "a, b and c".
func joinAnd(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// fmtDuration writes d as the file would: "15m", "2h", "1h30m", not "15m0s".
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// validHeaderName reports whether name is an RFC 9110 field name (a token).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
