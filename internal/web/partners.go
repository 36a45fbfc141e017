package web

import (
	"context"
	"net/http"
	"time"
)

// Partners reads the configured partners and stations: the method set of the API's partner
// source, with the console's own records, since the two packages do not import each other.
type Partners interface {
	// PartnerSettings returns every partner, in configuration order.
	PartnerSettings(ctx context.Context) ([]PartnerSettings, error)
	// StationSettings returns every station, in configuration order.
	StationSettings(ctx context.Context) ([]StationSettings, error)
}

// PartnerSettings is what the partners page shows of a partner: never a secret.
type PartnerSettings struct {
	AS2ID        string
	URL          string
	Station      string // the station that speaks with the partner
	Sign         string // "none" or the digest, e.g. "sha256"
	Encrypt      string // "none" or the cipher
	MDN          string // "none", "sync" or "async"
	Certificates []Certificate
	Source       string // "file" (read-only here) or "database"
	Revision     int64  // of a database entry
}

// StationSettings is what the partners page shows of one of our stations: never its keys.
type StationSettings struct {
	AS2ID        string
	Certificates []Certificate
	Source       string // "file" (read-only here) or "database"
	Revision     int64  // of a database entry
}

// Certificate describes a certificate for an operator who must replace it in time.
type Certificate struct {
	Use      string // "signing", "chain", "previous", "tls-client"; "" for a partner's
	Subject  string
	Issuer   string
	Serial   string // hex
	NotAfter time.Time
	// DaysLeft counts whole days until NotAfter; it is negative once the certificate expired.
	DaysLeft int
	SHA256   string // fingerprint of the DER encoding, hex
}

// expiryWarning is how close to its end a certificate is highlighted: time enough to agree
// on a new one with the partner.
const expiryWarning = 30

// partnersView is the partners page.
type partnersView struct {
	layout
	Configured bool // false when the gateway has no partner source
	CanEdit    bool // entries kept in the database may be changed here
	Partners   []partnerRow
	Stations   []stationRow
	Notice     string // what the last change did
}

type partnerRow struct {
	PartnerSettings
	Certs []certRow
}

type stationRow struct {
	StationSettings
	Certs []certRow
}

type certRow struct {
	Certificate
	Expired bool
	Soon    bool // within expiryWarning days
	Ago     int  // for an expired one: how many days ago, counted as DaysLeft counts
}

// partners serves GET /partners.
func (c *Console) partners(w http.ResponseWriter, r *http.Request, s *session) {
	v := partnersView{layout: layout{Title: "Partners", User: s.user}, Configured: c.cfg.Partners != nil, CanEdit: c.cfg.Entries != nil}
	v.Notice = notice(r)
	if v.Configured {
		ps, err := c.cfg.Partners.PartnerSettings(r.Context())
		if err != nil {
			c.settingsFailed(w, s, err)
			return
		}
		ss, err := c.cfg.Partners.StationSettings(r.Context())
		if err != nil {
			c.settingsFailed(w, s, err)
			return
		}
		for _, p := range ps {
			v.Partners = append(v.Partners, partnerRow{PartnerSettings: p, Certs: certRows(p.Certificates)})
		}
		for _, st := range ss {
			v.Stations = append(v.Stations, stationRow{StationSettings: st, Certs: certRows(st.Certificates)})
		}
	}
	c.render(w, http.StatusOK, "partners", v)
}

func certRows(cs []Certificate) []certRow {
	rows := make([]certRow, 0, len(cs))
	for _, ce := range cs {
		rows = append(rows, certRow{Certificate: ce, Expired: ce.DaysLeft < 0, Soon: ce.DaysLeft >= 0 && ce.DaysLeft <= expiryWarning, Ago: -ce.DaysLeft})
	}
	return rows
}

// settingsFailed shows that the partner settings could not be read.
func (c *Console) settingsFailed(w http.ResponseWriter, s *session, err error) {
	c.cfg.Log.Error("console: reading the partner settings", "err", err)
	c.fail(w, http.StatusInternalServerError, s.user, "The partner settings cannot be read; the log has the details.")
}
