// Package notify tells the operator when something needs a person (R-RETRY-3): an outbound
// message reached the Failed mailbox, an inbound message was suspended, or a certificate is
// about to expire. A notification goes out by email through an SMTP server (RFC 5321, with
// STARTTLS per RFC 3207 and authentication per RFC 4954), by a signed webhook POST, or both;
// each channel is tried on its own under a RetryPolicy, and every attempt is logged.
//
// The database is the durable record of what happened: a failed message stays in the Failed
// mailbox whether or not anyone was told. Notifications are therefore best effort with
// retries, kept in memory, and never allowed to hold up the protocol work that reports them:
// Notify only enqueues. When the queue is full, or the notifier is closed, the event is
// dropped and logged at error level with every field it would have carried, and counted by
// Dropped, so that nothing disappears without a trace.
//
// # Webhook signature
//
// Each POST carries the event as JSON (the JSON form of Event) and these headers:
//
//	Content-Type:         application/json
//	X-As2gate-Event:      the event type, e.g. message_failed
//	X-As2gate-Delivery:   an id for this notification, the same on every retry of it
//	X-As2gate-Timestamp:  the time of this attempt, in Unix seconds
//	X-As2gate-Signature:  sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// The MAC covers the timestamp so that a captured request cannot be replayed later with a
// fresh one: a receiver recomputes the MAC over the timestamp header, a dot and the raw body
// bytes, compares it in constant time, rejects timestamps more than a few minutes from its
// own clock, and drops a delivery id it has already processed (a retry after a lost answer).
// Verify does the checks of signature and time for a receiver written in Go.
//
// An answer 2xx means delivered. 408, 425, 429 and 5xx answers and network failures are
// retried (honouring Retry-After up to the policy's longest wait); any other answer, a
// redirect included, stops the retries at once, as does an SMTP 5yz refusal.
package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	randv2 "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Config sets up a Notifier. The zero value is valid and sends nothing.
type Config struct {
	// Email sends notifications by SMTP; nil: no email.
	Email *EmailConfig
	// Webhook POSTs notifications; nil: no webhook.
	Webhook *WebhookConfig
	// Retry is the policy for each channel. Zero fields take the defaults (6 attempts, from
	// 2s doubling).
	Retry RetryPolicy
	// QueueSize is how many notifications wait for delivery before Notify drops new ones.
	// Default 1024: enough for every message of a busy partner failing at once.
	QueueSize int
	// Workers is how many notifications are delivered at the same time. Default 2, so that
	// one notification waiting out its retries does not hold up all the others.
	Workers int

	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Sleep waits between attempts and returns early with an error when ctx ends; it is
	// called from several goroutines. Default: a timer. Tests replace it so that they never
	// wait.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a number in [0, 1) that places each wait within the jitter band; it is
	// called from several goroutines. Default math/rand/v2.Float64.
	Rand func() float64
}

// Default sizes of a Notifier.
const (
	DefaultQueueSize = 1024
	DefaultWorkers   = 2
)

// Validate reports the first invalid setting, naming it.
func (c *Config) Validate() error {
	if c.QueueSize < 0 {
		return fmt.Errorf("notify: queue_size is %d: it must be positive (0 for the default %d)", c.QueueSize, DefaultQueueSize)
	}
	if c.Workers < 0 {
		return fmt.Errorf("notify: workers is %d: it must be positive (0 for the default %d)", c.Workers, DefaultWorkers)
	}
	if err := c.Retry.Validate(); err != nil {
		return err
	}
	if c.Email != nil {
		if err := c.Email.Validate(); err != nil {
			return err
		}
	}
	if c.Webhook != nil {
		if err := c.Webhook.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// sender is one channel: email or webhook.
type sender interface {
	name() string
	// send makes one attempt. delivery identifies the notification across its retries.
	send(ctx context.Context, ev Event, delivery string) error
}

// Notifier delivers notifications in the background. Its methods are safe for concurrent
// use.
type Notifier struct {
	senders []sender
	retry   RetryPolicy
	now     func() time.Time
	sleep   func(context.Context, time.Duration) error
	rand    func() float64
	log     *slog.Logger

	queue   chan Event
	base    context.Context // the workers' context, cancelled when Close gives up
	cancel  context.CancelCauseFunc
	done    chan struct{} // closed when every worker has returned
	dropped atomic.Int64

	mu        sync.RWMutex // guards closed against a send on the closed queue
	closed    bool
	closeOnce sync.Once
}

// New validates cfg and starts the workers. A nil log discards the notifier's log lines.
// Call Close when done.
func New(cfg Config, log *slog.Logger) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{
		retry: cfg.Retry.withDefaults(),
		now:   cfg.Now,
		sleep: cfg.Sleep,
		rand:  cfg.Rand,
		log:   log,
		done:  make(chan struct{}),
	}
	if n.now == nil {
		n.now = time.Now
	}
	if n.sleep == nil {
		n.sleep = sleep
	}
	if n.rand == nil {
		n.rand = randv2.Float64
	}
	if cfg.Email != nil {
		s, err := newEmailSender(*cfg.Email, n.now)
		if err != nil {
			return nil, err
		}
		n.senders = append(n.senders, s)
	}
	if cfg.Webhook != nil {
		n.senders = append(n.senders, newWebhookSender(*cfg.Webhook, n.now))
	}

	n.base, n.cancel = context.WithCancelCause(context.Background())
	if len(n.senders) == 0 {
		close(n.done)
		return n, nil
	}
	size := cfg.QueueSize
	if size == 0 {
		size = DefaultQueueSize
	}
	workers := cfg.Workers
	if workers == 0 {
		workers = DefaultWorkers
	}
	n.queue = make(chan Event, size)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(n.work)
	}
	go func() {
		wg.Wait()
		close(n.done)
	}()
	return n, nil
}

// work delivers queued events until the queue is closed and empty. Deliver logs every
// outcome, so its error needs no second line here.
func (n *Notifier) work() {
	for ev := range n.queue {
		_ = n.Deliver(n.base, ev)
	}
}

// Notify queues ev for delivery and returns at once; it never waits for the mail server or
// the webhook. The time of ev is taken now when it is zero. When the queue is full or the
// notifier is closed, ev is dropped, logged at error level with all its fields, and counted
// by Dropped. ctx only carries values for the log.
func (n *Notifier) Notify(ctx context.Context, ev Event) {
	if len(n.senders) == 0 {
		return
	}
	ev = ev.withDefaults(n.now())
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		n.drop(ctx, ev, "the notifier is closed")
		return
	}
	select {
	case n.queue <- ev:
	default:
		n.drop(ctx, ev, "the queue is full")
	}
}

func (n *Notifier) drop(ctx context.Context, ev Event, why string) {
	n.dropped.Add(1)
	attrs := append(eventAttrs(ev), "reason", why, "class", ev.Class, "error", ev.Error, "action", ev.Action)
	n.log.ErrorContext(ctx, "notify: notification dropped", attrs...)
}

// Dropped returns how many notifications Notify has dropped since New.
func (n *Notifier) Dropped() int64 { return n.dropped.Load() }

// Close stops taking notifications and waits until the queued ones are delivered or given
// up. When ctx ends first, Close cancels the deliveries still waiting or in progress and
// returns ctx's error at once; the workers then log each notification they could not
// deliver as they stop (an SMTP exchange under way ends within its timeout).
func (n *Notifier) Close(ctx context.Context) error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		if n.queue != nil {
			close(n.queue)
		}
		n.mu.Unlock()
	})
	select {
	case <-n.done:
		n.cancel(errors.New("notify: closed"))
		return nil
	case <-ctx.Done():
		cause := context.Cause(ctx)
		n.cancel(fmt.Errorf("notify: closed before delivery: %w", cause))
		return fmt.Errorf("notify: close: gave up on undelivered notifications: %w", cause)
	}
}

// Deliver sends ev on every configured channel now and returns when each has delivered or
// given up; the channels are tried side by side, each under the retry policy. Every
// attempt is logged. The error joins the errors of the channels that gave up.
func (n *Notifier) Deliver(ctx context.Context, ev Event) error {
	ev = ev.withDefaults(n.now())
	delivery := newDeliveryID()
	errs := make([]error, len(n.senders))
	var wg sync.WaitGroup
	for i, s := range n.senders {
		wg.Go(func() { errs[i] = n.try(ctx, s, ev, delivery) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// try makes up to Retry.Attempts attempts on one channel.
func (n *Notifier) try(ctx context.Context, s sender, ev Event, delivery string) error {
	log := n.log.With(append(eventAttrs(ev), "channel", s.name(), "delivery", delivery)...)
	// Stopping is not a failure of the channel: it is reported as such and not counted.
	stopped := func(attempt int) error {
		cause := context.Cause(ctx)
		log.ErrorContext(ctx, "notify: notification not delivered: stopping", "attempt", attempt, "error", cause)
		return fmt.Errorf("notify: %s: %s: not delivered: %w", s.name(), ev.summary(), cause)
	}
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return stopped(attempt)
		}
		err := s.send(ctx, ev, delivery)
		switch {
		case err == nil:
			log.InfoContext(ctx, "notify: notification delivered", "attempt", attempt)
			return nil
		case ctx.Err() != nil:
			return stopped(attempt)
		case isPermanent(err):
			log.ErrorContext(ctx, "notify: notification given up", "attempt", attempt, "permanent", true, "error", err)
			return fmt.Errorf("notify: %s: %s: refused, not retried: %w", s.name(), ev.summary(), err)
		case attempt >= n.retry.Attempts:
			log.ErrorContext(ctx, "notify: notification given up", "attempt", attempt, "max_attempts", n.retry.Attempts, "error", err)
			return fmt.Errorf("notify: %s: %s: given up after %d attempts: %w", s.name(), ev.summary(), attempt, err)
		}
		wait := n.retry.Backoff(attempt, n.rand())
		wait = max(wait, min(retryAfter(err), n.retry.Max))
		log.WarnContext(ctx, "notify: notification attempt failed", "attempt", attempt, "max_attempts", n.retry.Attempts, "wait", wait, "error", err)
		if n.sleep(ctx, wait) != nil && ctx.Err() != nil {
			return stopped(attempt)
		}
	}
}

// eventAttrs are the log keys that identify an event.
func eventAttrs(ev Event) []any {
	attrs := []any{"event", string(ev.Type), "partner", ev.Partner, "code", ev.Code}
	if ev.ID != 0 {
		attrs = append(attrs, "id", ev.ID)
	}
	if ev.MessageID != "" {
		attrs = append(attrs, "message_id", ev.MessageID)
	}
	if c := ev.Certificate; c != nil {
		attrs = append(attrs, "certificate_sha256", c.SHA256, "not_after", c.NotAfter)
	}
	return attrs
}

// newDeliveryID returns 128 random bits in hex.
func newDeliveryID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
