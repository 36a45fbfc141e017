// Package inbound receives AS2 messages and asynchronous MDNs for the gateway: it implements
// as2.Backend. For each message it identifies the agreement, enforces it, detects
// duplicates, archives the wire message, the payloads and the MDN (each under its SHA-256),
// commits, and only then answers and delivers the payloads to the partner's inbox folder.
package inbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/internal/netpolicy"
	"github.com/as2gate/as2gate/internal/outbound"
	"github.com/as2gate/as2gate/internal/payload"
	"github.com/as2gate/as2gate/internal/store"
)

// Agreement is what the gateway knows about receiving from one partner at one station.
type Agreement struct {
	Station, Partner string
	// Unpack holds the station's decryption keys, the partner's certificates and the bound
	// on decrypted and decompressed layers.
	Unpack as2.UnpackOptions
	// MaxSize bounds the request body.
	MaxSize int64
	// RequireSigned, RequireEncrypted and RequireCompressed are what every message from the
	// partner must be.
	RequireSigned, RequireEncrypted, RequireCompressed bool
	// MDNSigner signs the MDNs we return.
	MDNSigner *as2.MDNSigner
	// MDNFromAgreement makes the MDNs we return follow the agreement rather than the
	// sender's Disposition-Notification-Options (R-PART-4): signed when MDNSigned, with
	// MDNAlg.
	MDNFromAgreement bool
	MDNSigned        bool
	MDNAlg           as2.MICAlg
	// Inbox is the folder received payloads are delivered to.
	Inbox string
}

// Agreements looks up agreements. An error for an unknown pair is answered 403 with its text.
type Agreements interface {
	Agreement(ctx context.Context, station, partner string) (*Agreement, error)
}

// Config configures a Backend.
type Config struct {
	Store      store.Store
	Payloads   payload.Store
	Agreements Agreements
	// DedupWindow is how far back a Message-ID counts as a duplicate; default 30 days.
	DedupWindow time.Duration
	// AllowPrivateMDNURLs lets Receipt-Delivery-Option point at private and loopback
	// addresses (for tests and closed networks).
	AllowPrivateMDNURLs bool
	Resolver            netpolicy.Resolver // nil: net.DefaultResolver
	ReportingUA         string
	// Wake is called after an asynchronous MDN is queued, so that it leaves at once.
	Wake func()
	// OnMDNFailed is called when an asynchronous MDN moves one of our messages to failed.
	OnMDNFailed func(ctx context.Context, m *store.Message, a *store.Attempt)
	// OnSuspended is called after a message is kept as suspended.
	OnSuspended func(ctx context.Context, m *store.Message, reason string)
	Now         func() time.Time
	Log         *slog.Logger

	// Metrics is told about received payloads and asynchronous MDNs; nil reports nothing.
	Metrics outbound.Metrics
}

// Backend implements as2.Backend for the gateway.
type Backend struct {
	cfg Config
}

// New returns a Backend.
func New(cfg Config) (*Backend, error) {
	if cfg.Store == nil || cfg.Payloads == nil || cfg.Agreements == nil {
		return nil, errors.New("inbound: Store, Payloads and Agreements are required")
	}
	if cfg.DedupWindow <= 0 {
		cfg.DedupWindow = 30 * 24 * time.Hour
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.ReportingUA == "" {
		cfg.ReportingUA = "as2gate"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = outbound.NoMetrics{}
	}
	return &Backend{cfg: cfg}, nil
}

// Agreement implements as2.Backend.
func (b *Backend) Agreement(ctx context.Context, req *as2.Request) (*as2.Agreement, error) {
	ag, err := b.cfg.Agreements.Agreement(ctx, req.To, req.From)
	if err != nil {
		b.cfg.Log.Warn("refused a message from an unknown pair", "partner", req.From, "as2_from", req.From, "as2_to", req.To, "message_id", req.MessageID, "remote", req.RemoteAddr, "err", err)
		return nil, &as2.Refusal{Status: http.StatusForbidden, Reason: err.Error()}
	}
	return &as2.Agreement{Unpack: ag.Unpack, MaxSize: ag.MaxSize}, nil
}

// Receive implements as2.Backend.
func (b *Backend) Receive(ctx context.Context, req *as2.Request, wire *as2.Spool, in *as2.Incoming, unpackErr error) (*as2.Reply, error) {
	ag, err := b.cfg.Agreements.Agreement(ctx, req.To, req.From)
	if err != nil {
		return nil, err
	}
	log := b.cfg.Log.With("message_id", req.MessageID, "partner", req.From)
	if localFault(unpackErr) {
		// Our disk failed, not the partner's message: answer 503 so that it is sent again,
		// rather than refusing it for good and answering every resend as a duplicate.
		log.Error("could not unpack a message for a local fault", "err", unpackErr)
		return nil, unpackErr
	}
	if in != nil && in.MDN != nil {
		return b.receiveMDN(ctx, req, ag, wire, in, log)
	}
	now := b.cfg.Now()
	if dup, err := b.cfg.Store.FindDuplicate(ctx, req.To, req.From, req.MessageID, now.Add(-b.cfg.DedupWindow)); err == nil {
		return b.duplicate(ctx, req, dup, log)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}

	wireKey, _, err := b.cfg.Payloads.Put(ctx, wire.Open())
	if err != nil {
		return nil, err
	}
	m := &store.Message{
		Direction: store.Inbound, Kind: store.KindMessage, MessageID: req.MessageID,
		Station: req.To, Partner: req.From, Subject: req.Subject, State: store.StateReceived,
		Wire: wireKey, WireHeader: req.Header, MDNMode: req.MDN.Mode.String(), NextAttemptAt: now,
	}
	disposition := as2.Processed()
	reason := b.judge(ag, in, unpackErr)
	if reason != nil {
		m.State = store.StateSuspended
		m.LastCode, m.LastError = reason.Description, reason.Error()
		disposition = as2.ProcessedWithError(reason.Description)
	}
	if in != nil && m.State == store.StateReceived {
		for _, a := range in.Attachments {
			key, size, err := b.cfg.Payloads.Put(ctx, a.Body.Open())
			if err != nil {
				return nil, err
			}
			m.Files = append(m.Files, store.File{Name: a.Filename, ContentType: a.ContentType, Size: size, SHA256: key})
		}
	}
	if in != nil && !in.MIC.IsZero() {
		m.MIC = in.MIC.String()
	}

	var reply *as2.Reply
	var job *store.Message
	if req.MDN.Mode != as2.MDNNone {
		mdnReq := req
		if ag.MDNFromAgreement {
			r := *req
			r.MDN.Signed = ag.MDNSigned
			r.MDN.MICAlgs = nil
			if ag.MDNAlg.Valid() {
				r.MDN.MICAlgs = []as2.MICAlg{ag.MDNAlg}
			}
			mdnReq = &r
		}
		mdn := as2.NewMDN(req, in, disposition, b.cfg.ReportingUA)
		if reason != nil && reason.Layer == "agreement" {
			// Safe to explain: it says only what the agreement asks. Cryptographic failures
			// keep the generic text, so that a sender learns nothing about keys or padding.
			mdn.Text = "The message was received but not accepted: " + reason.Err.Error() + "."
		} else if reason != nil && reason.Description == as2.DescDecryptionFailed {
			// One text for every failure inside the encryption, as the description is one
			// (no padding oracle); it points at both certificates, which is what it usually is.
			mdn.Text = "The message could not be decrypted and verified. For security the precise reason is not " +
				"given here; the receiving operator sees it. Check that you encrypt to the receiver's current " +
				"certificate and sign with the certificate the receiver holds for you."
		}
		h, body, err := as2.EncodeMDN(mdn, mdnReq, ag.MDNSigner, req.To)
		if err != nil {
			return nil, fmt.Errorf("inbound: building the MDN: %w", err)
		}
		key, _, err := b.cfg.Payloads.Put(ctx, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		m.MDN = &store.MDN{
			Disposition: disposition.String(), Positive: disposition.Positive(), MIC: m.MIC,
			Signed: mdnReq.MDN.Signed && ag.MDNSigner != nil, MessageID: h.Get(as2.HeaderMessageID),
			Header: headerText(h), Key: key, At: now,
		}
		if req.MDN.Mode == as2.MDNSync {
			reply = &as2.Reply{Header: h, Body: body}
		} else if err := netpolicy.CheckURL(ctx, req.MDN.URL, b.cfg.AllowPrivateMDNURLs, b.cfg.Resolver); err != nil {
			log.Warn("not sending the asynchronous MDN", "url", req.MDN.URL, "err", err)
			note := "asynchronous MDN not sent: " + err.Error()
			if m.LastError != "" {
				note = m.LastError + "; " + note
			}
			m.LastError = note
		} else {
			job = &store.Message{
				Direction: store.Outbound, Kind: store.KindMDN, MessageID: h.Get(as2.HeaderMessageID),
				Station: req.To, Partner: req.From, Subject: "MDN for " + req.MessageID, State: store.StateQueued,
				Wire: key, WireHeader: h, URL: req.MDN.URL, MDNMode: as2.MDNNone.String(), NextAttemptAt: now,
			}
		}
	}
	ev := &store.Event{At: now, Direction: store.Inbound, Partner: req.From, Type: "received",
		Detail: fmt.Sprintf("%d file(s), %s", len(m.Files), layersText(in))}
	if m.State == store.StateSuspended {
		ev.Type, ev.Detail = "suspended", m.LastError
	}
	if err := b.cfg.Store.CreateInbound(ctx, m, job, ev, now.Add(-b.cfg.DedupWindow)); err != nil {
		var de *store.DuplicateError
		if errors.As(err, &de) {
			// Another copy was stored while this one was being unpacked.
			return b.duplicate(ctx, req, de.Existing, log)
		}
		return nil, err
	}
	if job != nil && b.cfg.Wake != nil {
		b.cfg.Wake()
	}
	if m.State == store.StateSuspended {
		log.Warn("message suspended", "reason", m.LastError)
		if b.cfg.OnSuspended != nil {
			b.cfg.OnSuspended(ctx, m, m.LastError)
		}
	} else {
		log.Info("message received", "files", len(m.Files))
		var size int64
		for _, f := range m.Files {
			size += f.Size
		}
		b.cfg.Metrics.PayloadBytes(store.Inbound, size)
		b.deliver(ctx, ag, m, log)
	}
	return reply, nil
}

// judge returns why a message cannot be accepted: an unpack failure, or layers weaker than
// the agreement (R-PART-2).
func (b *Backend) judge(ag *Agreement, in *as2.Incoming, unpackErr error) *as2.UnpackError {
	if unpackErr != nil {
		var ue *as2.UnpackError
		if errors.As(unpackErr, &ue) {
			return ue
		}
		return &as2.UnpackError{Layer: "mime", Description: as2.DescUnexpectedProcessingError, Err: unpackErr}
	}
	var missing []string
	if ag.RequireEncrypted && !in.Encrypted() {
		missing = append(missing, "encrypted")
	}
	if ag.RequireSigned && in.Signer() == nil {
		missing = append(missing, "signed")
	}
	if ag.RequireCompressed && !in.Compressed() {
		missing = append(missing, "compressed")
	}
	if len(missing) > 0 {
		return &as2.UnpackError{Layer: "agreement", Description: as2.DescInsufficientSecurity,
			Err: fmt.Errorf("the agreement with %s requires messages to be %s", ag.Partner, strings.Join(missing, " and "))}
	}
	return nil
}

// duplicate answers a message received before: the stored MDN again, nothing delivered.
func (b *Backend) duplicate(ctx context.Context, req *as2.Request, dup *store.Message, log *slog.Logger) (*as2.Reply, error) {
	log.Info("duplicate message: answering with the stored MDN, not delivering again", "first_received", dup.CreatedAt)
	ev := &store.Event{At: b.cfg.Now(), MessageRow: dup.ID, Direction: store.Inbound, Partner: req.From, Type: "duplicate",
		Detail: "received again; the stored MDN was returned and nothing was delivered twice"}
	if err := b.cfg.Store.AddEvent(ctx, ev); err != nil {
		return nil, err
	}
	if dup.MDN == nil || dup.MDN.Key == "" {
		return nil, nil
	}
	if req.MDN.Mode == as2.MDNAsync {
		// The sender asks again because our first asynchronous MDN did not reach it: send
		// the stored one again, to the address this copy names.
		if err := netpolicy.CheckURL(ctx, req.MDN.URL, b.cfg.AllowPrivateMDNURLs, b.cfg.Resolver); err != nil {
			log.Warn("not sending the asynchronous MDN again", "url", req.MDN.URL, "err", err)
			return nil, nil
		}
		job := &store.Message{
			Direction: store.Outbound, Kind: store.KindMDN, MessageID: dup.MDN.MessageID, Station: req.To, Partner: req.From,
			Subject: "MDN for " + req.MessageID + " (again)", State: store.StateQueued, Wire: dup.MDN.Key,
			WireHeader: parseHeaderText(dup.MDN.Header), URL: req.MDN.URL, MDNMode: as2.MDNNone.String(),
			RelatedID: dup.ID, NextAttemptAt: b.cfg.Now(),
		}
		if err := b.cfg.Store.CreateMessage(ctx, job, nil); err != nil {
			return nil, err
		}
		if b.cfg.Wake != nil {
			b.cfg.Wake()
		}
		return nil, nil
	}
	if req.MDN.Mode != as2.MDNSync {
		return nil, nil
	}
	blob, err := b.cfg.Payloads.Open(ctx, dup.MDN.Key)
	if err != nil {
		return nil, err
	}
	defer blob.Close()
	body, err := io.ReadAll(blob)
	if err != nil {
		return nil, err
	}
	return &as2.Reply{Header: parseHeaderText(dup.MDN.Header), Body: body}, nil
}

// receiveMDN matches an asynchronous MDN to the message it answers.
func (b *Backend) receiveMDN(ctx context.Context, req *as2.Request, ag *Agreement, wire *as2.Spool, in *as2.Incoming, log *slog.Logger) (*as2.Reply, error) {
	// QUIRK: some products quote the Original-Message-ID without its angle brackets.
	origID := "<" + as2.NormalizeMessageID(in.MDN.OriginalMessageID) + ">"
	orig, err := b.cfg.Store.FindByMessageID(ctx, store.Outbound, origID)
	if err == nil && (orig.Kind != store.KindMessage || orig.Partner != req.From || orig.Station != req.To) {
		// Only the partner we sent the message to may answer it.
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		log.Warn("asynchronous MDN for an unknown message", "original_message_id", in.MDN.OriginalMessageID)
		return nil, b.cfg.Store.AddEvent(ctx, &store.Event{At: b.cfg.Now(), Direction: store.Inbound, Partner: req.From,
			Type: "mdn_unmatched", Detail: "an MDN arrived for " + in.MDN.OriginalMessageID + ", which is not a message we sent"})
	}
	if err != nil {
		return nil, err
	}
	key, _, err := b.cfg.Payloads.Put(ctx, wire.Open())
	if err != nil {
		return nil, err
	}
	msg, _ := outbound.Sent(orig) // as before: an unreadable receipt request asks for none
	rc := &as2.Receipt{MDN: in.MDN, Signer: in.Signer(), Entity: in.MDNEntity}
	now := b.cfg.Now()
	rec := &store.MDN{Disposition: in.MDN.Disposition.String(), Positive: in.MDN.Positive(), Signed: rc.Signer != nil,
		MessageID: req.MessageID, Header: headerText(req.Header), Key: key, At: now}
	if in.MDN.ReceivedMIC != nil {
		rec.MIC = in.MDN.ReceivedMIC.String()
	}
	out := store.Outcome{State: store.StateSent, MDN: rec}
	if err := msg.Check(rc); errors.Is(err, as2.ErrMDNUnsigned) {
		// An MDN that proves nothing must not decide the message: anyone can POST one. It is
		// kept on the timeline and the message waits for a valid MDN or its deadline.
		log.Warn("asynchronous MDN ignored: unsigned, though a signed MDN was requested")
		return nil, b.cfg.Store.AddEvent(ctx, &store.Event{At: now, MessageRow: orig.ID, Direction: store.Inbound, Partner: req.From,
			Type: "mdn_ignored", Detail: "an unsigned MDN arrived although a signed one was requested; the message still waits for its MDN"})
	} else if err != nil {
		out.State = store.StateFailed
		out.Attempt = &store.Attempt{At: now, Class: store.ClassPermanent, Code: mdnCode(err), Error: err.Error(),
			Action: "The partner's asynchronous MDN does not confirm the message: read its disposition and text, and agree with the partner on the fix before sending again."}
		out.Event = &store.Event{Type: "failed", Detail: err.Error()}
	} else {
		rec.MICOK = true
		out.Event = &store.Event{Type: "mdn_received", Detail: "asynchronous MDN " + rec.Disposition}
	}
	if err := b.cfg.Store.CompleteMDN(ctx, orig.ID, out); err != nil {
		if errors.Is(err, store.ErrConflict) {
			log.Warn("asynchronous MDN for a message that is not waiting for one", "state", orig.State)
			return nil, nil
		}
		return nil, err
	}
	log.Info("asynchronous MDN matched", "disposition", rec.Disposition, "state", out.State)
	// The row was last updated when the partner took the message (awaiting_mdn), or, when
	// the MDN overtook the worker (sending), when the worker claimed it to send.
	b.cfg.Metrics.MDNReceived("async", now.Sub(orig.UpdatedAt))
	if out.Attempt != nil {
		b.cfg.Metrics.Attempt(out.Attempt.Class, out.Attempt.Code)
	}
	if out.State == store.StateSent {
		b.cfg.Metrics.Sent(orig.CreatedAt, now)
	}
	if out.State == store.StateFailed && b.cfg.OnMDNFailed != nil {
		orig.State, orig.LastCode, orig.LastError = out.State, out.Attempt.Code, out.Attempt.Error
		b.cfg.OnMDNFailed(ctx, orig, out.Attempt)
	}
	return nil, nil
}

// localFault reports whether err is this gateway's storage failing (a full disk, a file that
// cannot be written) rather than anything about the message.
func localFault(err error) bool {
	var pe *fs.PathError
	return err != nil && (errors.As(err, &pe) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EIO))
}

// mdnCode names an MDN check failure with the classifier's codes.
func mdnCode(err error) string {
	var de *as2.DispositionError
	var me *as2.MICMismatchError
	var se *as2.SignatureError
	switch {
	case errors.As(err, &de):
		return "mdn_negative"
	case errors.As(err, &me):
		return "mic_mismatch"
	case errors.Is(err, as2.ErrMDNUnsigned):
		return "mdn_unsigned"
	case errors.As(err, &se):
		return "mdn_signature_invalid"
	}
	return "mdn_unreadable"
}

func layersText(in *as2.Incoming) string {
	if in == nil {
		return "unreadable"
	}
	var l []string
	if in.Encrypted() {
		l = append(l, "encrypted")
	}
	if in.Signer() != nil {
		l = append(l, "signed")
	}
	if in.Compressed() {
		l = append(l, "compressed")
	}
	if len(l) == 0 {
		return "plain"
	}
	return strings.Join(l, ", ")
}

// headerText writes h as header lines, to keep with a record.
func headerText(h http.Header) string {
	var b strings.Builder
	h.Write(&b)
	return b.String()
}

// parseHeaderText reads header lines written by headerText.
func parseHeaderText(s string) http.Header {
	h := http.Header{}
	for _, line := range strings.Split(s, "\r\n") {
		name, value, ok := strings.Cut(line, ":")
		if ok {
			h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
		}
	}
	return h
}
