package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/internal/api"
	"github.com/as2gate/as2gate/internal/config"
	"github.com/as2gate/as2gate/internal/inbound"
	"github.com/as2gate/as2gate/internal/metrics"
	"github.com/as2gate/as2gate/internal/notify"
	"github.com/as2gate/as2gate/internal/outbound"
	"github.com/as2gate/as2gate/internal/payload"
	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/web"
)

// Gateway is the running program: the configuration wired to its store, its listeners and
// its workers. Open builds it, Run serves until the context ends, then stops gracefully.
type Gateway struct {
	cfg      *config.Config
	log      *slog.Logger
	store    store.Store
	payloads payload.Store
	metrics  *metrics.Metrics
	worker   *outbound.Worker
	partners *partners
	entries  *managedEntries
	// entryPoll is how often the change counter of the entries kept in the database is
	// read, to apply another node's change.
	entryPoll time.Duration
	backend   *inbound.Backend
	notifier  *notify.Notifier
	expiry    *expiryWatch
	as2Srv    *http.Server
	adminSrv  *http.Server
	as2Ln     net.Listener
	adminLn   net.Listener
	token     string // a generated API token, printed at start
	// adminPassword is the password of the console's first user when this start created it,
	// printed once by serve; "" otherwise.
	adminPassword string
}

// Open wires cfg (already validated) and binds both listeners.
func Open(ctx context.Context, cfg *config.Config, log *slog.Logger) (g *Gateway, err error) {
	g = &Gateway{cfg: cfg, log: log}
	opened := g // the error returns set g to nil; what was opened is closed all the same
	defer func() {
		if err != nil {
			opened.Close()
		}
	}()
	for _, dir := range []string{cfg.DataDir, g.spoolDir()} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("data folder: %w", err)
		}
	}
	if g.store, err = openStore(ctx, cfg, false); err != nil {
		return nil, err
	}
	if g.adminPassword, err = web.EnsureAdmin(ctx, g.store); err != nil {
		return nil, err
	}
	if g.payloads, err = openPayloads(ctx, cfg, g.spoolDir()); err != nil {
		return nil, err
	}
	nc, err := notifyConfig(cfg)
	if err != nil {
		return nil, err
	}
	g.notifier, err = notify.New(nc, log.With("component", "notify"))
	if err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	g.expiry = newExpiryWatch(cfg, g.notifier, log.With("component", "expiry"))
	g.partners = newPartners(cfg, g.spoolDir(), time.Now)
	// The expiry watch hears of every configuration put in effect, the first (the file with
	// the entries kept in the database) included.
	g.entries = newManagedEntries(cfg, g.store, g.partners, log.With("component", "config"),
		func(c *config.Config) { g.expiry.setCertificates(c.Certificates()) })
	if err := g.entries.load(ctx); err != nil {
		return nil, err
	}
	g.entryPoll = defaultEntryPoll
	if g.metrics, err = newMetrics(func() *config.Config { return g.partners.current().cfg }, g.store, log.With("component", "metrics")); err != nil {
		return nil, err
	}
	owner, err := leaseOwner(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	g.worker, err = outbound.New(outbound.Config{
		Store: g.store, Payloads: g.payloads, Partners: g.partners,
		Owner:       owner,
		Concurrency: cfg.Workers, PerPartner: cfg.Defaults.Concurrency, PartnerLimits: g.partners.limits, Lease: cfg.Lease,
		SpoolDir: g.spoolDir(), Log: log.With("component", "outbound"), Metrics: g.metrics,
		OnFailed: func(ctx context.Context, m *store.Message, f outbound.Failure) {
			g.notifier.Notify(ctx, notify.MessageEvent(notify.MessageFailed, m, &store.Attempt{Class: f.Class, Code: f.Code, Error: f.Error, Action: f.Action}, time.Now()))
		},
	})
	if err != nil {
		return nil, err
	}
	backend, err := inbound.New(inbound.Config{
		Store: g.store, Payloads: g.payloads, Agreements: g.partners,
		DedupWindow: cfg.DedupWindow, AllowPrivateMDNURLs: cfg.AllowPrivateMDNURLs,
		ReportingUA: "as2gate " + version, Wake: g.worker.Wake, Log: log.With("component", "inbound"), Metrics: g.metrics,
		OnMDNFailed: func(ctx context.Context, m *store.Message, a *store.Attempt) {
			g.notifier.Notify(ctx, notify.MessageEvent(notify.MessageFailed, m, a, time.Now()))
		},
		OnSuspended: func(ctx context.Context, m *store.Message, reason string) {
			g.notifier.Notify(ctx, notify.MessageEvent(notify.MessageSuspended, m, nil, time.Now()))
		},
	})
	if err != nil {
		return nil, err
	}
	a := api.New(api.Config{
		Store: g.store, Payloads: g.payloads, Certificates: g.partners,
		Tokens: cfg.APITokens, SpoolDir: g.spoolDir(), UploadLimit: func() int64 { return maxUpload(g.partners.current().cfg) }, Log: log.With("component", "api"),
		Submit: func(ctx context.Context, s outbound.Submission) (*store.Message, error) {
			return g.worker.Submit(ctx, g.partners, s)
		},
		Actions:  outbound.NewActions(g.worker, g.partners),
		Received: backend,
		Partners: g.partners,
		Entries:  g.entries,
		Ready: func(ctx context.Context) error {
			if err := g.store.Ping(ctx); err != nil {
				return fmt.Errorf("database: %w", err)
			}
			return g.payloads.Ping(ctx)
		},
	})
	console, err := web.New(web.Config{
		Store: g.store, Payloads: g.payloads, Actions: outbound.NewActions(g.worker, g.partners),
		Submit: func(ctx context.Context, s outbound.Submission) (*store.Message, error) {
			return g.worker.Submit(ctx, g.partners, s)
		},
		SendChoices: g.partners.sendChoices, SpoolDir: g.spoolDir(),
		Partners: consolePartners{g.partners}, Entries: consoleEntries{g.entries},
		Secure: cfg.TLS.Admin != nil && cfg.TLS.Admin.Certificate != nil, Log: log.With("component", "web"),
	})
	if err != nil {
		return nil, err
	}
	g.backend = backend
	as2Handler := &as2.Handler{Backend: backend, SpoolDir: g.spoolDir()}
	// The partner listener faces anyone: headers must come quickly and stay small, and an idle
	// keep-alive connection is not held for long. The body has no overall deadline, since a
	// large message may take long; the handler bounds its size.
	g.as2Srv = &http.Server{Handler: as2Handler, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	g.adminSrv = &http.Server{Handler: withPprof(adminHandler(a.Handler(), console.Handler(), g.metrics.Handler(log.With("component", "metrics")))), ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	if g.as2Ln, err = listen(cfg.Listen.AS2, cfg.TLS.AS2); err != nil {
		return nil, fmt.Errorf("listen.as2: %w", err)
	}
	if g.adminLn, err = listen(cfg.Listen.Admin, cfg.TLS.Admin); err != nil {
		return nil, fmt.Errorf("listen.admin: %w", err)
	}
	return g, nil
}

// defaultEntryPoll is how often a node looks for another node's change of the partners,
// stations and profiles kept in the database: a few seconds, one small query each.
const defaultEntryPoll = 5 * time.Second

// adminHandler serves the admin listener: the API, the health endpoints and the metrics
// under their own paths, the console at every other path. /metrics asks for no token, as
// /healthz and /readyz do not: Prometheus scrapes without credentials unless each target is
// configured with them, the admin listener is on loopback unless configured otherwise, and
// the figures hold no message content (partner AS2 ids and certificate subjects at most).
func adminHandler(api, console, metrics http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/", api)
	mux.Handle("/healthz", api)
	mux.Handle("/readyz", api)
	mux.Handle("GET /metrics", metrics)
	mux.Handle("/", console)
	return mux
}

// AdminPassword is the password of the console's first user when this start created it,
// and "" when users existed.
func (g *Gateway) AdminPassword() string { return g.adminPassword }

// leaseOwner names this node in the queue's leases: its host, its data folder and the
// random id kept in that folder (node-id), the same across restarts, so that a node
// restarted after kill -9 takes its in-flight rows back at once (outbound.Config.Owner)
// instead of waiting for their leases to expire. The id keeps the names of nodes sharing a
// database distinct even where the host name and the folder's path are alike (containers
// with a fixed host name and the same mount).
func leaseOwner(dataDir string) (string, error) {
	host, err := os.Hostname()
	if err != nil {
		host = "localhost"
	}
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	id, err := nodeID(filepath.Join(dataDir, "node-id"))
	if err != nil {
		return "", fmt.Errorf("this node's id: %w", err)
	}
	return host + ":" + dataDir + "#" + id, nil
}

// nodeID reads the id in path, or makes one there (16 hex digits) when there is none.
func nodeID(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			return id, nil
		}
		return "", fmt.Errorf("%s is empty: remove it and a new id is made", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if errors.Is(err, os.ErrExist) {
		return nodeID(path) // another start made it first
	}
	if err != nil {
		return "", err
	}
	_, werr := f.WriteString(id + "\n")
	if serr := f.Sync(); werr == nil {
		werr = serr
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(path)
		return "", werr
	}
	return id, nil
}

func (g *Gateway) spoolDir() string { return filepath.Join(g.cfg.DataDir, "tmp") }

func listen(addr string, t *config.ListenerTLS) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	if t != nil && t.Certificate != nil {
		ln = tls.NewListener(ln, t.ServerConfig())
	}
	return ln, nil
}

// Run serves both listeners and runs the send worker until ctx ends, then shuts down:
// in-flight sends return to the queue, requests in progress get a grace period.
func (g *Gateway) Run(ctx context.Context) error {
	_, cluster := g.store.(store.Elector)
	if !cluster {
		// Deliveries a crash interrupted are done before anything new arrives. Nodes sharing
		// a database leave this to the elected sweep below instead, since another node may be
		// delivering a message it has just received.
		if n, err := g.backend.Redeliver(ctx, time.Time{}); err != nil {
			g.log.Error("delivering received messages left undelivered", "err", err)
		} else if n > 0 {
			g.log.Info("delivered received messages left undelivered by the last stop", "messages", n)
		}
	}
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	serve := func(srv *http.Server, ln net.Listener) {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}
	wg.Add(2)
	go serve(g.as2Srv, g.as2Ln)
	go serve(g.adminSrv, g.adminLn)
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	workerDone := make(chan struct{})
	go func() {
		defer close(workerDone)
		g.worker.Run(workerCtx)
	}()
	pollCtx, stopPoll := context.WithCancel(ctx)
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		t := time.NewTicker(g.entryPoll)
		defer t.Stop()
		g.entries.poll(pollCtx, t.C)
	}()
	expiryCtx, stopExpiry := context.WithCancel(ctx)
	expiryDone := make(chan struct{})
	go func() {
		defer close(expiryDone)
		// Nodes sharing a database elect one to report expiring certificates, so a
		// notification goes out once per cluster; a single node always leads.
		store.Lead(expiryCtx, g.store, "cert-expiry", func(ctx context.Context) {
			g.expiry.run(ctx, time.After)
		}, func(err error) {
			g.log.Error("campaigning to report certificate expiry", "err", err)
		})
	}()
	sweepCtx, stopSweep := context.WithCancel(ctx)
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		if !cluster {
			return
		}
		store.Lead(sweepCtx, g.store, "redeliver", func(ctx context.Context) {
			g.redeliverSweep(ctx, time.Now, time.Tick(redeliverEvery))
		}, func(err error) {
			g.log.Error("campaigning to deliver received messages left undelivered", "err", err)
		})
	}()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	g.as2Srv.Shutdown(shutdownCtx)
	g.adminSrv.Shutdown(shutdownCtx)
	stopWorker()
	<-workerDone
	stopPoll()
	<-pollDone
	stopSweep()
	<-sweepDone
	stopExpiry()
	<-expiryDone // it must not notify after the notifier is closed
	wg.Wait()
	g.notifier.Close(shutdownCtx)
	return err
}

// redeliverEvery is how often the elected node of a cluster looks for received messages
// whose delivery is overdue, and deliveryGrace how long after its receipt a delivery is
// overdue: the receiving node delivers at once, so a message still undelivered after that
// was received by a node that stopped before delivering it.
const (
	redeliverEvery = time.Minute
	deliveryGrace  = 2 * time.Minute
)

// redeliverSweep delivers, at once and then at each tick until ctx ends, the received
// messages left undelivered for longer than deliveryGrace (Backend.Redeliver).
func (g *Gateway) redeliverSweep(ctx context.Context, now func() time.Time, tick <-chan time.Time) {
	for {
		if n, err := g.backend.Redeliver(ctx, now().Add(-deliveryGrace)); err != nil && ctx.Err() == nil {
			g.log.Error("delivering received messages left undelivered", "err", err)
		} else if n > 0 {
			g.log.Info("delivered received messages another node left undelivered", "messages", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}

// AS2Addr and AdminAddr are the bound addresses (useful with port 0).
func (g *Gateway) AS2Addr() net.Addr   { return g.as2Ln.Addr() }
func (g *Gateway) AdminAddr() net.Addr { return g.adminLn.Addr() }

// Close releases what Open acquired; Run's shutdown does not close the store.
func (g *Gateway) Close() error {
	if c, ok := g.payloads.(io.Closer); ok {
		c.Close()
	}
	for _, c := range []io.Closer{g.as2Ln, g.adminLn} {
		if c != nil {
			c.Close()
		}
	}
	if g.store != nil {
		return g.store.Close()
	}
	return nil
}

func redact(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "…" + s[i:]
		}
	}
	return s
}

// notifyConfig maps the notify section of a validated configuration to the notifier's
// settings. The notifier refuses what the configuration's checks let through in two cases,
// and those are reported here under the configuration's key paths: an SMTP password with
// neither starttls nor tls, and a webhook secret too short to sign with.
func notifyConfig(cfg *config.Config) (notify.Config, error) {
	var nc notify.Config
	if e := cfg.Notify.Email; e != nil {
		host, portText, err := net.SplitHostPort(e.SMTP)
		if err != nil {
			return nc, fmt.Errorf("notify.email.smtp: %q is not host:port: %w", e.SMTP, err)
		}
		port, err := strconv.Atoi(portText)
		if err != nil || port < 1 || port > 65535 {
			return nc, fmt.Errorf("notify.email.smtp: %q: the port must be a number from 1 to 65535", e.SMTP)
		}
		ec := &notify.EmailConfig{Host: host, Port: port, Username: e.Username, Password: e.Password, From: e.From, To: e.To}
		switch {
		case e.TLS:
			ec.TLS = notify.EmailImplicitTLS
		case e.StartTLS:
			ec.TLS = notify.EmailSTARTTLS
		default:
			ec.TLS = notify.EmailNoTLS
		}
		nc.Email = ec
	}
	if w := cfg.Notify.Webhook; w != nil {
		nc.Webhook = &notify.WebhookConfig{URL: w.URL, Secret: string(w.Secret)}
	}
	return nc, nil
}

// partnerLimits is each partner's concurrency setting, for the send worker.
func partnerLimits(cfg *config.Config) map[string]int {
	m := make(map[string]int, len(cfg.Partners))
	for _, p := range cfg.Partners {
		m[p.AS2ID] = p.Concurrency
	}
	return m
}
