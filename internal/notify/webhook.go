package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook headers; see the package documentation for the signature scheme.
const (
	HeaderEvent     = "X-As2gate-Event"
	HeaderDelivery  = "X-As2gate-Delivery"
	HeaderTimestamp = "X-As2gate-Timestamp"
	HeaderSignature = "X-As2gate-Signature"
)

// DefaultWebhookTimeout bounds one webhook attempt.
const DefaultWebhookTimeout = 10 * time.Second

// minSecretLen is the shortest webhook secret accepted: a short secret can be guessed
// offline from one captured request.
const minSecretLen = 16

// WebhookConfig is where and how notifications are POSTed.
type WebhookConfig struct {
	// URL receives the POST (http or https; required).
	URL string
	// Secret is the shared key of the HMAC signature, at least 16 bytes (required; 32
	// random bytes is a good choice). The configuration reads it from a file.
	Secret string
	// Timeout bounds one attempt. Default DefaultWebhookTimeout.
	Timeout time.Duration
	// Client sends the requests; nil: a client with the default transport. Redirects are
	// never followed, whatever the client says: a POST turned into a GET loses the body.
	Client *http.Client
}

// Validate reports the first invalid setting, naming it.
func (c *WebhookConfig) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		return fmt.Errorf("notify: webhook.url is %q: %w", c.URL, err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("notify: webhook.url is %q: an http:// or https:// address is required", c.URL)
	case len(c.Secret) < minSecretLen:
		return fmt.Errorf("notify: webhook.secret has %d bytes: at least %d are required to sign the requests", len(c.Secret), minSecretLen)
	case c.Timeout < 0:
		return fmt.Errorf("notify: webhook.timeout is %s: it must be positive (0 for the default %s)", c.Timeout, DefaultWebhookTimeout)
	}
	return nil
}

type webhookSender struct {
	url     string
	secret  []byte
	timeout time.Duration
	client  *http.Client
	now     func() time.Time
}

func newWebhookSender(cfg WebhookConfig, now func() time.Time) *webhookSender {
	client := &http.Client{}
	if cfg.Client != nil {
		c := *cfg.Client
		client = &c
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultWebhookTimeout
	}
	return &webhookSender{url: cfg.URL, secret: []byte(cfg.Secret), timeout: timeout, client: client, now: now}
}

func (s *webhookSender) name() string { return "webhook" }

func (s *webhookSender) send(ctx context.Context, ev Event, delivery string) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return permanent(fmt.Errorf("encoding the event: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return permanent(err)
	}
	// Signed at each attempt, so that a retry an hour later still passes the receiver's
	// freshness check.
	ts := s.now()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "as2gate")
	req.Header.Set(HeaderEvent, string(ev.Type))
	req.Header.Set(HeaderDelivery, delivery)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(s.secret, ts, body))

	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	err = fmt.Errorf("webhook %s answered %s", s.url, resp.Status)
	if loc := resp.Header.Get("Location"); loc != "" {
		err = fmt.Errorf("%w (Location: %s; set webhook.url to the final address)", err, loc)
	}
	if text := strings.TrimSpace(oneLine(string(excerpt))); text != "" {
		err = fmt.Errorf("%w: %s", err, text)
	}
	switch {
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooEarly,
		resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return &deliveryError{err: err, after: parseRetryAfter(resp.Header.Get("Retry-After"), s.now())}
	}
	// Other answers (3xx, 4xx) mean the request itself is wrong for this receiver: a
	// moved URL, a rejected signature, an unknown path. Sending it again will not help.
	return permanent(err)
}

// parseRetryAfter reads a Retry-After header (RFC 9110 §10.2.3): seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 32); err == nil {
		return max(time.Duration(secs)*time.Second, 0)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// Sign returns the X-As2gate-Signature value for body sent at ts:
// "sha256=" and the hex HMAC-SHA256 under secret of the Unix seconds of ts, a dot and body.
func Sign(secret []byte, ts time.Time, body []byte) string {
	return "sha256=" + hex.EncodeToString(signature(secret, strconv.FormatInt(ts.Unix(), 10), body))
}

// signature is the MAC over the timestamp exactly as it appears in the header.
func signature(secret []byte, timestamp string, body []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// ErrSignature is returned by Verify for a request that is not signed with the secret, or
// not recently.
var ErrSignature = errors.New("notify: webhook signature rejected")

// Verify checks a received webhook request: h holds its headers and body its raw bytes.
// It fails, wrapping ErrSignature, when the signature is missing or does not match, or
// when the timestamp is more than tolerance away from now (a replay, or a clock far off).
// A receiver should also drop a X-As2gate-Delivery id it has already processed.
func Verify(secret []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	tsText := h.Get(HeaderTimestamp)
	secs, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s is %q, not Unix seconds", ErrSignature, HeaderTimestamp, tsText)
	}
	ts := time.Unix(secs, 0)
	if d := now.Sub(ts); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: %s is %s, more than %s from now", ErrSignature, HeaderTimestamp, ts.UTC().Format(time.RFC3339), tolerance)
	}
	got, ok := strings.CutPrefix(h.Get(HeaderSignature), "sha256=")
	if !ok {
		return fmt.Errorf("%w: %s is missing or not sha256=<hex>", ErrSignature, HeaderSignature)
	}
	gotMAC, err := hex.DecodeString(got)
	if err != nil {
		return fmt.Errorf("%w: %s is not hexadecimal", ErrSignature, HeaderSignature)
	}
	if !hmac.Equal(gotMAC, signature(secret, tsText, body)) {
		return fmt.Errorf("%w: the HMAC does not match the body and timestamp", ErrSignature)
	}
	return nil
}
