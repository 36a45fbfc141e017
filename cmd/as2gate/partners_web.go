package main

import (
	"context"

	"github.com/as2gate/as2gate/internal/api"
	"github.com/as2gate/as2gate/internal/web"
)

// consolePartners gives the console the partner settings the API shows, in the console's
// own records: the two packages do not import each other, so the conversion lives here.
type consolePartners struct{ p *partners }

// PartnerSettings implements web.Partners.
func (c consolePartners) PartnerSettings(ctx context.Context) ([]web.PartnerSettings, error) {
	ps, err := c.p.PartnerSettings(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]web.PartnerSettings, 0, len(ps))
	for _, p := range ps {
		out = append(out, web.PartnerSettings{
			AS2ID: p.AS2ID, URL: p.URL, Station: p.Station, Sign: p.Sign, Encrypt: p.Encrypt, MDN: p.MDN,
			Certificates: webCertificates(p.Certificates), Source: p.Source, Revision: p.Revision,
		})
	}
	return out, nil
}

// StationSettings implements web.Partners.
func (c consolePartners) StationSettings(ctx context.Context) ([]web.StationSettings, error) {
	ss, err := c.p.StationSettings(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]web.StationSettings, 0, len(ss))
	for _, s := range ss {
		out = append(out, web.StationSettings{AS2ID: s.AS2ID, Certificates: webCertificates(s.Certificates), Source: s.Source, Revision: s.Revision})
	}
	return out, nil
}

func webCertificates(cs []api.CertificateInfo) []web.Certificate {
	out := make([]web.Certificate, 0, len(cs))
	for _, c := range cs {
		out = append(out, web.Certificate{
			Use: c.Use, Subject: c.Subject, Issuer: c.Issuer, Serial: c.Serial,
			NotAfter: c.NotAfter, DaysLeft: c.DaysLeft, SHA256: c.SHA256,
		})
	}
	return out
}
