package api

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net/http"
	"time"
)

// Partners reads the configured partners and stations for the read-only routes under
// /api/v1/partners and /api/v1/stations.
type Partners interface {
	// PartnerSettings returns every partner, in configuration order.
	PartnerSettings(ctx context.Context) ([]PartnerSettings, error)
	// StationSettings returns every station, in configuration order.
	StationSettings(ctx context.Context) ([]StationSettings, error)
	// ProfileSettings returns every send profile, in configuration order.
	ProfileSettings(ctx context.Context) ([]ProfileSettings, error)
}

// Where an entry comes from: the configuration file (the API shows it and does not change
// it), or the database (managed at run time through the API, the CLI and the console).
const (
	SourceFile     = "file"
	SourceDatabase = "database"
)

// PartnerSettings is a partner and our agreement with it as the API shows them. It carries
// no secret: of the custom headers only the names, of the authentication only its kind.
type PartnerSettings struct {
	AS2ID        string `json:"as2_id"`
	URL          string `json:"url"`
	Station      string `json:"station"`
	Sign         string `json:"sign"`
	PSS          bool   `json:"pss"`
	Encrypt      string `json:"encrypt"`
	KeyTransport string `json:"key_transport"`
	Compress     string `json:"compress"`
	MDN          string `json:"mdn"`
	MDNSigned    bool   `json:"mdn_signed"`
	Require      struct {
		Signed     bool `json:"signed"`
		Encrypted  bool `json:"encrypted"`
		Compressed bool `json:"compressed"`
	} `json:"require"`
	Retry struct {
		Failed     RetrySettings `json:"failed"`
		Incomplete RetrySettings `json:"incomplete"`
	} `json:"retry"`
	Timeouts struct {
		Connect      Duration `json:"connect"`
		Transmission Duration `json:"transmission"`
		AsyncMDN     Duration `json:"async_mdn"`
	} `json:"timeouts"`
	MaxSize     int64  `json:"max_size"`
	Concurrency int    `json:"concurrency"`
	MDNPolicy   string `json:"mdn_policy"`
	// Headers are the names of the custom HTTP headers sent with every message; their
	// values may be credentials and are never shown.
	Headers []string `json:"headers"`
	// Auth is how we authenticate to the partner's server: "none", "basic" or "bearer".
	Auth         string            `json:"auth"`
	Certificates []CertificateInfo `json:"certificates"`
	Source       string            `json:"source"`
	// Revision is the revision of a database entry, for If-Match; 0 for a file entry.
	Revision int64 `json:"revision,omitempty"`
}

// RetrySettings is one retry policy as the API shows it.
type RetrySettings struct {
	Enabled  bool     `json:"enabled"`
	Strategy string   `json:"strategy"`
	Attempts int      `json:"attempts,omitempty"`
	Initial  Duration `json:"initial,omitempty"`
	Interval Duration `json:"interval,omitempty"`
	Duration Duration `json:"duration,omitempty"`
}

// StationSettings is one of our stations as the API shows it: never its keys.
type StationSettings struct {
	AS2ID string `json:"as2_id"`
	// Certificates are the signing and decryption certificate first, then the chain that
	// came with it, then those of previous keys, then the TLS client certificate.
	Certificates []CertificateInfo `json:"certificates"`
	Source       string            `json:"source"`
	Revision     int64             `json:"revision,omitempty"`
}

// ProfileSettings is a send profile as the API shows it: the names of its headers only.
type ProfileSettings struct {
	Name     string   `json:"name"`
	Headers  []string `json:"headers"`
	Source   string   `json:"source"`
	Revision int64    `json:"revision,omitempty"`
}

// Duration is a time.Duration that reads "30s" in JSON, the spelling of the configuration.
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("api: duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// CertificateInfo describes a certificate for an operator who must replace it in time.
type CertificateInfo struct {
	// Use says what the certificate is for, where a list holds several kinds ("signing",
	// "chain", "previous", "tls-client"); partner certificates leave it empty.
	Use       string    `json:"use,omitempty"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"` // hex
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// DaysLeft counts whole days until NotAfter; it is negative once the certificate expired.
	DaysLeft int    `json:"days_left"`
	SHA256   string `json:"sha256"` // fingerprint of the DER encoding, hex
	Source   string `json:"source"`
}

// NewCertificateInfo describes c as seen at now.
func NewCertificateInfo(c *x509.Certificate, use, source string, now time.Time) CertificateInfo {
	sum := sha256.Sum256(c.Raw)
	left := c.NotAfter.Sub(now)
	days := int(left / (24 * time.Hour))
	if left < 0 && left%(24*time.Hour) != 0 {
		days-- // an expired certificate is -1 days left on the day after, not 0
	}
	return CertificateInfo{
		Use: use, Subject: c.Subject.String(), Issuer: c.Issuer.String(),
		Serial:    hex.EncodeToString(c.SerialNumber.Bytes()),
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), DaysLeft: days,
		SHA256: hex.EncodeToString(sum[:]), Source: source,
	}
}

// partnerSource answers 501 when the gateway was built without a partner source.
func (a *API) partnerSource(w http.ResponseWriter) bool {
	if a.cfg.Partners == nil {
		writeError(w, http.StatusNotImplemented, "partners and stations are not available on this gateway")
		return false
	}
	return true
}

func (a *API) listPartners(w http.ResponseWriter, r *http.Request) {
	if a.partnerSource(w) {
		listAll(w, r, "partners", a.cfg.Partners.PartnerSettings)
	}
}

func (a *API) getPartner(w http.ResponseWriter, r *http.Request) {
	if a.partnerSource(w) {
		getOne(w, r, "partner", a.cfg.Partners.PartnerSettings, func(p PartnerSettings) string { return p.AS2ID })
	}
}

func (a *API) listStations(w http.ResponseWriter, r *http.Request) {
	if a.partnerSource(w) {
		listAll(w, r, "stations", a.cfg.Partners.StationSettings)
	}
}

func (a *API) getStation(w http.ResponseWriter, r *http.Request) {
	if a.partnerSource(w) {
		getOne(w, r, "station", a.cfg.Partners.StationSettings, func(s StationSettings) string { return s.AS2ID })
	}
}

// listAll answers {"<plural>": [...]} with every item read, an empty list rather than null.
func listAll[T any](w http.ResponseWriter, r *http.Request, plural string, read func(context.Context) ([]T, error)) {
	items, err := read(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the "+plural+": "+err.Error())
		return
	}
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{plural: items})
}

// getOne answers the item whose AS2 id is the path's as2_id, or 404 naming it.
func getOne[T any](w http.ResponseWriter, r *http.Request, what string, read func(context.Context) ([]T, error), id func(T) string) {
	items, err := read(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the "+what+"s: "+err.Error())
		return
	}
	want := r.PathValue("as2_id")
	for _, it := range items {
		if id(it) == want {
			writeJSON(w, http.StatusOK, it)
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no %s %q is configured", what, want))
}
