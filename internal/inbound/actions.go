package inbound

import (
	"context"
	"fmt"
	"io"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/internal/netpolicy"
	"github.com/as2gate/as2gate/internal/store"
)

// The operator's actions on received messages. Each returns the message as it is afterwards
// (ResendMDN: the MDN row it queued), an error wrapping store.ErrConflict when the message
// does not allow the action, with the reason in words, or store.ErrNotFound.

// MDNURLError reports an address given for resending an MDN that the address policy
// refuses.
type MDNURLError struct {
	URL string
	Err error
}

func (e *MDNURLError) Error() string {
	return fmt.Sprintf("inbound: the MDN cannot be sent to %s: %v", e.URL, e.Err)
}

func (e *MDNURLError) Unwrap() error { return e.Err }

// received returns inbound message id, which must be a message (not a row of another kind).
func (b *Backend) received(ctx context.Context, id int64) (*store.Message, error) {
	m, err := b.cfg.Store.GetMessage(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.Direction != store.Inbound || m.Kind != store.KindMessage {
		return nil, fmt.Errorf("inbound: message %d is %s, not a received message: %w", id, m.Direction, store.ErrConflict)
	}
	return m, nil
}

// agreement returns today's agreement for m, or a conflict naming why there is none.
func (b *Backend) agreement(ctx context.Context, m *store.Message) (*Agreement, error) {
	ag, err := b.cfg.Agreements.Agreement(ctx, m.Station, m.Partner)
	if err != nil {
		return nil, fmt.Errorf("inbound: message %d: no agreement between %s and %s any more (%v): %w", m.ID, m.Station, m.Partner, err, store.ErrConflict)
	}
	return ag, nil
}

// Reprocess unpacks a received or suspended message again from its archived wire message
// and headers, with today's agreement: the partner's certificates, the station's keys and the
// security the agreement requires may have changed since it arrived. A message that now
// unpacks and meets the agreement becomes received, its payloads are stored and delivered to
// the inbox (again, under a second name, if it was received before); one that fails stays or
// becomes suspended with the new reason. No MDN is sent: the partner already has one, and
// resend-mdn is the operator's separate choice.
func (b *Backend) Reprocess(ctx context.Context, id int64) (*store.Message, error) {
	m, err := b.received(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.State != store.StateReceived && m.State != store.StateSuspended {
		return nil, fmt.Errorf("inbound: message %d is %s: %w", id, m.State, store.ErrConflict)
	}
	if m.Wire == "" {
		return nil, fmt.Errorf("inbound: message %d has no archived wire message to unpack: %w", id, store.ErrConflict)
	}
	ag, err := b.agreement(ctx, m)
	if err != nil {
		return nil, err
	}
	log := b.cfg.Log.With("message_id", m.MessageID, "partner", m.Partner, "action", "reprocess")
	blob, err := b.cfg.Payloads.Open(ctx, m.Wire)
	if err != nil {
		return nil, fmt.Errorf("inbound: opening the wire message of message %d: %w", id, err)
	}
	defer blob.Close()
	opts := ag.Unpack
	if len(opts.MICAlgs) == 0 {
		// As on arrival: the MIC algorithms the sender offered in its headers.
		if mdnReq, _, err := as2.ReadMDNRequest(m.WireHeader); err == nil {
			opts.MICAlgs = mdnReq.MICAlgs
		}
	}
	in, unpackErr := as2.Unpack(m.WireHeader, io.NewSectionReader(blob, 0, blob.Size()), &opts)
	if in != nil {
		defer in.Close()
	}
	if localFault(unpackErr) {
		return nil, fmt.Errorf("inbound: unpacking message %d again: %w", id, unpackErr)
	}
	if in != nil && in.MDN != nil {
		return nil, fmt.Errorf("inbound: message %d unpacks as an MDN, not a message: %w", id, store.ErrConflict)
	}

	r := store.ReprocessRequest{State: store.StateReceived}
	if in != nil && !in.MIC.IsZero() {
		r.MIC = in.MIC.String()
	}
	reason := b.judge(ag, in, unpackErr)
	if reason != nil {
		r.State, r.LastCode, r.LastError = store.StateSuspended, reason.Description, reason.Error()
		r.Event = &store.Event{Type: "reprocessed", Detail: "unpacked again; still suspended: " + reason.Error()}
	} else {
		for _, a := range in.Attachments {
			key, size, err := b.cfg.Payloads.Put(ctx, a.Body.Open())
			if err != nil {
				return nil, fmt.Errorf("inbound: storing a payload of message %d: %w", id, err)
			}
			r.Files = append(r.Files, store.File{Name: a.Filename, ContentType: a.ContentType, Size: size, SHA256: key})
		}
		r.Event = &store.Event{Type: "reprocessed", Detail: fmt.Sprintf("unpacked again; received: %d file(s), %s", len(r.Files), layersText(in))}
	}
	was := m.State
	out, err := b.cfg.Store.Reprocess(ctx, id, r)
	if err != nil {
		return nil, err
	}
	if out.State == store.StateSuspended {
		log.Warn("message reprocessed: still suspended", "reason", out.LastError)
		if was != store.StateSuspended && b.cfg.OnSuspended != nil {
			b.cfg.OnSuspended(ctx, out, out.LastError)
		}
		return out, nil
	}
	log.Info("message reprocessed: received", "files", len(out.Files), "was", was)
	if err := b.deliver(ctx, ag, out, log); err != nil {
		// Received and archived all the same: the delivery is recorded as failed on the
		// timeline and done again at the next start.
		log.Warn("reprocessed message not delivered", "err", err)
	}
	return b.cfg.Store.GetMessage(ctx, id)
}

// DeliverAgain copies the payloads of a received message to the partner's inbox once more,
// as configured today, never over a file already there: a name taken gets " (2)". A
// suspended message has nothing accepted to deliver (reprocess it first).
func (b *Backend) DeliverAgain(ctx context.Context, id int64) (*store.Message, error) {
	m, err := b.received(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.State != store.StateReceived {
		return nil, fmt.Errorf("inbound: message %d is %s; only a received message can be delivered (reprocess it first): %w", id, m.State, store.ErrConflict)
	}
	ag, err := b.agreement(ctx, m)
	if err != nil {
		return nil, err
	}
	if ag.Inbox == "" {
		return nil, fmt.Errorf("inbound: no inbox is configured for partner %s: %w", m.Partner, store.ErrConflict)
	}
	log := b.cfg.Log.With("message_id", m.MessageID, "partner", m.Partner, "action", "redeliver")
	if err := b.deliver(ctx, ag, m, log); err != nil {
		return nil, err
	}
	if err := b.cfg.Store.AddEvent(ctx, &store.Event{At: b.cfg.Now(), MessageRow: m.ID, Direction: store.Inbound, Partner: m.Partner,
		Type: "redelivered", Detail: fmt.Sprintf("%d file(s) delivered again to %s", len(m.Files), ag.Inbox)}); err != nil {
		return nil, err
	}
	return b.cfg.Store.GetMessage(ctx, id)
}

// ResendMDN queues the MDN stored for a received or suspended message once more, as an
// outbound MDN row: to url when it is not empty, else to the message's own
// Receipt-Delivery-Option. The address must pass the same policy as on arrival; a url the
// policy refuses is a *MDNURLError. The bytes are those first returned, so that the partner
// gets the receipt it is owed, not a new one.
func (b *Backend) ResendMDN(ctx context.Context, id int64, url string) (*store.Message, error) {
	m, err := b.received(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.MDN == nil || m.MDN.Key == "" {
		return nil, fmt.Errorf("inbound: message %d has no stored MDN (it asked for none): %w", id, store.ErrConflict)
	}
	if url == "" {
		mdnReq, _, err := as2.ReadMDNRequest(m.WireHeader)
		if err != nil || mdnReq.Mode != as2.MDNAsync || mdnReq.URL == "" {
			return nil, fmt.Errorf("inbound: message %d asked for a synchronous MDN, which went back on its connection; give the url to send it to: %w", id, store.ErrConflict)
		}
		url = mdnReq.URL
		if err := netpolicy.CheckURL(ctx, url, b.cfg.AllowPrivateMDNURLs, b.cfg.Resolver); err != nil {
			return nil, fmt.Errorf("inbound: message %d: its Receipt-Delivery-Option is refused (%v); give another url: %w", id, err, store.ErrConflict)
		}
	} else if err := netpolicy.CheckURL(ctx, url, b.cfg.AllowPrivateMDNURLs, b.cfg.Resolver); err != nil {
		return nil, &MDNURLError{URL: url, Err: err}
	}
	now := b.cfg.Now()
	job := &store.Message{
		Direction: store.Outbound, Kind: store.KindMDN, MessageID: m.MDN.MessageID, Station: m.Station, Partner: m.Partner,
		Subject: "MDN for " + m.MessageID + " (sent again)", State: store.StateQueued, Wire: m.MDN.Key,
		WireHeader: parseHeaderText(m.MDN.Header), URL: url, MDNMode: as2.MDNNone.String(),
		RelatedID: m.ID, NextAttemptAt: now,
	}
	if err := b.cfg.Store.CreateMessage(ctx, job, nil); err != nil {
		return nil, err
	}
	if err := b.cfg.Store.AddEvent(ctx, &store.Event{At: now, MessageRow: m.ID, Direction: store.Inbound, Partner: m.Partner,
		Type: "mdn_resend", Detail: "the stored MDN was queued again for " + url}); err != nil {
		return nil, err
	}
	if b.cfg.Wake != nil {
		b.cfg.Wake()
	}
	b.cfg.Log.Info("MDN queued again", "message_id", m.MessageID, "partner", m.Partner, "url", url)
	return job, nil
}
