package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/internal/api"
	"github.com/as2gate/as2gate/internal/config"
	"github.com/as2gate/as2gate/internal/inbound"
	"github.com/as2gate/as2gate/internal/netpolicy"
	"github.com/as2gate/as2gate/internal/outbound"
	"github.com/as2gate/as2gate/internal/retry"
	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/web"
)

// partners turns the configuration into what the send worker, the submission router and the
// inbound backend ask for. The configuration in effect (the file's and the entries managed
// at run time) is swapped whole when an entry changes: each call reads one registry, so a
// message is never packed with half of an old agreement and half of a new one. HTTP clients
// are built once per partner agreement so that connections are reused between messages.
type partners struct {
	cur      atomic.Pointer[registry]
	now      func() time.Time
	spoolDir string
}

// registry is one configuration in effect and the clients built for it.
type registry struct {
	cfg       *config.Config
	clients   map[string]*http.Client
	mdnClient map[string]*http.Client
	domain    string
	// revisions holds the revision of each partner, station and profile managed at run time
	// (key kind + "/" + name); what is not in it comes from the file.
	revisions map[string]revision
}

// revision tells one write of an entry from every other: its revision number restarts at
// 1 when an entry is removed and added again, the time of the write does not.
type revision struct {
	N       int64
	Written time.Time
}

func (a revision) same(b revision) bool { return a.N == b.N && a.Written.Equal(b.Written) }

func newPartners(cfg *config.Config, spoolDir string, now func() time.Time) *partners {
	p := &partners{now: now, spoolDir: spoolDir}
	p.swap(cfg, nil)
	return p
}

func (p *partners) current() *registry { return p.cur.Load() }

func entryID(kind, name string) string { return kind + "/" + name }

// swap puts cfg in effect. A partner whose agreement did not change (from the file, or the
// same revision of its entry, on the same station) keeps its HTTP clients and their
// connections; the clients of the others are built anew and the old ones let go.
func (p *partners) swap(cfg *config.Config, revisions map[string]revision) {
	old := p.cur.Load()
	r := &registry{cfg: cfg, clients: map[string]*http.Client{}, mdnClient: map[string]*http.Client{}, domain: "as2gate", revisions: revisions}
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Hostname() != "" {
		r.domain = u.Hostname()
	}
	for _, pt := range cfg.Partners {
		if old != nil && old.unchanged(r, pt) {
			r.clients[pt.AS2ID], r.mdnClient[pt.AS2ID] = old.clients[pt.AS2ID], old.mdnClient[pt.AS2ID]
			continue
		}
		r.clients[pt.AS2ID], r.mdnClient[pt.AS2ID] = buildClients(cfg, pt)
	}
	p.cur.Store(r)
	if old == nil {
		return
	}
	for id, c := range old.clients {
		if r.clients[id] != c {
			c.CloseIdleConnections()
			old.mdnClient[id].CloseIdleConnections()
		}
	}
}

// unchanged reports whether partner pt of the new registry n has the agreement it has in
// r, so that its clients may be kept.
func (r *registry) unchanged(n *registry, pt *config.Partner) bool {
	was := r.cfg.Partner(pt.AS2ID)
	if was == nil || r.clients[pt.AS2ID] == nil || was.Station != pt.Station {
		return false
	}
	id, st := entryID(store.EntryPartner, pt.AS2ID), entryID(store.EntryStation, pt.Station)
	return r.revisions[id].same(n.revisions[id]) && r.revisions[st].same(n.revisions[st])
}

// source says where an entry comes from, and its revision when it is managed at run time.
func (r *registry) source(kind, name string) (string, int64) {
	if rev, ok := r.revisions[entryID(kind, name)]; ok {
		return api.SourceDatabase, rev.N
	}
	return api.SourceFile, 0
}

func buildClients(cfg *config.Config, pt *config.Partner) (*http.Client, *http.Client) {
	st := cfg.Station(pt.Station)
	dialer := &net.Dialer{Timeout: pt.Timeouts.Connect, KeepAlive: 30 * time.Second}
	if pt.SourceAddress.IsValid() {
		// Partners that allow-list addresses see this one (R-PART-4).
		dialer.LocalAddr = &net.TCPAddr{IP: pt.SourceAddress.AsSlice()}
	}
	client := &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       as2.ObserveClientCertificateRequests(pt.TLSConfig(st)),
		TLSHandshakeTimeout:   pt.Timeouts.Connect,
		ResponseHeaderTimeout: pt.Timeouts.Transmission,
		MaxIdleConnsPerHost:   pt.Concurrency,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     false, // AS2 products speak HTTP/1.1
	}}
	// Asynchronous MDNs go where the sender said: the address policy applies at connect
	// time, after name resolution.
	guarded := netpolicy.Dialer(dialer, cfg.AllowPrivateMDNURLs)
	mdn := &http.Client{Transport: &http.Transport{
		DialContext:           guarded.DialContext,
		TLSClientConfig:       pt.TLSConfig(st),
		TLSHandshakeTimeout:   pt.Timeouts.Connect,
		ResponseHeaderTimeout: pt.Timeouts.Transmission,
	}}
	return client, mdn
}

// limits is each partner's concurrency setting, for the send worker's claims.
func (p *partners) limits() map[string]int { return partnerLimits(p.current().cfg) }

func (r *registry) lookup(station, partner string) (*config.Partner, *config.Station, error) {
	pt := r.cfg.Partner(partner)
	if pt == nil {
		return nil, nil, fmt.Errorf("no partner %q is configured", partner)
	}
	if station != "" && pt.Station != station {
		return nil, nil, fmt.Errorf("partner %q trades with station %q, not %q", partner, pt.Station, station)
	}
	st := r.cfg.Station(pt.Station)
	if st == nil {
		return nil, nil, fmt.Errorf("partner %q names station %q, which is not configured", partner, pt.Station)
	}
	return pt, st, nil
}

// Partner implements outbound.Partners.
func (p *partners) Partner(_ context.Context, station, partner string) (*outbound.Partner, error) {
	r := p.current()
	pt, st, err := r.lookup(station, partner)
	if err != nil {
		return nil, err
	}
	opts := as2.PackOptions{
		From: st.AS2ID, To: pt.AS2ID, MessageIDDomain: r.domain,
		Sign: pt.Sign, PSS: pt.PSS, Certificate: st.Certificate, Key: st.Key,
		Compression: pt.Compress, Encrypt: pt.Encrypt, KeyTransport: pt.KeyTransport,
		MDN:    as2.MDNRequest{Mode: pt.MDN, Signed: pt.MDNSigned && pt.MDN != as2.MDNNone},
		Header: pt.Header,
	}
	if pt.Encrypt != 0 {
		cert := pt.EncryptionCertificate(p.now())
		if cert == nil {
			return nil, &outbound.ConfigError{What: "encryption certificate", Err: fmt.Errorf("partner %q has no certificate valid now to encrypt to", partner)}
		}
		opts.Recipients = append(opts.Recipients, cert)
	}
	if pt.MDN == as2.MDNAsync {
		opts.MDN.URL = r.cfg.PublicURL
	}
	send := as2.SendOptions{Trusted: pt.Certificates}
	if a := pt.Auth.Authorization(); a != "" {
		send.Header = http.Header{"Authorization": {a}}
	}
	profiles := make(map[string]http.Header, len(r.cfg.Profiles))
	for _, pr := range r.cfg.Profiles {
		profiles[pr.Name] = pr.Header
	}
	return &outbound.Partner{
		Pack: opts, Profiles: profiles, Send: send, Client: r.clients[pt.AS2ID],
		Failed: policy(pt.Retry.Failed), Incomplete: policy(pt.Retry.Incomplete),
		AsyncMDNTimeout: pt.Timeouts.AsyncMDN,
	}, nil
}

// MDNClient implements outbound.Partners.
func (p *partners) MDNClient(_ context.Context, station, partner string) (*http.Client, error) {
	r := p.current()
	if _, _, err := r.lookup(station, partner); err != nil {
		return nil, err
	}
	return r.mdnClient[partner], nil
}

func policy(r config.Retry) retry.Policy {
	return retry.Policy{
		Enabled: r.Enabled, Strategy: strings.ToLower(r.Strategy.String()), Attempts: r.Attempts,
		Initial: r.Initial, Interval: r.Interval, Duration: r.Duration,
	}
}

// sendChoices lists the partners and send profiles for the console's compose form.
func (p *partners) sendChoices(context.Context) web.SendChoices {
	cfg := p.current().cfg
	ids := make([]string, 0, len(cfg.Partners))
	for _, pt := range cfg.Partners {
		ids = append(ids, pt.AS2ID)
	}
	return web.SendChoices{Partners: ids, Profiles: cfg.ProfileNames()}
}

// Route implements outbound.Router.
func (p *partners) Route(_ context.Context, partner string) (*outbound.Route, error) {
	r := p.current()
	pt, st, err := r.lookup("", partner)
	if err != nil {
		return nil, err
	}
	return &outbound.Route{Station: st.AS2ID, URL: pt.URL, MessageIDDomain: r.domain, MDNMode: pt.MDN.String(),
		Profiles: r.cfg.ProfileNames()}, nil
}

// Agreement implements inbound.Agreements.
func (p *partners) Agreement(_ context.Context, station, partner string) (*inbound.Agreement, error) {
	cfg := p.current().cfg
	st := cfg.Station(station)
	if st == nil {
		return nil, fmt.Errorf("AS2-To %q is not a station of this gateway", station)
	}
	pt := cfg.Partner(partner)
	if pt == nil {
		return nil, fmt.Errorf("AS2-From %q is not a configured partner", partner)
	}
	if pt.Station != st.AS2ID {
		return nil, errors.New("partner " + partner + " trades with station " + pt.Station + ", not " + station)
	}
	return &inbound.Agreement{
		Station: st.AS2ID, Partner: pt.AS2ID,
		Unpack: as2.UnpackOptions{
			Recipients: st.Recipients(), Trusted: pt.Certificates, MaxSize: pt.MaxSize,
			SpoolDir: p.spoolDir,
		},
		MaxSize:           pt.MaxSize,
		RequireSigned:     pt.Require.Signed,
		RequireEncrypted:  pt.Require.Encrypted,
		RequireCompressed: pt.Require.Compressed,
		MDNSigner:         &as2.MDNSigner{Certificate: st.Certificate, Key: st.Key},
		MDNFromAgreement:  pt.MDNPolicy == config.MDNPolicyAgreement,
		MDNSigned:         pt.MDNSigned,
		MDNAlg:            pt.Sign,
		Inbox:             cfg.Inbox(pt.AS2ID),
	}, nil
}

// Certificates implements api.CertificateSource for the non-repudiation export: the station's
// signing certificate, the chain that came with it and the certificates of its previous keys
// (a message may predate a key rollover), and every certificate of the partner's.
func (p *partners) Certificates(_ context.Context, station, partner string) ([]*x509.Certificate, []*x509.Certificate, error) {
	pt, st, err := p.current().lookup(station, partner)
	if err != nil {
		return nil, nil, err
	}
	var ours []*x509.Certificate
	for _, id := range append([]config.Identity{st.Identity}, st.Previous...) {
		if id.Certificate != nil {
			ours = append(ours, id.Certificate)
		}
		ours = append(ours, id.Chain...)
	}
	return ours, pt.Certificates, nil
}
