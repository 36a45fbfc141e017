package outbound

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/internal/store"
)

// StoppedReason is the LastError of a message an operator stopped.
const StoppedReason = "stopped by operator"

// Actions are the operator's actions on the outbound mailboxes: send a queued message now,
// stop it, give it a new Message-ID, retry a failed one, resend or replay a sent one, and
// delete messages. Every change is one store transaction that checks the message's state
// first, so an action never races the send worker: a message a worker holds (sending) is
// refused. A refused action is a *StateError, which is a store.ErrConflict; a message that
// does not exist is a store.ErrNotFound.
type Actions struct {
	w      *Worker
	router Router
}

// NewActions returns the actions on w's queue. The router gives a partner's URL and
// Message-ID domain as configured now: a message retried after the partner's URL was
// corrected goes to the corrected URL.
func NewActions(w *Worker, router Router) *Actions {
	return &Actions{w: w, router: router}
}

// StateError reports an action that the message's direction, kind or state does not allow.
type StateError struct {
	Action string // the action refused, e.g. "retry"
	ID     int64  // the message row
	Reason string // why, in words: "it is sent; retry needs a message that is failed"
}

func (e *StateError) Error() string {
	return fmt.Sprintf("outbound: cannot %s message %d: %s", e.Action, e.ID, e.Reason)
}

// Unwrap makes a StateError a store.ErrConflict.
func (e *StateError) Unwrap() error { return store.ErrConflict }

// rule is what an action needs of a message.
type rule struct {
	action string
	states []string // allowed states
	packed bool     // only an AS2 message (KindMessage), not an MDN job: it is packed again or resent
}

var (
	ruleRetryNow  = rule{action: "send now", states: []string{store.StateQueued, store.StateAwaitingMDN}}
	ruleStop      = rule{action: "stop", states: []string{store.StateQueued, store.StateAwaitingMDN}}
	ruleRefreshID = rule{action: "refresh the Message-ID of", states: []string{store.StateQueued, store.StateAwaitingMDN}, packed: true}
	ruleRetry     = rule{action: "retry", states: []string{store.StateFailed}}
	ruleRetryNew  = rule{action: "retry with a new Message-ID", states: []string{store.StateFailed}, packed: true}
	ruleResend    = rule{action: "resend", states: []string{store.StateSent}, packed: true}
	ruleReplay    = rule{action: "replay", states: []string{store.StateSent}, packed: true}
)

// check returns a *StateError when m does not meet r.
func (r rule) check(m *store.Message) error {
	reason := ""
	switch {
	case m.Direction != store.Outbound:
		reason = "it is an inbound message; only outbound messages are sent"
	case m.State == store.StateSending:
		reason = "it is being sent right now; try again once the attempt has ended"
	case r.packed && m.Kind != store.KindMessage:
		reason = "it is an asynchronous MDN job, not an AS2 message"
	case !slices.Contains(r.states, m.State):
		reason = fmt.Sprintf("it is %s; %s needs a message that is %s", m.State, r.action, strings.Join(r.states, " or "))
	default:
		return nil
	}
	return &StateError{Action: r.action, ID: m.ID, Reason: reason}
}

// load reads message id and checks it against r.
func (a *Actions) load(ctx context.Context, id int64, r rule) (*store.Message, error) {
	m, err := a.w.cfg.Store.GetMessage(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := r.check(m); err != nil {
		return nil, err
	}
	return m, nil
}

// refused turns the store's conflict, when the message changed between load and the
// transaction (a worker claimed it), into a *StateError that says what it is now.
func (a *Actions) refused(ctx context.Context, id int64, r rule, err error) error {
	if !errors.Is(err, store.ErrConflict) {
		return err
	}
	se := &StateError{Action: r.action, ID: id, Reason: "its state changed meanwhile"}
	if m, gerr := a.w.cfg.Store.GetMessage(ctx, id); gerr == nil {
		var now *StateError
		if errors.As(r.check(m), &now) {
			se.Reason = now.Reason
		}
	}
	return se
}

// route returns the partner's route as configured now, or nil when the partner is gone
// from the configuration: the message then keeps its URL, and the attempt records the
// configuration error.
func (a *Actions) route(ctx context.Context, m *store.Message) *Route {
	if a.router == nil || m.Kind != store.KindMessage {
		return nil // an MDN job goes to the partner's Receipt-Delivery-Option, not its URL
	}
	rt, err := a.router.Route(ctx, m.Partner)
	if err != nil {
		return nil
	}
	return rt
}

// newMessageID returns a fresh Message-ID under the configured domain, or under the domain
// of the message's current Message-ID when the partner has no route any more.
func newMessageID(m *store.Message, rt *Route) string {
	domain := ""
	if rt != nil {
		domain = rt.MessageIDDomain
	}
	if domain == "" {
		if _, d, ok := strings.Cut(strings.Trim(m.MessageID, "<>"), "@"); ok {
			domain = d
		}
	}
	return as2.NewMessageID(domain)
}

// requeue runs one requeue under r and wakes the worker.
func (a *Actions) requeue(ctx context.Context, id int64, r rule, refresh bool, evType, detail string) (*store.Message, error) {
	m, err := a.load(ctx, id, r)
	if err != nil {
		return nil, err
	}
	req := store.RequeueRequest{From: r.states, Due: a.w.cfg.Now()}
	rt := a.route(ctx, m)
	if rt != nil {
		req.URL = rt.URL
	}
	if refresh {
		req.ClearWire, req.MessageID = true, newMessageID(m, rt)
		detail = fmt.Sprintf("%s; Message-ID %s replaces %s", detail, req.MessageID, m.MessageID)
	}
	req.Event = &store.Event{At: a.w.cfg.Now(), Type: evType, Detail: detail}
	got, err := a.w.cfg.Store.Requeue(ctx, id, req)
	if err != nil {
		return nil, a.refused(ctx, id, r, err)
	}
	a.w.Wake()
	return got, nil
}

// RetryNow makes a queued message due now, without waiting for its retry time. A message
// waiting for an asynchronous MDN is sent again with the same bytes and Message-ID: the
// partner's duplicate check answers it with the receipt it keeps.
func (a *Actions) RetryNow(ctx context.Context, id int64) (*store.Message, error) {
	return a.requeue(ctx, id, ruleRetryNow, false, "retry_now", "due now by operator")
}

// Stop ends a queued message, or one waiting for its MDN, as failed with LastError
// StoppedReason; no attempt is counted. Retry sends it again later.
func (a *Actions) Stop(ctx context.Context, id int64) (*store.Message, error) {
	if _, err := a.load(ctx, id, ruleStop); err != nil {
		return nil, err
	}
	ev := &store.Event{At: a.w.cfg.Now(), Type: "stopped", Detail: StoppedReason}
	m, err := a.w.cfg.Store.Stop(ctx, id, StoppedReason, ev)
	if err != nil {
		return nil, a.refused(ctx, id, ruleStop, err)
	}
	return m, nil
}

// RefreshMessageID gives a queued message a new Message-ID and drops its packed bytes, so
// that the next attempt packs it again: the partner sees a new transaction, not a retry of
// the old one. It is due now.
func (a *Actions) RefreshMessageID(ctx context.Context, id int64) (*store.Message, error) {
	return a.requeue(ctx, id, ruleRefreshID, true, "message_id_refreshed", "new Message-ID by operator")
}

// Retry returns a failed message to the queue, due now, to the partner's URL as configured
// now. With newMessageID it also gets a new Message-ID, as RefreshMessageID; otherwise the
// stored bytes go out again under the same Message-ID.
func (a *Actions) Retry(ctx context.Context, id int64, newMessageID bool) (*store.Message, error) {
	if newMessageID {
		return a.requeue(ctx, id, ruleRetryNew, true, "retried", "retried by operator")
	}
	return a.requeue(ctx, id, ruleRetry, false, "retried", "retried by operator")
}

// Replay sends a sent message again exactly as it went: the stored bytes, headers and
// Message-ID. The partner sees a duplicate of the transaction it has.
func (a *Actions) Replay(ctx context.Context, id int64) (*store.Message, error) {
	m, err := a.load(ctx, id, ruleReplay)
	if err != nil {
		return nil, err
	}
	if m.Wire == "" {
		return nil, &StateError{Action: ruleReplay.action, ID: id, Reason: "no packed message is stored for it; resend it instead"}
	}
	return a.requeue(ctx, id, ruleReplay, false, "replayed", "replayed by operator: the same bytes and Message-ID")
}

// Resend queues a new message with the files, subject and tag of a sent one, under a new
// Message-ID, with RelatedID naming the original: a new transaction for the partner. The
// original is left as it is.
func (a *Actions) Resend(ctx context.Context, id int64) (*store.Message, error) {
	orig, err := a.load(ctx, id, ruleResend)
	if err != nil {
		return nil, err
	}
	rt := a.route(ctx, orig)
	m := &store.Message{
		Direction: store.Outbound, Kind: store.KindMessage, Station: orig.Station, Partner: orig.Partner,
		Subject: orig.Subject, Tag: orig.Tag, Profile: orig.Profile, State: store.StateQueued, URL: orig.URL,
		MessageID: newMessageID(orig, rt), Files: orig.Files, RelatedID: orig.ID, NextAttemptAt: a.w.cfg.Now(),
	}
	if rt != nil {
		m.URL = rt.URL
	}
	ev := &store.Event{At: a.w.cfg.Now(), Type: "resent",
		Detail: fmt.Sprintf("resend of message %d (%s) by operator", orig.ID, orig.MessageID)}
	if err := a.w.cfg.Store.CreateMessage(ctx, m, ev); err != nil {
		return nil, err
	}
	a.w.Wake()
	return m, nil
}

// Delete removes a message with its attempts and events; the timeline keeps a "deleted"
// event. The payloads stay in the payload store, where other messages may share them. A
// message being sent is refused.
func (a *Actions) Delete(ctx context.Context, id int64) (*store.Message, error) {
	m, err := a.w.cfg.Store.GetMessage(ctx, id)
	if err != nil {
		return nil, err
	}
	ev := &store.Event{At: a.w.cfg.Now(), Type: "deleted",
		Detail: fmt.Sprintf("message %d (%s, %s) deleted by operator", m.ID, m.MessageID, m.State)}
	got, err := a.w.cfg.Store.DeleteMessage(ctx, id, ev)
	if errors.Is(err, store.ErrConflict) {
		return nil, &StateError{Action: "delete", ID: id, Reason: "it is being sent right now; try again once the attempt has ended"}
	}
	return got, err
}
