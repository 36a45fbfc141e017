// Package outbound sends the gateway's outbound rows (AS2 messages and the asynchronous MDNs
// it owes partners): it claims due rows with a lease, packs a message once and stores the
// wire bytes so that every retry sends the same bytes and Message-ID, POSTs it, reads the
// MDN, classifies a failure (classify.go) and reschedules or finishes the row.
package outbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/internal/payload"
	"github.com/as2gate/as2gate/internal/retry"
	"github.com/as2gate/as2gate/internal/store"
)

// Partner is what the worker needs to send to one partner, resolved from the configuration.
type Partner struct {
	// Pack is the template for packing: From, To, signing identity, algorithms, recipients,
	// MDN request and the partner's extra headers. MessageID and Subject are set per
	// message, and the headers of the message's send profile merged over Pack.Header.
	Pack as2.PackOptions
	// Profiles are the send profiles by name: the extra HTTP headers each adds.
	Profiles map[string]http.Header
	// Send holds the trusted certificates for MDN signatures and per-request headers
	// (authorization).
	Send as2.SendOptions
	// Client sends to the partner: TLS trust, client certificate, timeouts.
	Client *http.Client
	// Failed and Incomplete are the retry policies of the two retryable classes.
	Failed, Incomplete retry.Policy
	// AsyncMDNTimeout is how long to wait for an asynchronous MDN.
	AsyncMDNTimeout time.Duration
}

// Partners resolves partners by station and partner AS2 id. It is asked on every attempt,
// so that a configuration change applies to the next attempt.
type Partners interface {
	Partner(ctx context.Context, station, partner string) (*Partner, error)
	// MDNClient returns the client for asynchronous MDNs to a partner's URL: it applies the
	// address policy for Receipt-Delivery-Option targets.
	MDNClient(ctx context.Context, station, partner string) (*http.Client, error)
}

// Config configures a Worker.
type Config struct {
	Store    store.Store
	Payloads payload.Store
	Partners Partners
	// Owner names this worker in leases. It must differ between gateway processes running at
	// once, and should stay the same across restarts of one node: Run starts by returning the
	// rows still leased to Owner to the queue, since only a run of this node that ended
	// without a graceful stop (kill -9, power loss) can have left them in sending.
	Owner string
	// Concurrency is how many rows are sent at once; default 8.
	Concurrency int
	// PerPartner bounds the rows of one partner in flight; default 4.
	PerPartner int
	// PartnerLimits returns the limits that override PerPartner for the partners they name
	// (their concurrency). It is asked at each claim, so that a partner added or changed at
	// run time gets its own limit at once; nil means none.
	PartnerLimits func() map[string]int
	// Lease is how long a claim holds; it must exceed the longest transmission. Default 10m.
	Lease time.Duration
	// Poll is the fallback wait when nothing wakes the worker; default 1m. Timers (retries,
	// MDN deadlines) are waited for exactly, and a store that is a store.Waker wakes the
	// worker for other nodes' rows, so the poll only covers what no signal announced.
	Poll time.Duration
	// SpoolDir is where packing spools large layers; "" means the system temporary folder.
	SpoolDir string
	// OnFailed is called (outside any transaction) when a row ends in StateFailed.
	OnFailed func(ctx context.Context, m *store.Message, f Failure)
	Now      func() time.Time
	Log      *slog.Logger

	// Metrics is told about attempts, sent messages and MDNs; nil reports nothing.
	Metrics Metrics
}

// Worker is the send loop. Run it once; Wake it after a submission.
type Worker struct {
	cfg  Config
	wake chan struct{}
}

// New returns a Worker for cfg.
func New(cfg Config) (*Worker, error) {
	if cfg.Store == nil || cfg.Payloads == nil || cfg.Partners == nil {
		return nil, errors.New("outbound: Store, Payloads and Partners are required")
	}
	if cfg.Owner == "" {
		return nil, errors.New("outbound: Owner is required")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.PerPartner <= 0 {
		cfg.PerPartner = 4
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 10 * time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NoMetrics{}
	}
	return &Worker{cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// Wake makes the worker look for due rows now. It never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// errShutdown is the cause of the context of in-flight sends when the worker stops.
var errShutdown = errors.New("outbound: worker stopping")

// errLeaseEnding is the cause of the context of a send cut off before its lease runs out.
var errLeaseEnding = errors.New("outbound: the send took longer than the claim's lease allows")

// storedFault wraps a failure to open stored bytes: gone for good (the payload store does
// not have them) is a permanent failure the operator must see, anything else a fault to try
// again when the lease ends.
func storedFault(what string, err error) error {
	if errors.Is(err, payload.ErrNotFound) {
		return &ConfigError{What: what + " is missing from the payload store", Err: err}
	}
	return fmt.Errorf("outbound: %s: %w", what, err)
}

// interrupted reports whether ctx ended for another reason than the lease's end: a stop.
func interrupted(ctx context.Context) bool {
	return ctx.Err() != nil && !errors.Is(context.Cause(ctx), errLeaseEnding)
}

// leaseMargin is how long before its lease ends an attempt is cut off: enough to record the
// outcome while the lease still holds.
func leaseMargin(lease time.Duration) time.Duration {
	return min(lease/10, 30*time.Second)
}

// claimRetry is how soon Run claims again after the store failed a claim.
const claimRetry = time.Second

// untilDue returns how long Run waits after a claim made at claimedAt: until the earliest
// queued or awaiting row falls due, at most Poll. A row that was already due at claimedAt
// and is still waiting was left by the claim because its partner is at the PerPartner
// limit: only a send finishing frees it, and that wakes Run, so waiting for its due time
// (past) would turn the loop into a busy one for as long as the partner's sends take.
func (w *Worker) untilDue(ctx context.Context, claimedAt time.Time) time.Duration {
	next, ok, err := w.cfg.Store.NextDue(ctx)
	if err != nil || !ok || !next.After(claimedAt) {
		return w.cfg.Poll
	}
	return min(max(next.Sub(w.cfg.Now()), 0), w.cfg.Poll)
}

// Run claims and sends due rows until ctx ends. Rows in flight when it ends are returned to
// the queue without spending an attempt; Run returns once they are.
func (w *Worker) Run(ctx context.Context) error {
	sendCtx, cancelSends := context.WithCancelCause(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	slots := make(chan struct{}, w.cfg.Concurrency)
	done := make(chan struct{}, w.cfg.Concurrency)
	defer func() {
		cancelSends(errShutdown)
		wg.Wait()
	}()
	if n, err := w.reclaim(ctx); err != nil {
		w.cfg.Log.Error("returning rows left in sending by an earlier run", "err", err)
	} else if n > 0 {
		w.cfg.Log.Warn("returned rows left in sending by an earlier run to the queue", "rows", n)
	}
	// A store shared by several nodes tells this one when another committed due work: a
	// submission on another node is claimed here at once, not at the next poll.
	var wakeups <-chan struct{}
	if wk, ok := w.cfg.Store.(store.Waker); ok {
		wakeups = wk.Wakeups()
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		// With every slot busy nothing can be claimed until a send finishes, which wakes
		// the loop: only the poll is left to wait for.
		wait := w.cfg.Poll
		if free := w.cfg.Concurrency - len(slots); free > 0 {
			claimedAt := w.cfg.Now()
			rows, err := w.cfg.Store.Claim(ctx, store.ClaimRequest{
				Now: claimedAt, Owner: w.cfg.Owner, Lease: w.cfg.Lease, Limit: free, PerPartner: w.cfg.PerPartner, PartnerLimits: w.partnerLimits(),
			})
			switch {
			case err != nil && ctx.Err() == nil:
				w.cfg.Log.Error("claiming due messages", "err", err)
				wait = min(wait, claimRetry)
			case err == nil:
				wait = w.untilDue(ctx, claimedAt)
			}
			for _, m := range rows {
				slots <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					w.process(sendCtx, m)
					<-slots
					// Never block: once Run has returned nobody reads done, and a
					// finished send must not hold up the shutdown.
					select {
					case done <- struct{}{}:
					default:
					}
				}()
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		case <-wakeups:
		case <-done:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// reclaimPage is how many rows in sending reclaim reads at once.
const reclaimPage = 200

// reclaim returns to the queue, without spending an attempt, the rows leased to this worker's
// Owner: an earlier run of this node died with them in flight. Waiting for their leases to
// expire would hold them for up to Lease after every crash; a row whose request did reach the
// partner goes out again with the same Message-ID and bytes, and the partner's duplicate
// check answers it with the MDN it stored.
func (w *Worker) reclaim(ctx context.Context) (int, error) {
	n := 0
	var before int64
	for {
		rows, err := w.cfg.Store.ListMessages(ctx, store.Filter{
			Direction: store.Outbound, State: store.StateSending, Limit: reclaimPage, Before: before,
		})
		if err != nil {
			return n, fmt.Errorf("outbound: listing rows in sending: %w", err)
		}
		for _, m := range rows {
			if m.LeaseOwner != w.cfg.Owner {
				continue
			}
			if err := w.cfg.Store.Release(ctx, m.ID, w.cfg.Owner); err != nil {
				if errors.Is(err, store.ErrConflict) {
					continue // finished or taken over since the list was read
				}
				return n, fmt.Errorf("outbound: returning message %d to the queue: %w", m.ID, err)
			}
			n++
		}
		if len(rows) < reclaimPage {
			return n, nil
		}
		before = rows[len(rows)-1].ID
	}
}

// process sends one claimed row and records the outcome.
func (w *Worker) process(ctx context.Context, m *store.Message) {
	log := w.cfg.Log.With("message_id", m.MessageID, "partner", m.Partner, "attempt", m.Attempts+1)
	// The attempt must end before the lease does, or another claim could send the row while
	// this one still is: a send still running then is cut off, and counts as a read timeout.
	attemptCtx, cancel := context.WithTimeoutCause(ctx, w.cfg.Lease-leaseMargin(w.cfg.Lease), errLeaseEnding)
	defer cancel()
	// The first attempt of a message notes when its request headers went out: the pick-up
	// latency from submission to the wire, logged with the outcome.
	var onWire atomic.Int64
	if m.Attempts == 0 && m.Kind == store.KindMessage {
		attemptCtx = httptrace.WithClientTrace(attemptCtx, &httptrace.ClientTrace{
			WroteHeaders: func() { onWire.CompareAndSwap(0, w.cfg.Now().UnixNano()) },
		})
	}
	out, f, err := w.attempt(attemptCtx, m)
	if err != nil {
		if errors.Is(context.Cause(ctx), errShutdown) {
			// Interrupted by a stop: the row goes back to the queue as it was, no attempt
			// spent.
			if rerr := w.cfg.Store.Release(context.WithoutCancel(ctx), m.ID, w.cfg.Owner); rerr != nil {
				log.Error("returning a message to the queue at shutdown", "err", rerr)
			}
			return
		}
		log.Error("recording an attempt", "err", err)
		return
	}
	// Counted before it is recorded: an asynchronous MDN may complete the row first, and
	// the attempt was made either way.
	w.countAttempt(out)
	// An attempt that ended is recorded even when stopping began meanwhile: a message the
	// partner acknowledged must not go back to the queue to be sent twice.
	ctx = context.WithoutCancel(ctx)
	if ferr := w.cfg.Store.Finish(ctx, m.ID, w.cfg.Owner, out); ferr != nil {
		log.Error("recording the outcome", "state", out.State, "err", ferr)
		return
	}
	switch {
	case out.Attempt != nil && out.State == store.StateFailed:
		log.Warn("message failed", "class", f.Class, "code", f.Code, "err", f.Error)
		if w.cfg.OnFailed != nil {
			m.State = store.StateFailed
			w.cfg.OnFailed(ctx, m, f)
		}
	case out.Attempt != nil:
		log.Info("attempt failed, will retry", "class", f.Class, "code", f.Code, "next_attempt", out.NextAttemptAt)
	case onWire.Load() != 0:
		pickup := time.Unix(0, onWire.Load()).Sub(m.CreatedAt)
		log.Info("message "+out.State, "kind", m.Kind, "pickup_ms", float64(pickup.Microseconds())/1000)
	default:
		log.Info("message "+out.State, "kind", m.Kind)
	}
	if out.State == store.StateSent && m.Kind == store.KindMessage {
		w.cfg.Metrics.Sent(m.CreatedAt, w.cfg.Now())
	}
}

// attempt tries a row once and decides its outcome. An error means nothing could be decided
// (a storage failure): the lease will expire and the row be tried again.
func (w *Worker) attempt(ctx context.Context, m *store.Message) (store.Outcome, Failure, error) {
	now := w.cfg.Now()
	if m.ClaimedFrom == store.StateAwaitingMDN {
		// Claimed because its MDN deadline passed.
		return w.failed(ctx, m, Classify(ErrAsyncMDNTimeout, now), now)
	}
	p, err := w.cfg.Partners.Partner(ctx, m.Station, m.Partner)
	if err != nil {
		return w.failed(ctx, m, Classify(&ConfigError{What: "partner " + m.Partner + " of station " + m.Station, Err: err}, now), now)
	}
	if m.Kind == store.KindMDN {
		return w.sendMDN(ctx, m, now)
	}
	msg, release, err := w.packed(ctx, m, p)
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			return w.failed(ctx, m, Classify(err, now), now)
		}
		return store.Outcome{}, Failure{}, err
	}
	defer release()
	client := &as2.Client{HTTP: p.Client}
	sendStart := w.cfg.Now()
	resp, err := client.Send(ctx, m.URL, msg, &p.Send)
	if resp != nil && resp.Receipt != nil {
		w.cfg.Metrics.MDNReceived("sync", w.cfg.Now().Sub(sendStart))
	}
	if err != nil {
		if interrupted(ctx) {
			return store.Outcome{}, Failure{}, ctx.Err()
		}
		ctx = context.WithoutCancel(ctx) // a send cut off at the lease's end is recorded
		// The response, when the partner gave one, keeps its status and headers with an
		// attempt that failed on the MDN.
		now = w.cfg.Now()
		out, f, ferr := w.failed(ctx, m, ClassifyResponse(resp, err, now), now)
		if resp != nil && resp.Receipt != nil {
			out.MDN = w.keepMDN(ctx, m, mdnRecord(resp.Receipt, resp.Header, false, now), resp)
		}
		return out, f, ferr
	}
	switch msg.MDN.Mode {
	case as2.MDNAsync:
		return store.Outcome{
			State:         store.StateAwaitingMDN,
			NextAttemptAt: w.cfg.Now().Add(p.AsyncMDNTimeout),
			Event:         &store.Event{Type: "sent_awaiting_mdn", Detail: "delivered; waiting for the asynchronous MDN"},
		}, Failure{}, nil
	case as2.MDNSync:
		return store.Outcome{
			State: store.StateSent,
			MDN:   w.keepMDN(ctx, m, mdnRecord(resp.Receipt, resp.Header, true, w.cfg.Now()), resp),
			Event: &store.Event{Type: "sent", Detail: "delivered; MDN " + resp.Receipt.MDN.Disposition.String()},
		}, Failure{}, nil
	}
	return store.Outcome{State: store.StateSent, Event: &store.Event{Type: "sent", Detail: fmt.Sprintf("delivered (HTTP %d); no MDN requested", resp.StatusCode)}}, Failure{}, nil
}

// packed returns the message to send: packed and stored on the first attempt, read back from
// the payload store on every later one.
func (w *Worker) packed(ctx context.Context, m *store.Message, p *Partner) (*as2.Message, func(), error) {
	if m.Wire != "" {
		return w.stored(ctx, m)
	}
	opts := p.Pack
	opts.MessageID = m.MessageID
	opts.Subject = m.Subject
	opts.SpoolDir = w.cfg.SpoolDir
	if m.Profile != "" {
		ph, ok := p.Profiles[m.Profile]
		if !ok {
			return nil, nil, &ConfigError{What: "send profile " + m.Profile, Err: fmt.Errorf("no profile %q is configured any more", m.Profile)}
		}
		opts.Header = mergeHeader(p.Pack.Header, ph)
	}
	var payloads []as2.Payload
	var blobs []payload.Blob
	defer func() {
		for _, b := range blobs {
			b.Close()
		}
	}()
	for _, f := range m.Files {
		b, err := w.cfg.Payloads.Open(ctx, f.SHA256)
		if err != nil {
			return nil, nil, storedFault("payload "+f.Name, err)
		}
		blobs = append(blobs, b)
		payloads = append(payloads, as2.Payload{Filename: f.Name, ContentType: f.ContentType, Body: io.NewSectionReader(b, 0, b.Size())})
	}
	msg, err := as2.Pack(payloads, &opts)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) || errors.Is(err, syscall.ENOSPC) {
			// A local storage fault (a full disk, an unreadable file) is not the
			// configuration's: the row is tried again when its lease ends.
			return nil, nil, fmt.Errorf("outbound: packing: %w", err)
		}
		return nil, nil, &ConfigError{What: "packing the message", Err: err}
	}
	release := func() { msg.Close() }
	key, _, err := w.cfg.Payloads.Put(ctx, msg.Body.Open())
	if err != nil {
		release()
		return nil, nil, err
	}
	if err := w.cfg.Store.SetWire(ctx, m.ID, w.cfg.Owner, key, msg.Header, formatMICs(msg)); err != nil {
		release()
		return nil, nil, err
	}
	m.Wire, m.WireHeader = key, msg.Header
	return msg, release, nil
}

// mergeHeader returns the partner's headers with the profile's over them: a header the
// profile sets replaces the partner's values of it. Neither argument is changed, since both
// belong to the configuration.
func mergeHeader(partner, profile http.Header) http.Header {
	h := partner.Clone()
	if h == nil {
		h = make(http.Header, len(profile))
	}
	for name, vals := range profile {
		h.Del(name)
		for _, v := range vals {
			h.Add(name, v)
		}
	}
	return h
}

// stored rebuilds the packed message of an earlier attempt from the payload store.
func (w *Worker) stored(ctx context.Context, m *store.Message) (*as2.Message, func(), error) {
	b, err := w.cfg.Payloads.Open(ctx, m.Wire)
	if err != nil {
		return nil, nil, storedFault("stored wire message", err)
	}
	msg, err := Sent(m)
	if err != nil {
		b.Close()
		return nil, nil, err
	}
	msg.Body = as2.SpoolReaderAt(b, b.Size())
	return msg, func() { b.Close() }, nil
}

// Sent rebuilds, from a stored outbound row that was packed, the message as it went out
// without its body: its Message-ID and headers, the receipt it asked for and the MICs it
// expects (formatMICs), so that a receipt arriving later can be checked with Message.Check.
// The message is returned even with an error, which says the stored receipt request could
// not be read (the message then asks for none).
func Sent(m *store.Message) (*as2.Message, error) {
	msg := &as2.Message{MessageID: m.MessageID, Header: m.WireHeader}
	mdn, _, err := as2.ReadMDNRequest(m.WireHeader)
	if err != nil {
		err = fmt.Errorf("outbound: stored headers of %s: %w", m.MessageID, err)
	} else {
		msg.MDN = mdn
	}
	for i, line := range strings.Split(m.MIC, "\n") {
		mic, err := as2.ParseMIC(line)
		if err != nil {
			continue
		}
		if i == 0 {
			msg.MIC = mic
		}
		msg.MICs = append(msg.MICs, mic)
	}
	return msg, err
}

// formatMICs keeps the expected MIC first, then the others an unsigned message may be
// answered with, one per line.
func formatMICs(msg *as2.Message) string {
	lines := []string{msg.MIC.String()}
	for _, m := range msg.MICs {
		if !m.Equal(msg.MIC) {
			lines = append(lines, m.String())
		}
	}
	return strings.Join(lines, "\n")
}

// sendMDN delivers an asynchronous MDN we owe a partner.
func (w *Worker) sendMDN(ctx context.Context, m *store.Message, now time.Time) (store.Outcome, Failure, error) {
	hc, err := w.cfg.Partners.MDNClient(ctx, m.Station, m.Partner)
	if err != nil {
		return w.failed(ctx, m, Classify(&ConfigError{What: "MDN client for partner " + m.Partner, Err: err}, now), now)
	}
	b, err := w.cfg.Payloads.Open(ctx, m.Wire)
	if err != nil {
		if err := storedFault("stored MDN", err); errors.As(err, new(*ConfigError)) {
			return w.failed(ctx, m, Classify(err, now), now)
		}
		return store.Outcome{}, Failure{}, fmt.Errorf("outbound: stored MDN: %w", err)
	}
	defer b.Close()
	body, err := io.ReadAll(io.NewSectionReader(b, 0, b.Size()))
	if err != nil {
		return store.Outcome{}, Failure{}, err
	}
	if err := (&as2.Client{HTTP: hc}).SendMDN(ctx, m.URL, m.WireHeader, body); err != nil {
		if interrupted(ctx) {
			return store.Outcome{}, Failure{}, ctx.Err()
		}
		ctx = context.WithoutCancel(ctx)
		now = w.cfg.Now()
		return w.failed(ctx, m, Classify(err, now), now)
	}
	return store.Outcome{State: store.StateSent, Event: &store.Event{Type: "mdn_sent", Detail: "asynchronous MDN delivered to " + m.URL}}, Failure{}, nil
}

// failed decides what follows the failure f of an attempt at now: a retry under the
// policy of its class, or the end.
func (w *Worker) failed(ctx context.Context, m *store.Message, f Failure, now time.Time) (store.Outcome, Failure, error) {
	a := &store.Attempt{
		At: now, Class: f.Class, Code: f.Code, HTTPStatus: f.HTTPStatus, Header: f.Header,
		BodyExcerpt: f.BodyExcerpt, Error: f.Error, Action: f.Action,
	}
	out := store.Outcome{State: store.StateFailed, Attempt: a}
	if f.Class != store.ClassPermanent {
		policy := retry.Policy{}
		if p, perr := w.cfg.Partners.Partner(ctx, m.Station, m.Partner); perr == nil {
			policy = p.Failed
			if f.Class == store.ClassIncomplete {
				policy = p.Incomplete
			}
		}
		prior, err := w.cfg.Store.Attempts(ctx, m.ID)
		if err != nil {
			return store.Outcome{}, f, err
		}
		// Only this class's attempts count, and only those since an operator last retried
		// the message from Failed: that retry starts a fresh schedule.
		n, first := 1, now
		for _, p := range prior {
			if p.Class == f.Class && p.At.After(m.RetriedAt) {
				if n == 1 {
					first = p.At
				}
				n++
			}
		}
		if next, ok := policy.NextAfter(n, first, now, f.RetryAfter); ok {
			out.State, out.NextAttemptAt = store.StateQueued, next
		}
	}
	detail := fmt.Sprintf("%s (%s): %s", f.Code, f.Class, f.Error)
	typ := "attempt_failed"
	if out.State == store.StateFailed {
		typ = "failed"
	}
	out.Event = &store.Event{Type: typ, Detail: detail}
	return out, f, nil
}

// keepMDN stores the bytes of a synchronous MDN with its record: the receipt as the partner
// sent it is the evidence a non-repudiation export is made of. The message went out either
// way, so a store that cannot take the bytes costs the evidence, logged, not the outcome.
func (w *Worker) keepMDN(ctx context.Context, m *store.Message, rec *store.MDN, resp *as2.Response) *store.MDN {
	if rec == nil || resp.Body == nil {
		return rec
	}
	key, _, err := w.cfg.Payloads.Put(ctx, bytes.NewReader(resp.Body))
	if err != nil {
		w.cfg.Log.Error("keeping the bytes of a synchronous MDN", "message_id", m.MessageID, "partner", m.Partner, "attempt", m.Attempts+1, "err", err)
		return rec
	}
	var h strings.Builder
	resp.Header.Write(&h)
	rec.Key, rec.Header = key, h.String()
	return rec
}

// mdnRecord keeps what the gateway shows of a receipt.
func mdnRecord(rc *as2.Receipt, h http.Header, micChecked bool, at time.Time) *store.MDN {
	if rc == nil || rc.MDN == nil {
		return nil
	}
	rec := &store.MDN{
		Disposition: rc.MDN.Disposition.String(),
		Positive:    rc.MDN.Positive(),
		MICOK:       micChecked,
		Signed:      rc.Signer != nil,
		MessageID:   h.Get(as2.HeaderMessageID),
		At:          at,
	}
	if rc.MDN.ReceivedMIC != nil {
		rec.MIC = rc.MDN.ReceivedMIC.String()
	}
	return rec
}

func (w *Worker) partnerLimits() map[string]int {
	if w.cfg.PartnerLimits == nil {
		return nil
	}
	return w.cfg.PartnerLimits()
}
