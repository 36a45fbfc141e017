package main

import (
	"context"
	"crypto/x509"
	"slices"
	"strings"

	"github.com/as2gate/as2gate/internal/api"
	"github.com/as2gate/as2gate/internal/config"
	"github.com/as2gate/as2gate/internal/store"
)

// PartnerSettings implements api.Partners: the configured partners without their secrets.
func (p *partners) PartnerSettings(_ context.Context) ([]api.PartnerSettings, error) {
	now := p.now()
	r := p.current()
	out := make([]api.PartnerSettings, 0, len(r.cfg.Partners))
	for _, pt := range r.cfg.Partners {
		source, rev := r.source(store.EntryPartner, pt.AS2ID)
		s := api.PartnerSettings{
			AS2ID: pt.AS2ID, URL: pt.URL, Station: pt.Station,
			Sign: "none", PSS: pt.PSS, Encrypt: "none", KeyTransport: pt.KeyTransport.String(),
			Compress: pt.Compress.String(), MDN: pt.MDN.String(), MDNSigned: pt.MDNSigned,
			MaxSize: pt.MaxSize, Concurrency: pt.Concurrency, MDNPolicy: pt.MDNPolicy,
			Headers: []string{}, Auth: "none", Certificates: []api.CertificateInfo{},
			Source: source, Revision: rev,
		}
		if pt.Sign != 0 {
			// The configuration spelling ("sha256"), not the micalg one ("sha-256").
			s.Sign = strings.ReplaceAll(pt.Sign.String(), "-", "")
		}
		if pt.Encrypt != 0 {
			s.Encrypt = pt.Encrypt.String()
		}
		s.Require.Signed, s.Require.Encrypted, s.Require.Compressed = pt.Require.Signed, pt.Require.Encrypted, pt.Require.Compressed
		s.Retry.Failed, s.Retry.Incomplete = retrySettings(pt.Retry.Failed), retrySettings(pt.Retry.Incomplete)
		s.Timeouts.Connect = api.Duration(pt.Timeouts.Connect)
		s.Timeouts.Transmission = api.Duration(pt.Timeouts.Transmission)
		s.Timeouts.AsyncMDN = api.Duration(pt.Timeouts.AsyncMDN)
		for name := range pt.Header {
			s.Headers = append(s.Headers, name)
		}
		slices.Sort(s.Headers)
		switch {
		case pt.Auth.Basic != nil:
			s.Auth = "basic"
		case pt.Auth.Bearer != "" || pt.Auth.BearerFile != "":
			s.Auth = "bearer"
		}
		for _, c := range pt.Certificates {
			s.Certificates = append(s.Certificates, api.NewCertificateInfo(c, "", source, now))
		}
		out = append(out, s)
	}
	return out, nil
}

func retrySettings(r config.Retry) api.RetrySettings {
	s := api.RetrySettings{Enabled: r.Enabled, Strategy: r.Strategy.String()}
	switch r.Strategy {
	case config.Exponential:
		s.Attempts, s.Initial = r.Attempts, api.Duration(r.Initial)
	case config.Fixed:
		s.Interval, s.Duration = api.Duration(r.Interval), api.Duration(r.Duration)
	}
	return s
}

// StationSettings implements api.Partners: the stations' certificates, never their keys.
func (p *partners) StationSettings(_ context.Context) ([]api.StationSettings, error) {
	now := p.now()
	r := p.current()
	out := make([]api.StationSettings, 0, len(r.cfg.Stations))
	for _, st := range r.cfg.Stations {
		source, rev := r.source(store.EntryStation, st.AS2ID)
		s := api.StationSettings{AS2ID: st.AS2ID, Certificates: []api.CertificateInfo{}, Source: source, Revision: rev}
		add := func(c *x509.Certificate, use string) {
			if c != nil {
				s.Certificates = append(s.Certificates, api.NewCertificateInfo(c, use, source, now))
			}
		}
		add(st.Certificate, "signing")
		for _, c := range st.Chain {
			add(c, "chain")
		}
		for _, id := range st.Previous {
			add(id.Certificate, "previous")
		}
		if st.TLSCertificate != nil {
			add(st.TLSCertificate.Leaf, "tls-client")
			if st.TLSCertificate.Leaf == nil && len(st.TLSCertificate.Certificate) > 0 {
				if c, err := x509.ParseCertificate(st.TLSCertificate.Certificate[0]); err == nil {
					add(c, "tls-client")
				}
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// ProfileSettings implements api.Partners: the send profiles with the names of their
// headers (values may be credentials).
func (p *partners) ProfileSettings(_ context.Context) ([]api.ProfileSettings, error) {
	r := p.current()
	out := make([]api.ProfileSettings, 0, len(r.cfg.Profiles))
	for _, pr := range r.cfg.Profiles {
		source, rev := r.source(store.EntryProfile, pr.Name)
		s := api.ProfileSettings{Name: pr.Name, Headers: []string{}, Source: source, Revision: rev}
		for name := range pr.Header {
			s.Headers = append(s.Headers, name)
		}
		slices.Sort(s.Headers)
		out = append(out, s)
	}
	return out, nil
}
