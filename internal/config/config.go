// Package config is the gateway's configuration: the YAML file `as2gate serve --config` reads,
// its defaults (DESIGN.md §6), and the checks that reject every invalid value at start with
// the key path and what is allowed, so that nothing starts half-configured.
//
// Load reads a file over Default; Validate checks a Config and loads the files it names
// (certificates, keys, passwords, secrets). A Config that passed Validate holds everything
// resolved: algorithms as as2 and cms values, durations as time.Duration, sizes as int64,
// certificates and keys parsed, secrets read. The rest of the gateway never parses a string
// from the configuration.
//
// Secrets live in files named by *_file keys, never in the YAML itself; the one exception is
// api_tokens, which are the gateway's own credentials and not a partner's.
package config

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/cms"
)

// Defaults of a new configuration (DESIGN.md §6).
const (
	DefaultDataDir     = "as2gate-data"
	DefaultDatabase    = "sqlite"
	DefaultAS2Listen   = ":4080"
	DefaultAdminListen = "127.0.0.1:8080"
	// DefaultDedupWindow is how long an inbound Message-ID is remembered for the duplicate
	// check: 30 days covers every retry schedule a sender can run (the longest exponential
	// one spans about 8.5 hours) with a wide margin for manual resends.
	DefaultDedupWindow = 30 * 24 * time.Hour
	DefaultWorkers     = 8
	DefaultLease       = 10 * time.Minute
	DefaultConcurrency = 4
	// DefaultMaxSize bounds an inbound message and each of its decoded layers: 1 GiB.
	DefaultMaxSize = 1 << 30
	// DefaultCertExpiryWarning is how long before a certificate expires a notification is
	// raised.
	DefaultCertExpiryWarning = 30 * 24 * time.Hour
)

// Config is the gateway's configuration. Build one with Default or Load; a Config is ready
// to use only after Validate has returned nil (Load calls it).
type Config struct {
	// File is the file Load read; empty for a configuration built in Go.
	File string

	// DataDir holds the database, the payload store, generated keys and the inbox
	// (data_dir; default as2gate-data).
	DataDir string
	// Database is "sqlite" (a file in DataDir) or a postgres:// URL (database).
	Database string
	Listen   Listen
	TLS      ServerTLS
	// PublicURL is where partners send to us and where asynchronous MDNs for our messages
	// come back (public_url). Required when a partner asks for asynchronous MDNs.
	PublicURL string
	// APITokens are the bearer tokens of /api/v1 (api_tokens). EnsureAPIToken generates one
	// when there is none.
	APITokens []string
	// AllowPrivateMDNURLs lets asynchronous MDNs go to private, loopback and link-local
	// addresses (allow_private_mdn_urls); off by default, so that a sender cannot make the
	// gateway POST into the network it runs in.
	AllowPrivateMDNURLs bool
	// DedupWindow is how long (AS2-From, AS2-To, Message-ID) is remembered to answer a
	// duplicate with the stored MDN (dedup_window; default 720h).
	DedupWindow time.Duration
	// Workers is the number of messages in flight at once over all partners (workers).
	Workers int
	// Lease is how long one attempt at sending may take before another claim may take
	// the message over; an attempt is cut off just before it (lease; default 10m). Raise it
	// for partners that need longer for one large message.
	Lease time.Duration
	// InboxDir receives inbound payloads in a folder per partner (inbox_dir); empty means
	// DataDir/inbox. See Inbox.
	InboxDir string
	// PayloadStore is where payloads, wire messages and MDNs are kept (payload_store): empty
	// for the folder DataDir/payloads, or an s3:// URL for an S3-compatible bucket that
	// several gateways can share.
	PayloadStore string
	Log          Log
	Notify       Notify
	// Defaults are the partner settings a partner does not set itself (defaults).
	Defaults Settings
	Stations []*Station
	Partners []*Partner
	// Profiles are the send profiles a submission may name (profiles).
	Profiles []*Profile

	// defaultsRequire is the defaults block's require as the file wrote it: a partner added
	// later (WithEntries) derives its own require from it as a partner of the file does.
	defaultsRequire *rawRequire
}

// Listen holds the listener addresses (listen).
type Listen struct {
	AS2   string // the partner-facing listener, POST /as2 (listen.as2; default ":4080")
	Admin string // the console, API and health checks (listen.admin; default "127.0.0.1:8080")
}

// ServerTLS holds the TLS settings of each listener (tls); nil means plain HTTP.
type ServerTLS struct {
	AS2   *ListenerTLS
	Admin *ListenerTLS
}

// ListenerTLS is the server identity of a listener, and the CAs of the client certificates it
// demands, if any.
type ListenerTLS struct {
	CertFile        string // cert: PEM or DER, the server certificate first, then its chain
	KeyFile         string // key: PEM, DER or PKCS#12
	KeyPasswordFile string // key_password_file: for an encrypted key or a PKCS#12 file
	ClientCAFile    string // client_ca: when set, clients must present a certificate from these CAs

	// Certificate is the loaded server identity.
	Certificate *tls.Certificate
	// ClientCAs is the loaded client_ca, nil when clients are not asked for a certificate.
	ClientCAs *x509.CertPool
}

// ServerConfig returns the tls.Config of the listener: TLS 1.2 at least, and a verified
// client certificate required when client_ca is set.
func (l *ListenerTLS) ServerConfig() *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if l.Certificate != nil {
		cfg.Certificates = []tls.Certificate{*l.Certificate}
	}
	if l.ClientCAs != nil {
		cfg.ClientCAs = l.ClientCAs
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg
}

// Log holds the logging settings (log).
type Log struct {
	// Format is "auto" (text on a terminal, JSON otherwise), "text" or "json" (log.format).
	Format string
	// Level is the lowest level logged (log.level: debug, info, warn, error; default info).
	Level slog.Level
}

// Log formats.
const (
	LogAuto = "auto"
	LogText = "text"
	LogJSON = "json"
)

// Notify holds where notifications go (notify): on a message reaching Failed, on a suspended
// inbound message, and on a certificate close to expiry.
type Notify struct {
	Email   *Email   // nil: no email
	Webhook *Webhook // nil: no webhook
	// CertExpiryWarning is how long before a certificate's expiry it is reported
	// (notify.cert_expiry_warning; default 720h).
	CertExpiryWarning time.Duration
}

// Email is an SMTP destination for notifications (notify.email).
type Email struct {
	SMTP         string   // smtp: host:port of the mail server
	From         string   // from: the sender address
	To           []string // to: one or more recipient addresses
	Username     string   // username: SMTP AUTH user; empty means no authentication
	PasswordFile string   // password_file: the SMTP AUTH password
	// StartTLS requires STARTTLS before anything is sent (starttls; default true). Turn it
	// off only for a mail relay on the same host or network.
	StartTLS bool
	// TLS speaks TLS from the first byte, as on port 465 (tls; default false).
	TLS bool

	// Password is read from PasswordFile by Validate.
	Password string
}

// Webhook is an HTTP destination for notifications (notify.webhook): a JSON POST with an
// HMAC-SHA256 signature of the body made with the secret.
type Webhook struct {
	URL        string // url: http or https
	SecretFile string // secret_file: the HMAC key

	// Secret is read from SecretFile by Validate.
	Secret []byte
}

// PrivateKey is a station's private key: it signs and decrypts. Keys loaded from files are
// *rsa.PrivateKey; the interface leaves room for keys held in hardware.
type PrivateKey interface {
	crypto.Signer
	crypto.Decrypter
}

// Identity is a certificate and its private key, loaded from files.
type Identity struct {
	CertFile        string // cert: PEM (several certificates allowed: the first is ours) or DER
	KeyFile         string // key: PEM (PKCS#1, PKCS#8, encrypted PKCS#8), DER, or .p12/.pfx
	KeyPasswordFile string // key_password_file: for encrypted PKCS#8 and PKCS#12

	Certificate *x509.Certificate
	// Chain holds the certificates that followed ours in CertFile (or the PKCS#12 file).
	Chain []*x509.Certificate
	Key   PrivateKey
}

// Station is one of our own AS2 identities (stations).
type Station struct {
	AS2ID string // as2_id
	// Identity signs our messages and MDNs and decrypts what partners encrypt to us
	// (key, cert, key_password_file). A PKCS#12 key file may carry the certificate, and then
	// cert may be left out.
	Identity
	// Previous are older identities still accepted for decryption while partners move to
	// the new certificate (previous_keys: [{cert, key, key_password_file}]).
	Previous []Identity

	// TLS client identity for partners that demand one (tls_cert, tls_key,
	// tls_key_password_file); empty means none.
	TLSCertFile, TLSKeyFile, TLSKeyPasswordFile string
	TLSCertificate                              *tls.Certificate
}

// Recipients returns the station's decryption keys, the current one first.
func (s *Station) Recipients() []cms.Recipient {
	r := make([]cms.Recipient, 0, 1+len(s.Previous))
	for _, id := range append([]Identity{s.Identity}, s.Previous...) {
		if id.Certificate != nil && id.Key != nil {
			r = append(r, cms.Recipient{Certificate: id.Certificate, Key: id.Key})
		}
	}
	return r
}

// Settings are the parts of an agreement that may have a default: the algorithms, the MDN,
// what inbound messages must be, retries, timeouts and limits. A partner inherits every
// setting it does not set from the top-level defaults block.
type Settings struct {
	// Sign is the signing digest (sign: none, sha1, sha256, sha384, sha512; default sha256);
	// zero means unsigned.
	Sign as2.MICAlg
	// PSS signs with RSASSA-PSS instead of PKCS#1 v1.5 (pss; default false).
	PSS bool
	// Encrypt is the content cipher (encrypt: none, 3des, aes128-cbc, aes192-cbc,
	// aes256-cbc, aes128-gcm, aes256-gcm; default aes256-cbc); zero means not encrypted.
	Encrypt cms.Cipher
	// KeyTransport is how the content key is encrypted to the partner (key_transport:
	// rsa-pkcs1v15, rsa-oaep-sha1, rsa-oaep-sha256, rsa-oaep-sha384, rsa-oaep-sha512;
	// default rsa-pkcs1v15, which every AS2 product reads).
	KeyTransport cms.KeyTransport
	// Compress is whether and where outbound messages are compressed (compress: none,
	// before-sign, after-sign; default none).
	Compress as2.Compression
	// MDN is the receipt we ask for (mdn: sync, async, none; default sync).
	MDN as2.MDNMode
	// MDNSigned asks for a signed receipt (mdn_signed; default true).
	MDNSigned bool
	// Require is what inbound messages from the partner must be (require).
	Require Require
	// Retry holds the retry policies (retry).
	Retry RetryPolicies
	// Timeouts bound each exchange (timeouts).
	Timeouts Timeouts
	// MaxSize bounds an inbound message body and each decoded layer, in bytes (max_size:
	// 1GiB, 500MB, 1048576; default 1GiB).
	MaxSize int64
	// Concurrency is how many messages to the partner may be in flight at once
	// (concurrency; default 4).
	Concurrency int
	// MDNPolicy decides the MDNs we return to the partner (mdn_policy, R-PART-4): "sender"
	// (default) follows the sender's Disposition-Notification-Options, "agreement" signs
	// or not as mdn_signed says and uses the agreement's sign algorithm, whatever the
	// sender asked.
	MDNPolicy string
	// SourceAddress is the local address outbound connections to the partner come from
	// (source_address), for partners that allow-list addresses; zero lets the system choose.
	SourceAddress netip.Addr
}

// MDN policies (mdn_policy).
const (
	MDNPolicySender    = "sender"
	MDNPolicyAgreement = "agreement"
)

// Require is what an inbound message must be; a weaker one gets a negative MDN
// (insufficient-message-security) and is kept suspended (R-PART-2).
//
// In the file, signed and encrypted default to what we send the partner: a partner whose
// messages we sign must sign its own, one we encrypt to must encrypt. compressed defaults to
// false.
type Require struct {
	Signed     bool // require.signed
	Encrypted  bool // require.encrypted
	Compressed bool // require.compressed
}

// RetryPolicies are the two retry policies of a partner (R-RETRY-2).
type RetryPolicies struct {
	// Failed applies to transient failures: the partner did not get the message
	// (retry.failed; default exponential, 10 attempts from 30s).
	Failed Retry
	// Incomplete applies when the partner may hold the message: off by default, since a
	// resend may be a duplicate (retry.incomplete; default disabled, exponential, 3 attempts
	// from 30s).
	Incomplete Retry
}

// Strategy is a retry strategy.
type Strategy int

// Retry strategies (R-RETRY-1).
const (
	// Exponential waits Initial, then doubles the wait, for Attempts retries.
	Exponential Strategy = iota + 1
	// Fixed waits Interval between retries until Duration has passed since the first failure.
	Fixed
)

// String returns the configuration spelling: "exponential" or "fixed".
func (s Strategy) String() string {
	switch s {
	case Exponential:
		return "exponential"
	case Fixed:
		return "fixed"
	}
	return "unknown"
}

// ExponentialAttempts are the attempt counts an exponential policy offers (R-RETRY-1): with
// a 30s start the last wait is 2m, 8m or 256m.
var ExponentialAttempts = []int{3, 5, 10}

// Retry is one retry policy.
type Retry struct {
	// Enabled turns the policy on (enabled; default true for failed, false for incomplete).
	Enabled  bool
	Strategy Strategy // strategy: exponential or fixed
	// Attempts is the number of retries of an exponential policy (attempts: 3, 5 or 10).
	Attempts int
	// Initial is the first wait of an exponential policy (initial; default 30s).
	Initial time.Duration
	// Interval is the wait of a fixed policy (interval; default 15m).
	Interval time.Duration
	// Duration is how long a fixed policy keeps retrying (duration; default 2h).
	Duration time.Duration
}

// Timeouts bound the exchanges with a partner (timeouts).
type Timeouts struct {
	Connect      time.Duration // connect: TCP and TLS set-up (default 30s)
	Transmission time.Duration // transmission: sending the message and reading the reply (default 60s)
	AsyncMDN     time.Duration // async_mdn: how long to wait for an asynchronous MDN (default 1h)
}

// Partner is a trading partner and our agreement with it (partners).
type Partner struct {
	AS2ID string // as2_id
	// Station is the AS2 id of our station that trades with the partner (station). It may
	// be left out when there is at most one station.
	Station string
	// URL is where messages to the partner are POSTed (url).
	URL string
	// CertFiles are the partner's certificate files (certs), each PEM (one or more
	// certificates) or DER.
	CertFiles []string
	// Certificates are the loaded certificates: all are tried to verify the partner's
	// signatures; EncryptionCertificate picks the one to encrypt to.
	Certificates []*x509.Certificate
	// Header holds custom HTTP headers sent with every message (headers).
	Header http.Header
	Auth   Auth
	TLS    PartnerTLS
	Settings
}

// Auth is how we authenticate to a partner's server (auth); the zero value sends nothing.
type Auth struct {
	Basic      *BasicAuth // basic: {user, password_file}
	BearerFile string     // bearer_file: a bearer token

	// Bearer is read from BearerFile by Validate.
	Bearer string
}

// BasicAuth is HTTP basic authentication (RFC 7617).
type BasicAuth struct {
	User         string
	PasswordFile string
	// Password is read from PasswordFile by Validate.
	Password string
}

// Authorization returns the value of the Authorization header, or "" for none.
func (a *Auth) Authorization() string {
	switch {
	case a.Basic != nil:
		r := http.Request{Header: http.Header{}}
		r.SetBasicAuth(a.Basic.User, a.Basic.Password)
		return r.Header.Get("Authorization")
	case a.Bearer != "":
		return "Bearer " + a.Bearer
	}
	return ""
}

// PartnerTLS is how we trust a partner's HTTPS server (tls).
type PartnerTLS struct {
	// CAFile holds the certificates trusted for the partner's server (tls.ca): its CA, or
	// its own certificate to pin it. Empty means the system roots.
	CAFile string
	// Roots is the loaded CAFile, nil for the system roots.
	Roots *x509.CertPool
}

// TLSConfig returns the client tls.Config for the partner's server: TLS 1.2 at least, the
// partner's trust roots, and the station's client certificate when it has one.
func (p *Partner) TLSConfig(st *Station) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: p.TLS.Roots}
	if st != nil && st.TLSCertificate != nil {
		cfg.Certificates = []tls.Certificate{*st.TLSCertificate}
	}
	return cfg
}

// EncryptionCertificate returns the certificate to encrypt to at now: the newest (latest
// NotBefore) of those currently valid, preferring certificates whose key usage allows key
// encipherment, so that a partner with separate signing and encryption certificates gets
// the right one. It returns nil when no certificate is valid at now.
func (p *Partner) EncryptionCertificate(now time.Time) *x509.Certificate {
	var best, bestAny *x509.Certificate
	for _, c := range p.Certificates {
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			continue
		}
		if bestAny == nil || c.NotBefore.After(bestAny.NotBefore) {
			bestAny = c
		}
		if c.KeyUsage != 0 && c.KeyUsage&x509.KeyUsageKeyEncipherment == 0 {
			continue
		}
		if best == nil || c.NotBefore.After(best.NotBefore) {
			best = c
		}
	}
	if best == nil {
		// QUIRK: some partners issue themselves certificates with digitalSignature only and
		// encrypt with them all the same; a wrong key usage is better than no message.
		return bestAny
	}
	return best
}

// Station returns the station with the AS2 id, or nil.
func (c *Config) Station(as2ID string) *Station {
	for _, s := range c.Stations {
		if s.AS2ID == as2ID {
			return s
		}
	}
	return nil
}

// Partner returns the partner with the AS2 id, or nil.
func (c *Config) Partner(as2ID string) *Partner {
	for _, p := range c.Partners {
		if p.AS2ID == as2ID {
			return p
		}
	}
	return nil
}

// Inbox returns the folder inbound payloads from the partner go to:
// InboxDir/<partner AS2 id made safe as a file name>.
func (c *Config) Inbox(partnerID string) string {
	dir := c.InboxDir
	if dir == "" {
		dir = filepath.Join(c.DataDir, "inbox")
	}
	return filepath.Join(dir, safeName(partnerID))
}

// KeysDir returns the folder generated identities and tokens are kept in: DataDir/keys.
func (c *Config) KeysDir() string { return filepath.Join(c.DataDir, "keys") }

// NamedCertificate is a certificate of the configuration and where it comes from, for
// expiry warnings.
type NamedCertificate struct {
	Key         string // the key path, e.g. "partners[1].certs[0]"
	Owner       string // "station GATEWAY", "partner PARTNERX", "listener as2"
	Certificate *x509.Certificate
}

// Certificates returns every loaded certificate of the configuration that the gateway
// presents or relies on: station, TLS and partner certificates (not CA chains).
func (c *Config) Certificates() []NamedCertificate {
	var out []NamedCertificate
	add := func(key, owner string, cert *x509.Certificate) {
		if cert != nil {
			out = append(out, NamedCertificate{Key: key, Owner: owner, Certificate: cert})
		}
	}
	for i, s := range c.Stations {
		owner := "station " + s.AS2ID
		add(keyf("stations[%d].cert", i), owner, s.Certificate)
		for j, p := range s.Previous {
			add(keyf("stations[%d].previous_keys[%d].cert", i, j), owner, p.Certificate)
		}
		if s.TLSCertificate != nil {
			add(keyf("stations[%d].tls_cert", i), owner, s.TLSCertificate.Leaf)
		}
	}
	if l := c.TLS.AS2; l != nil && l.Certificate != nil {
		add("tls.as2.cert", "listener as2", l.Certificate.Leaf)
	}
	if l := c.TLS.Admin; l != nil && l.Certificate != nil {
		add("tls.admin.cert", "listener admin", l.Certificate.Leaf)
	}
	for i, p := range c.Partners {
		for j, cert := range p.Certificates {
			add(keyf("partners[%d].certs[%d]", i, j), "partner "+p.AS2ID, cert)
		}
	}
	return out
}

// DefaultSettings returns the partner settings a configuration starts from.
func DefaultSettings() Settings {
	return Settings{
		Sign:         as2.MICAlgSHA256,
		Encrypt:      cms.AES256CBC,
		KeyTransport: cms.KeyTransport{},
		Compress:     as2.NoCompression,
		MDN:          as2.MDNSync,
		MDNSigned:    true,
		Require:      Require{Signed: true, Encrypted: true},
		Retry: RetryPolicies{
			Failed: Retry{Enabled: true, Strategy: Exponential, Attempts: 10,
				Initial: 30 * time.Second, Interval: 15 * time.Minute, Duration: 2 * time.Hour},
			Incomplete: Retry{Enabled: false, Strategy: Exponential, Attempts: 3,
				Initial: 30 * time.Second, Interval: 15 * time.Minute, Duration: 2 * time.Hour},
		},
		Timeouts: Timeouts{
			Connect:      30 * time.Second,
			Transmission: 60 * time.Second,
			AsyncMDN:     time.Hour,
		},
		MaxSize:     DefaultMaxSize,
		Concurrency: DefaultConcurrency,
		MDNPolicy:   MDNPolicySender,
	}
}

// Default returns the configuration of a gateway started without a file (DESIGN.md §6): data
// in ./as2gate-data with an embedded SQLite database, the partner listener on :4080, the
// console on 127.0.0.1:8080, no stations (EnsureStation makes one) and no partners.
func Default() *Config {
	return &Config{
		DataDir:     DefaultDataDir,
		Database:    DefaultDatabase,
		Listen:      Listen{AS2: DefaultAS2Listen, Admin: DefaultAdminListen},
		DedupWindow: DefaultDedupWindow,
		Workers:     DefaultWorkers,
		Lease:       DefaultLease,
		Log:         Log{Format: LogAuto, Level: slog.LevelInfo},
		Notify:      Notify{CertExpiryWarning: DefaultCertExpiryWarning},
		Defaults:    DefaultSettings(),
	}
}
