package interop

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
)

// stationBackend is an as2.Backend for one station and the partners it trusts, the smallest
// gateway an interop test needs: it unpacks with the station's key, records what arrived,
// and answers with an MDN built by the as2 package, signed with the station's key when the
// sender asks, synchronously or POSTed to the sender's Receipt-Delivery-Option URL.
type stationBackend struct {
	station  *cmstest.Identity
	as2ID    string
	partners map[string]*x509.Certificate // AS2 name -> the certificate its signatures must verify with

	mu    sync.Mutex
	byID  map[string]chan stationMessage // by normalised Message-ID: senders run in parallel
	async sync.WaitGroup                 // asynchronous MDNs being sent
}

// stationMessage is what the backend saw of one message and what it answered.
type stationMessage struct {
	Request     *as2.Request
	Payloads    [][]byte // the decoded attachments, in order
	ContentType string   // of the first attachment
	Layers      []as2.Layer
	MIC         as2.MIC // the Received-Content-MIC answered
	UnpackErr   error   // what stopped Unpack, or nil
	MDN         *as2.MDN
	MDNSigned   bool
	AsyncErr    error // from sending an asynchronous MDN
}

// DecryptInfo returns the encryption layer's DecryptInfo, or nil for an unencrypted message.
func (m stationMessage) DecryptInfo() *cms.DecryptInfo {
	for _, l := range m.Layers {
		if l.Decrypt != nil {
			return l.Decrypt
		}
	}
	return nil
}

// Signer returns the verified signature, or nil for an unsigned message.
func (m stationMessage) Signer() *cms.Signer {
	for _, l := range m.Layers {
		if l.Signer != nil {
			return l.Signer
		}
	}
	return nil
}

// newStationBackend returns a backend for station, known as as2ID, that accepts messages
// from the partners given by AS2 name. It waits for its asynchronous MDNs at the end of the
// test.
func newStationBackend(t testing.TB, station *cmstest.Identity, as2ID string, partners map[string]*x509.Certificate) *stationBackend {
	b := &stationBackend{station: station, as2ID: as2ID, partners: partners, byID: map[string]chan stationMessage{}}
	t.Cleanup(b.async.Wait)
	return b
}

// Agreement implements as2.Backend.
func (b *stationBackend) Agreement(_ context.Context, req *as2.Request) (*as2.Agreement, error) {
	partner, ok := b.partners[req.From]
	if !ok || req.To != b.as2ID {
		return nil, &as2.Refusal{Status: http.StatusForbidden, Reason: fmt.Sprintf("no agreement between %q and %q", req.From, req.To)}
	}
	return &as2.Agreement{Unpack: as2.UnpackOptions{
		Recipients: []cms.Recipient{{Certificate: b.station.Certificate, Key: b.station.Key}},
		Trusted:    []*x509.Certificate{partner},
	}}, nil
}

// Receive implements as2.Backend.
func (b *stationBackend) Receive(_ context.Context, req *as2.Request, _ *as2.Spool, in *as2.Incoming, unpackErr error) (*as2.Reply, error) {
	rec := stationMessage{Request: req, UnpackErr: unpackErr}
	d := as2.Processed()
	if unpackErr != nil {
		desc := as2.DescUnexpectedProcessingError
		var ue *as2.UnpackError
		if errors.As(unpackErr, &ue) {
			desc = ue.Description
		}
		d = as2.ProcessedWithError(desc)
	} else {
		rec.Layers, rec.MIC = in.Layers, in.MIC
		for i, a := range in.Attachments {
			// The Handler releases the spools when Receive returns: keep copies.
			p, err := io.ReadAll(a.Body.Open())
			if err != nil {
				return nil, fmt.Errorf("reading attachment %d: %w", i+1, err)
			}
			rec.Payloads = append(rec.Payloads, p)
			if i == 0 {
				rec.ContentType = a.ContentType
			}
		}
	}
	if req.MDN.Mode == as2.MDNNone {
		b.slot(req.MessageID) <- rec
		return nil, nil
	}
	rec.MDN = as2.NewMDN(req, in, d, "as2gate interop test")
	rec.MDNSigned = req.MDN.Signed
	signer := &as2.MDNSigner{Certificate: b.station.Certificate, Key: b.station.Key}
	h, body, err := as2.EncodeMDN(rec.MDN, req, signer, b.as2ID)
	if err != nil {
		return nil, err
	}
	if req.MDN.Mode == as2.MDNSync {
		b.slot(req.MessageID) <- rec
		return &as2.Reply{Header: h, Body: body}, nil
	}
	// An asynchronous MDN goes out once the message is acknowledged, as a gateway's would.
	b.async.Add(1)
	go func() {
		defer b.async.Done()
		ctx, cancel := context.WithTimeout(context.Background(), libas2Deadline)
		defer cancel()
		rec.AsyncErr = (&as2.Client{}).SendMDN(ctx, req.MDN.URL, h, body)
		b.slot(req.MessageID) <- rec
	}()
	return nil, nil
}

// slot returns the channel that carries the record of message id.
func (b *stationBackend) slot(id string) chan stationMessage {
	id = as2.NormalizeMessageID(id)
	b.mu.Lock()
	defer b.mu.Unlock()
	ch, ok := b.byID[id]
	if !ok {
		// Room for a resent duplicate, so that Receive never blocks on a test that stopped
		// listening.
		ch = make(chan stationMessage, 4)
		b.byID[id] = ch
	}
	return ch
}

// message returns what the backend saw of message id and answered.
func (b *stationBackend) message(t testing.TB, id string) stationMessage {
	t.Helper()
	deadline := time.NewTimer(libas2Deadline)
	defer deadline.Stop()
	select {
	case m := <-b.slot(id):
		return m
	case <-deadline.C:
		t.Fatalf("message %s did not reach the backend within %v", id, libas2Deadline)
	}
	return stationMessage{}
}

// Compile-time check that stationBackend is an as2.Backend.
var _ as2.Backend = (*stationBackend)(nil)
