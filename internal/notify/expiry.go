package notify

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"maps"
	"math"
	"slices"
	"time"
)

// expiryThresholds are the steps, in days before NotAfter, at which a certificate is
// reported, latest first. An expired certificate is reported once more, at step 0.
var expiryThresholds = [...]int{1, 7, 14, 30}

// ExpiryThreshold returns the step a certificate expiring at notAfter has reached at now:
// 30, 14, 7 or 1 when at most that many days are left, 0 once it has expired, and false
// when more than 30 days are left.
func ExpiryThreshold(now, notAfter time.Time) (days int, ok bool) {
	left := notAfter.Sub(now)
	if left <= 0 {
		return 0, true
	}
	for _, t := range expiryThresholds {
		if left <= time.Duration(t)*24*time.Hour {
			return t, true
		}
	}
	return 0, false
}

// ExpiryEvents returns the CertificateExpiring events due at now. certs maps the AS2 id of
// each station and partner to its certificates. notified maps the SHA-256 fingerprint (hex)
// of a certificate to the threshold it was last reported at (nil: none yet).
//
// A certificate is due when it has reached a threshold (30, 14, 7 or 1 days left, or
// expired: see ExpiryThreshold) lower than the one it was last reported at, so each step
// is reported once however often this runs, and a gateway that was down during a step
// reports only the step it is in when it comes back. The caller runs this daily, queues
// the events, and records notified[ev.Certificate.SHA256] = ev.Certificate.Threshold.
// Events are ordered by AS2 id, then in the order of the certificates.
func ExpiryEvents(now time.Time, certs map[string][]*x509.Certificate, notified map[string]int) []Event {
	var events []Event
	for _, owner := range slices.Sorted(maps.Keys(certs)) {
		for _, cert := range certs[owner] {
			if cert == nil {
				continue
			}
			threshold, ok := ExpiryThreshold(now, cert.NotAfter)
			if !ok {
				continue
			}
			sum := sha256.Sum256(cert.Raw)
			fingerprint := hex.EncodeToString(sum[:])
			if last, seen := notified[fingerprint]; seen && last <= threshold {
				continue
			}
			code := "certificate_expiring"
			if threshold == 0 {
				code = "certificate_expired"
			}
			events = append(events, Event{
				Type:    CertificateExpiring,
				At:      now,
				Partner: owner,
				Code:    code,
				Certificate: &Certificate{
					Subject:   cert.Subject.String(),
					Issuer:    cert.Issuer.String(),
					Serial:    serialHex(cert),
					SHA256:    fingerprint,
					NotAfter:  cert.NotAfter,
					DaysLeft:  int(math.Floor(cert.NotAfter.Sub(now).Hours() / 24)),
					Threshold: threshold,
				},
			})
		}
	}
	return events
}

func serialHex(cert *x509.Certificate) string {
	if cert.SerialNumber == nil {
		return ""
	}
	return cert.SerialNumber.Text(16)
}
