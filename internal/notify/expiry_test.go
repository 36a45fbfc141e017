package notify

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/cms/cmstest"
)

const day = 24 * time.Hour

func TestExpiryThreshold(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		left   time.Duration // NotAfter - now
		days   int
		report bool
	}{
		{"a year left", 365 * day, 0, false},
		{"31 days left", 31 * day, 0, false},
		{"30 days and a second", 30*day + time.Second, 0, false},
		{"exactly 30 days", 30 * day, 30, true},
		{"20 days", 20 * day, 30, true},
		{"14 days and an hour", 14*day + time.Hour, 30, true},
		{"exactly 14 days", 14 * day, 14, true},
		{"8 days", 8 * day, 14, true},
		{"7 days", 7 * day, 7, true},
		{"2 days", 2 * day, 7, true},
		{"1 day", day, 1, true},
		{"an hour", time.Hour, 1, true},
		{"a second", time.Second, 1, true},
		{"expiring now", 0, 0, true},
		{"expired yesterday", -day, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			days, ok := ExpiryThreshold(t0, t0.Add(tt.left))
			if days != tt.days || ok != tt.report {
				t.Errorf("ExpiryThreshold(%v left) = %d, %v; want %d, %v", tt.left, days, ok, tt.days, tt.report)
			}
		})
	}
}

func expiringCert(t testing.TB, name string, notAfter time.Time) *x509.Certificate {
	t.Helper()
	return cmstest.New(t, name, &cmstest.Options{NotBefore: notAfter.AddDate(-1, 0, 0), NotAfter: notAfter}).Certificate
}

func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

func TestExpiryEventsDedupe(t *testing.T) {
	t.Parallel()
	notAfter := t0.Add(10 * day) // at t0: the 14-day step
	cert := expiringCert(t, "partnerx", notAfter)
	fp := fingerprint(cert)
	certs := map[string][]*x509.Certificate{"PARTNERX": {cert}}
	tests := []struct {
		name      string
		now       time.Time
		notified  map[string]int
		threshold int // reported; -1: nothing due
	}{
		{"never reported", t0, nil, 14},
		{"reported at 30: the next step is due", t0, map[string]int{fp: 30}, 14},
		{"reported at this step already", t0, map[string]int{fp: 14}, -1},
		{"reported at a later step (clock set back)", t0, map[string]int{fp: 7}, -1},
		{"down through several steps: only the current one", notAfter.Add(-12 * time.Hour), map[string]int{fp: 30}, 1},
		{"expired, reported at 1 day", notAfter.Add(time.Hour), map[string]int{fp: 1}, 0},
		{"expired and reported as expired", notAfter.Add(40 * day), map[string]int{fp: 0}, -1},
		{"far from expiry", notAfter.Add(-31 * day), nil, -1},
		{"another certificate's record does not count", t0, map[string]int{"00" + fp[2:]: 14}, 14},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			evs := ExpiryEvents(tt.now, certs, tt.notified)
			if tt.threshold < 0 {
				if len(evs) != 0 {
					t.Errorf("got %d events, want none: %+v", len(evs), evs[0].Certificate)
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("got %d events, want 1", len(evs))
			}
			if got := evs[0].Certificate.Threshold; got != tt.threshold {
				t.Errorf("threshold %d, want %d", got, tt.threshold)
			}
		})
	}
}

// TestExpiryEventsDaily runs the check every day from 40 days before expiry to 10 days
// after, as the gateway does, recording each report: every step is reported exactly once.
func TestExpiryEventsDaily(t *testing.T) {
	t.Parallel()
	notAfter := t0.Add(40*day + 6*time.Hour)
	certs := map[string][]*x509.Certificate{"GATEWAY": {expiringCert(t, "gateway", notAfter)}}
	notified := map[string]int{}
	var reported []int
	for now := t0; now.Before(notAfter.Add(10 * day)); now = now.Add(day) {
		for _, ev := range ExpiryEvents(now, certs, notified) {
			reported = append(reported, ev.Certificate.Threshold)
			notified[ev.Certificate.SHA256] = ev.Certificate.Threshold
		}
	}
	if want := []int{30, 14, 7, 1, 0}; !slices.Equal(reported, want) {
		t.Errorf("reported steps %v, want %v", reported, want)
	}
}

func TestExpiryEventsContent(t *testing.T) {
	t.Parallel()
	soon := expiringCert(t, "partnerx-old", t0.Add(14*day+time.Hour))
	fresh := expiringCert(t, "partnerx-new", t0.AddDate(2, 0, 0))
	expired := expiringCert(t, "gateway", t0.Add(-36*time.Hour))
	certs := map[string][]*x509.Certificate{
		"PARTNERX": {soon, nil, fresh},
		"GATEWAY":  {expired},
		"EMPTY":    nil,
	}
	evs := ExpiryEvents(t0, certs, nil)
	if len(evs) != 2 {
		t.Fatalf("got %d events, want 2 (the fresh certificate is not due)", len(evs))
	}
	// Ordered by AS2 id.
	gw, px := evs[0], evs[1]
	if gw.Partner != "GATEWAY" || px.Partner != "PARTNERX" {
		t.Fatalf("events for %s, %s; want GATEWAY, PARTNERX", gw.Partner, px.Partner)
	}
	for _, tt := range []struct {
		ev        Event
		cert      *x509.Certificate
		code      string
		daysLeft  int
		threshold int
	}{
		{gw, expired, "certificate_expired", -2, 0},
		{px, soon, "certificate_expiring", 14, 30},
	} {
		c := tt.ev.Certificate
		if tt.ev.Type != CertificateExpiring || tt.ev.Code != tt.code || !tt.ev.At.Equal(t0) {
			t.Errorf("%s: type %s code %s at %v", tt.ev.Partner, tt.ev.Type, tt.ev.Code, tt.ev.At)
		}
		if c.SHA256 != fingerprint(tt.cert) || c.Serial != tt.cert.SerialNumber.Text(16) ||
			c.Subject != tt.cert.Subject.String() || c.Issuer != tt.cert.Issuer.String() || !c.NotAfter.Equal(tt.cert.NotAfter) {
			t.Errorf("%s: certificate described as %+v", tt.ev.Partner, c)
		}
		if c.DaysLeft != tt.daysLeft || c.Threshold != tt.threshold {
			t.Errorf("%s: %d days left at step %d, want %d at step %d", tt.ev.Partner, c.DaysLeft, c.Threshold, tt.daysLeft, tt.threshold)
		}
	}
	if got, want := px.summary(), "certificate of PARTNERX expires in 14 days ("+soon.NotAfter.UTC().Format(time.DateOnly)+")"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	body := emailBody(gw.withDefaults(t0))
	for _, want := range []string{"A certificate of GATEWAY expired on", "SHA-256:     " + fingerprint(expired), "For a station's certificate"} {
		if !strings.Contains(body, want) {
			t.Errorf("email body lacks %q:\n%s", want, body)
		}
	}
}
