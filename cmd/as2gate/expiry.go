package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/as2gate/as2gate/internal/config"
	"github.com/as2gate/as2gate/internal/notify"
)

// expiryStateFile is the file in data_dir that remembers which expiry step each certificate
// was last reported at, so that a restart does not report the same step again.
const expiryStateFile = "cert-expiry.json"

// expiryInterval is how often the certificates are checked. The steps are whole days
// apart, so a daily check reports each one on the day it is reached.
const expiryInterval = 24 * time.Hour

// maxExpiryState bounds the state file: an entry is about 80 bytes, so this holds the
// certificates of tens of thousands of partners.
const maxExpiryState = 4 << 20

// expiryWatch reports the configuration's certificates as they come close to expiry: a
// warning in the log for each certificate within the warning window at start, and a
// notification each time a certificate reaches a step (see notify.ExpiryEvents), once
// per step across restarts.
type expiryWatch struct {
	mu    sync.Mutex
	certs []config.NamedCertificate
	// changed wakes run when setCertificates changed the list; nil in tests that drive
	// check themselves.
	changed chan struct{}
	// window is notify.cert_expiry_warning: nothing is reported about a certificate with
	// more time left. A window shorter than 30 days skips the steps before it; a longer one
	// adds a first step when the certificate enters it.
	window time.Duration
	path   string // the state file
	now    func() time.Time
	notify func(context.Context, notify.Event)
	log    *slog.Logger
}

func newExpiryWatch(cfg *config.Config, n *notify.Notifier, log *slog.Logger) *expiryWatch {
	return &expiryWatch{
		certs:   cfg.Certificates(),
		changed: make(chan struct{}, 1),
		window:  cfg.Notify.CertExpiryWarning,
		path:    filepath.Join(cfg.DataDir, expiryStateFile),
		now:     time.Now,
		notify:  n.Notify,
		log:     log,
	}
}

// expiryState is the state file's content.
type expiryState struct {
	// Notified maps the SHA-256 fingerprint (hex) of a certificate to the step, in days,
	// it was last reported at: the notified argument of notify.ExpiryEvents.
	Notified map[string]int `json:"notified"`
}

// run warns about the certificates within the window, checks them at once and then every
// expiryInterval until ctx ends. after makes the wait (time.After outside tests).
func (w *expiryWatch) run(ctx context.Context, after func(time.Duration) <-chan time.Time) {
	if len(w.certList()) == 0 && w.changed == nil {
		return
	}
	w.warn(ctx)
	for {
		if err := w.check(ctx); err != nil {
			w.log.ErrorContext(ctx, "certificate expiry check failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-after(expiryInterval):
		case <-w.changed:
			// A partner or station changed at run time: its certificates are checked now,
			// not at the next daily check.
		}
	}
}

// certList returns the certificates watched now.
func (w *expiryWatch) certList() []config.NamedCertificate {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.certs
}

// setCertificates replaces the watched certificates with those of the configuration now in
// effect and has run check them at once.
func (w *expiryWatch) setCertificates(certs []config.NamedCertificate) {
	w.mu.Lock()
	w.certs = certs
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// warn logs a warning for every certificate that expires within the window or has
// expired, whether or not it was reported before: the log at start is where an operator
// looks first.
func (w *expiryWatch) warn(ctx context.Context) {
	now := w.now()
	for _, nc := range w.certList() {
		left := nc.Certificate.NotAfter.Sub(now)
		if left > w.window {
			continue
		}
		msg := "certificate expires soon"
		if left <= 0 {
			msg = "certificate has expired"
		}
		w.log.WarnContext(ctx, msg, "certificate", nc.Key, "owner", nc.Owner,
			"subject", nc.Certificate.Subject.String(), "not_after", nc.Certificate.NotAfter.UTC(),
			"days_left", daysLeft(now, nc.Certificate.NotAfter))
	}
}

// check queues a notification for each certificate that reached a step it was not reported
// at, then records the steps. The state is written only after the notifications are
// queued: a crash in between repeats a notification rather than losing one.
func (w *expiryWatch) check(ctx context.Context) error {
	st := w.load(ctx)
	now := w.now()
	events := w.due(now, st.Notified)
	for _, ev := range events {
		w.log.InfoContext(ctx, "certificate expiry reported", "owner", ev.Partner, "code", ev.Code,
			"certificate_sha256", ev.Certificate.SHA256, "days_left", ev.Certificate.DaysLeft,
			"threshold_days", ev.Certificate.Threshold)
		w.notify(ctx, ev)
	}
	changed := len(events) > 0
	for _, ev := range events {
		st.Notified[ev.Certificate.SHA256] = ev.Certificate.Threshold
	}
	// Forget certificates that left the configuration, so that the file stays as small as
	// the configuration; one that comes back starts afresh.
	certs := w.certList()
	configured := make(map[string]bool, len(certs))
	for _, nc := range certs {
		configured[fingerprint(nc.Certificate)] = true
	}
	for fp := range st.Notified {
		if !configured[fp] {
			delete(st.Notified, fp)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return w.save(st)
}

// due returns the events of the certificates that reached a step at now, in the order of
// the configuration.
func (w *expiryWatch) due(now time.Time, notified map[string]int) []notify.Event {
	var events []notify.Event
	windowDays := int(w.window / (24 * time.Hour))
	for _, nc := range w.certList() {
		cert := nc.Certificate
		if cert.NotAfter.Sub(now) > w.window {
			continue
		}
		owner, station, kind := expiryOwner(nc.Owner)
		evs := notify.ExpiryEvents(now, map[string][]*x509.Certificate{owner: {cert}}, notified)
		if _, inSteps := notify.ExpiryThreshold(now, cert.NotAfter); !inSteps {
			// Within a window longer than notify's first step: the window is a step of
			// its own, lower than none reported before.
			fp := fingerprint(cert)
			if last, seen := notified[fp]; !seen || last > windowDays {
				evs = []notify.Event{windowEvent(now, owner, cert, fp, windowDays)}
			}
		}
		for _, ev := range evs {
			ev.Station = station
			ev.Action = expiryAction(kind, owner, nc.Key)
			events = append(events, ev)
		}
	}
	return events
}

// windowEvent is the event of a certificate that entered a warning window longer than 30
// days, built as notify.ExpiryEvents builds the others.
func windowEvent(now time.Time, owner string, cert *x509.Certificate, fp string, windowDays int) notify.Event {
	serial := ""
	if cert.SerialNumber != nil {
		serial = cert.SerialNumber.Text(16)
	}
	return notify.Event{
		Type:    notify.CertificateExpiring,
		At:      now,
		Partner: owner,
		Code:    "certificate_expiring",
		Certificate: &notify.Certificate{
			Subject:   cert.Subject.String(),
			Issuer:    cert.Issuer.String(),
			Serial:    serial,
			SHA256:    fp,
			NotAfter:  cert.NotAfter,
			DaysLeft:  daysLeft(now, cert.NotAfter),
			Threshold: windowDays,
		},
	}
}

// Kinds of certificate owner, after the words config.Certificates puts before the AS2 id.
const (
	ownerStation  = "station"
	ownerPartner  = "partner"
	ownerListener = "listener"
)

// expiryOwner splits config.NamedCertificate.Owner ("station GATEWAY", "partner PARTNERX",
// "listener as2") into what an event names: the AS2 id of the station or partner (the
// listener's words for a listener certificate, which belongs to no AS2 id), the station's
// AS2 id when it is a station's, and the kind.
func expiryOwner(owner string) (id, station, kind string) {
	kind, id, ok := strings.Cut(owner, " ")
	if !ok {
		return owner, "", ""
	}
	switch kind {
	case ownerStation:
		return id, id, kind
	case ownerPartner:
		return id, "", kind
	}
	return owner, "", kind
}

// expiryAction says what to do about one certificate, naming the configuration key it is
// set at.
func expiryAction(kind, id, key string) string {
	switch {
	case kind == ownerPartner:
		return fmt.Sprintf("Ask %s for its new certificate and add it to the partner's certs (%s is the expiring one), "+
			"keeping the old one until the partner has switched; encryption uses the newest valid certificate, "+
			"and signatures are verified against all of them.", id, key)
	case kind == ownerStation && strings.HasSuffix(key, ".tls_cert"):
		return fmt.Sprintf("Renew the TLS client certificate of station %s (%s), give the new one to the partners "+
			"that check it, and restart the gateway.", id, key)
	case kind == ownerStation:
		return fmt.Sprintf("Make a new key and certificate for station %s (as2gate keys generate), send the certificate "+
			"to every partner, then set it as the station's key and cert (%s is the expiring one) and move the old pair "+
			"to previous_keys, so that messages still encrypted to it can be read.", id, key)
	case kind == ownerListener:
		return fmt.Sprintf("Renew the HTTPS certificate of the %s (%s) and restart the gateway; partners that pin it "+
			"need the new one first.", id, key)
	}
	return fmt.Sprintf("Replace the certificate at %s before it expires.", key)
}

// load reads the state file. A missing file is an empty state; so is an unreadable one,
// after a warning: repeating a notification is better than never sending one again.
func (w *expiryWatch) load(ctx context.Context) expiryState {
	st := expiryState{Notified: map[string]int{}}
	f, err := os.Open(w.path)
	if errors.Is(err, fs.ErrNotExist) {
		return st
	}
	if err == nil {
		var data []byte
		data, err = io.ReadAll(io.LimitReader(f, maxExpiryState+1))
		f.Close()
		switch {
		case err != nil:
		case len(data) > maxExpiryState:
			err = fmt.Errorf("larger than %d bytes", maxExpiryState)
		default:
			err = json.Unmarshal(data, &st)
		}
	}
	if err != nil {
		w.log.WarnContext(ctx, "certificate expiry state unreadable: starting afresh, so a notification may repeat",
			"file", w.path, "error", err)
		return expiryState{Notified: map[string]int{}}
	}
	if st.Notified == nil {
		st.Notified = map[string]int{}
	}
	return st
}

// save writes the state file atomically: a new file, synced, renamed over the old one, and
// the folder synced, so that a crash leaves the old state or the new one, never half of it.
func (w *expiryWatch) save(st expiryState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("certificate expiry state: %w", err)
	}
	dir := filepath.Dir(w.path)
	f, err := os.CreateTemp(dir, "."+expiryStateFile+".*")
	if err != nil {
		return fmt.Errorf("certificate expiry state: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, w.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("certificate expiry state: writing %s: %w", w.path, err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("certificate expiry state: syncing %s: %w", dir, err)
		}
	}
	return nil
}

func fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// daysLeft counts whole days until notAfter as notify.Certificate.DaysLeft does: 0 on the
// last day, negative once expired.
func daysLeft(now, notAfter time.Time) int {
	return int(math.Floor(notAfter.Sub(now).Hours() / 24))
}
