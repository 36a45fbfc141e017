package as2_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/as2/as2test"
	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
)

// In these tests the Handler is us, STATION, receiving from PARTNER: the identities of
// stations are used the other way round from the client tests.

// testBackend is a small receiver behind a Handler: it knows one partner, answers the MDN
// the sender asks for, and queues asynchronous MDNs for flush to send.
type testBackend struct {
	station, partner *cmstest.Identity
	maxSize          int64
	failReceive      bool // Receive fails as when the store is down

	mu       sync.Mutex
	received []received
	outbox   []asyncMDN
	arrived  chan received // each Receive call, when not nil
}

// received is what one Receive call was given.
type received struct {
	req       *as2.Request
	wire      []byte
	payloads  []string
	mic       as2.MIC
	mdn       *as2.MDN
	signer    *cms.Signer
	unpackErr error
}

type asyncMDN struct {
	url    string
	header http.Header
	body   []byte
}

func (b *testBackend) Agreement(ctx context.Context, req *as2.Request) (*as2.Agreement, error) {
	if req.From != "PARTNER" || req.To != "STATION" {
		return nil, &as2.Refusal{Status: http.StatusForbidden, Reason: fmt.Sprintf("no agreement from %q to %q", req.From, req.To)}
	}
	return &as2.Agreement{
		Unpack: as2.UnpackOptions{
			Recipients: []cms.Recipient{{Certificate: b.station.Certificate, Key: b.station.Key}},
			Trusted:    []*x509.Certificate{b.partner.Certificate},
		},
		MaxSize: b.maxSize,
	}, nil
}

func (b *testBackend) Receive(ctx context.Context, req *as2.Request, wire *as2.Spool, in *as2.Incoming, unpackErr error) (*as2.Reply, error) {
	r := received{req: req, unpackErr: unpackErr}
	var err error
	if r.wire, err = io.ReadAll(wire.Open()); err != nil {
		return nil, err
	}
	if in != nil {
		r.mic, r.mdn, r.signer = in.MIC, in.MDN, in.Signer()
		for _, a := range in.Attachments {
			p, err := io.ReadAll(a.Body.Open())
			if err != nil {
				return nil, err
			}
			r.payloads = append(r.payloads, string(p))
		}
	}
	b.mu.Lock()
	b.received = append(b.received, r)
	arrived := b.arrived
	b.mu.Unlock()
	if arrived != nil {
		arrived <- r
	}
	if b.failReceive {
		return nil, errors.New("the message store is unavailable")
	}
	if r.mdn != nil || req.MDN.Mode == as2.MDNNone {
		return nil, nil
	}
	d := as2.Processed()
	var ue *as2.UnpackError
	if errors.As(unpackErr, &ue) {
		d = as2.ProcessedWithError(ue.Description)
	} else if unpackErr != nil {
		d = as2.ProcessedWithError(as2.UnexpectedProcessingError)
	}
	h, body, err := as2.EncodeMDN(as2.NewMDN(req, in, d, "as2gate test"), req,
		&as2.MDNSigner{Certificate: b.station.Certificate, Key: b.station.Key}, "STATION")
	if err != nil {
		return nil, err
	}
	if req.MDN.Mode == as2.MDNAsync {
		b.mu.Lock()
		b.outbox = append(b.outbox, asyncMDN{url: req.MDN.URL, header: h, body: body})
		b.mu.Unlock()
		return nil, nil
	}
	return &as2.Reply{Header: h, Body: body}, nil
}

// flush sends the queued asynchronous MDNs, as the gateway's outbound queue does after the
// message is committed.
func (b *testBackend) flush(ctx context.Context, c *as2.Client) error {
	b.mu.Lock()
	out := b.outbox
	b.outbox = nil
	b.mu.Unlock()
	for _, m := range out {
		if err := c.SendMDN(ctx, m.url, m.header, m.body); err != nil {
			return err
		}
	}
	return nil
}

func (b *testBackend) calls() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.received...)
}

// newHandler serves a Handler over b on 127.0.0.1. b's station is s.us, its partner s.them.
func newHandler(t testing.TB, s stations, edit func(*testBackend)) (*testBackend, *httptest.Server) {
	t.Helper()
	b := &testBackend{station: s.us, partner: s.them, maxSize: 64 << 10}
	if edit != nil {
		edit(b)
	}
	srv := httptest.NewServer(&as2.Handler{Backend: b, SpoolDir: t.TempDir()})
	t.Cleanup(srv.Close)
	return b, srv
}

// inbound are the options of the partner sending to us: signed by it, encrypted for us.
func (s stations) inbound() *as2.PackOptions {
	return &as2.PackOptions{
		From: "PARTNER", To: "STATION",
		Sign: as2.MICAlgSHA256, Certificate: s.them.Certificate, Key: s.them.Key,
		Encrypt: cms.AES256CBC, Recipients: []*x509.Certificate{s.us.Certificate},
		MDN: as2.MDNRequest{Mode: as2.MDNSync, Signed: true},
	}
}

// recordingTransport keeps how each response was framed.
type recordingTransport struct {
	mu     sync.Mutex
	framed []string // "length N" or "chunked"
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		rt.mu.Lock()
		if len(resp.TransferEncoding) > 0 {
			rt.framed = append(rt.framed, strings.Join(resp.TransferEncoding, ","))
		} else {
			rt.framed = append(rt.framed, fmt.Sprintf("length %d", resp.ContentLength))
		}
		rt.mu.Unlock()
	}
	return resp, err
}

// TestServerRefuses: requests that are not messages this receiver takes are answered with
// an HTTP status and a plain-text reason, and never reach Receive (but for the failure of
// Receive itself).
func TestServerRefuses(t *testing.T) {
	t.Parallel()
	s := newStations(t)
	msg := pack(t, s.inbound())
	good := wire(t, msg)
	large := bytes.Repeat([]byte("x"), 100<<10)
	headers := func(edit func(h http.Header)) http.Header {
		h := msg.Header.Clone()
		if edit != nil {
			edit(h)
		}
		return h
	}
	tests := []struct {
		name        string
		method      string
		header      http.Header
		body        []byte
		chunked     bool
		failReceive bool
		status      int
		text        string // a part of the reason the body must give
		receive     bool   // Receive is called
	}{
		{name: "unknown partner", header: headers(func(h http.Header) { h.Set("AS2-From", "STRANGER") }), body: good,
			status: http.StatusForbidden, text: `no agreement from "STRANGER" to "STATION"`},
		{name: "unknown station", header: headers(func(h http.Header) { h.Set("AS2-To", `"SOMEONE ELSE"`) }), body: good,
			status: http.StatusForbidden, text: `to "SOMEONE ELSE"`},
		{name: "no AS2-From", header: headers(func(h http.Header) { h.Del("AS2-From") }), body: good,
			status: http.StatusBadRequest, text: "AS2-From"},
		{name: "no AS2-To", header: headers(func(h http.Header) { h.Del("AS2-To") }), body: good,
			status: http.StatusBadRequest, text: "AS2-To"},
		{name: "no Message-ID", header: headers(func(h http.Header) { h.Del("Message-Id") }), body: good,
			status: http.StatusBadRequest, text: "Message-ID"},
		{name: "GET", method: http.MethodGet, header: headers(nil),
			status: http.StatusMethodNotAllowed, text: "POST"},
		{name: "larger than the agreement allows, with Content-Length", header: headers(nil), body: large,
			status: http.StatusRequestEntityTooLarge, text: "at most 65536"},
		{name: "larger than the agreement allows, chunked", header: headers(nil), body: large, chunked: true,
			status: http.StatusRequestEntityTooLarge, text: "65536 bytes"},
		{name: "Receive fails", header: headers(nil), body: good, failReceive: true,
			status: http.StatusServiceUnavailable, text: "send it again later", receive: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, srv := newHandler(t, s, func(b *testBackend) { b.failReceive = tc.failReceive })
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			var body io.Reader = bytes.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // of unknown length: sent chunked
			}
			req, err := http.NewRequest(method, srv.URL+"/as2", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header = tc.header
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			text, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("status %d (%s), want %d", resp.StatusCode, text, tc.status)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q, want text/plain", ct)
			}
			if !strings.Contains(string(text), tc.text) {
				t.Errorf("reason %q does not say %q", text, tc.text)
			}
			if tc.status == http.StatusMethodNotAllowed && resp.Header.Get("Allow") != http.MethodPost {
				t.Errorf("Allow %q, want POST", resp.Header.Get("Allow"))
			}
			if n := len(b.calls()); (n > 0) != tc.receive {
				t.Errorf("Receive called %d times", n)
			}
		})
	}
}

// TestServerSyncMDN: a good message is answered with a signed MDN carrying a
// Content-Length, which our own client accepts; the backend got the payload and the MIC.
func TestServerSyncMDN(t *testing.T) {
	t.Parallel()
	s := newStations(t)
	b, srv := newHandler(t, s, nil)
	msg := pack(t, s.inbound())
	rt := &recordingTransport{}
	c := &as2.Client{HTTP: &http.Client{Transport: rt}}
	resp, err := c.Send(context.Background(), srv.URL+"/as2", msg, &as2.SendOptions{Trusted: []*x509.Certificate{s.us.Certificate}})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if rc := resp.Receipt; rc.Signer == nil || !rc.Signer.Certificate.Equal(s.us.Certificate) || !rc.MDN.Positive() {
		t.Errorf("receipt %+v, want positive and signed by the station", rc)
	}
	if want := fmt.Sprintf("length %d", len(resp.Body)); len(rt.framed) != 1 || rt.framed[0] != want {
		t.Errorf("MDN framed as %v, want %s: libas2 cannot read a chunked MDN", rt.framed, want)
	}
	if got := resp.Header.Get(as2.HeaderAS2From); got != "STATION" {
		t.Errorf("MDN AS2-From %q", got)
	}
	calls := b.calls()
	if len(calls) != 1 {
		t.Fatalf("Receive called %d times", len(calls))
	}
	r := calls[0]
	if r.unpackErr != nil || len(r.payloads) != 1 || r.payloads[0] != payload || !r.mic.Equal(msg.MIC) {
		t.Errorf("Receive got payloads %q, MIC %v, error %v", r.payloads, r.mic, r.unpackErr)
	}
	if !bytes.Equal(r.wire, wire(t, msg)) || r.req.MessageID != msg.MessageID {
		t.Errorf("Receive got other wire bytes or Message-ID %q", r.req.MessageID)
	}
}

// TestServerBase64Chunked: QUIRK: libas2 posts chunked, in base64, with
// Content-Transfer-Encoding as an HTTP header; the message is read and its MDN still goes
// back with a Content-Length, which libas2 needs.
func TestServerBase64Chunked(t *testing.T) {
	t.Parallel()
	s := newStations(t)
	b, srv := newHandler(t, s, nil)
	msg := pack(t, s.inbound())
	enc := base64.StdEncoding.EncodeToString(wire(t, msg))
	var lines strings.Builder
	for len(enc) > 76 {
		lines.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	lines.WriteString(enc + "\r\n")
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/as2", io.MultiReader(strings.NewReader(lines.String())))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = msg.Header.Clone()
	req.Header.Set("Content-Transfer-Encoding", "base64")
	rt := &recordingTransport{}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || len(rt.framed) != 1 || rt.framed[0] != fmt.Sprintf("length %d", len(body)) {
		t.Fatalf("status %d framed %v; want 200 with a Content-Length", resp.StatusCode, rt.framed)
	}
	rc, err := as2.ReadReceipt(resp.Header, body, []*x509.Certificate{s.us.Certificate})
	if err != nil {
		t.Fatalf("ReadReceipt: %v", err)
	}
	if err := msg.Check(rc); err != nil {
		t.Errorf("Check: %v", err)
	}
	if calls := b.calls(); len(calls) != 1 || len(calls[0].payloads) != 1 || calls[0].payloads[0] != payload {
		t.Errorf("Receive got %+v", calls)
	}
}

// TestServerUndecryptable: a message the station cannot decrypt reaches Receive with the
// *as2.UnpackError, and the sender gets the negative MDN RFC 4130 §7.5.4 prescribes.
func TestServerUndecryptable(t *testing.T) {
	t.Parallel()
	s := newStations(t)
	b, srv := newHandler(t, s, nil)
	o := s.inbound()
	o.Recipients = []*x509.Certificate{cmstest.New(t, "station's retired certificate", nil).Certificate}
	msg := pack(t, o)
	resp, err := (&as2.Client{HTTP: srv.Client()}).Send(context.Background(), srv.URL+"/as2", msg,
		&as2.SendOptions{Trusted: []*x509.Certificate{s.us.Certificate}})
	var de *as2.DispositionError
	if !errors.As(err, &de) {
		t.Fatalf("Send: %v (%T), want *as2.DispositionError", err, err)
	}
	if got := de.Disposition.String(); got != "automatic-action/MDN-sent-automatically; processed/error: decryption-failed" {
		t.Errorf("disposition %q", got)
	}
	if resp.Receipt == nil || resp.Receipt.Signer == nil {
		t.Error("the negative MDN is not signed")
	}
	calls := b.calls()
	if len(calls) != 1 {
		t.Fatalf("Receive called %d times", len(calls))
	}
	var ue *as2.UnpackError
	if !errors.As(calls[0].unpackErr, &ue) || ue.Description != as2.DecryptionFailed {
		t.Errorf("Receive got %v, want an *as2.UnpackError %q", calls[0].unpackErr, as2.DecryptionFailed)
	}
	if !errors.Is(calls[0].unpackErr, cms.ErrNoRecipient) {
		t.Errorf("Receive got %v, want it to wrap cms.ErrNoRecipient", calls[0].unpackErr)
	}
}

// TestServerAsyncMDN: a message asking for an asynchronous MDN is answered with an empty
// 200; the MDN the backend sends later with SendMDN is read and matched by the sender.
func TestServerAsyncMDN(t *testing.T) {
	t.Parallel()
	s := newStations(t)
	b, srv := newHandler(t, s, nil)
	type post struct {
		header http.Header
		body   []byte
	}
	posts := make(chan post, 1)
	sender := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		posts <- post{r.Header.Clone(), body}
	}))
	t.Cleanup(sender.Close)

	o := s.inbound()
	o.MDN = as2.MDNRequest{Mode: as2.MDNAsync, Signed: true, URL: sender.URL + "/mdn"}
	msg := pack(t, o)
	rt := &recordingTransport{}
	resp, err := (&as2.Client{HTTP: &http.Client{Transport: rt}}).Send(context.Background(), srv.URL+"/as2", msg, nil)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if resp.StatusCode != http.StatusOK || resp.Receipt != nil || len(rt.framed) != 1 || rt.framed[0] != "length 0" {
		t.Fatalf("response %d framed %v with receipt %v, want an empty 200", resp.StatusCode, rt.framed, resp.Receipt)
	}
	if err := b.flush(context.Background(), &as2.Client{HTTP: sender.Client()}); err != nil {
		t.Fatalf("SendMDN: %v", err)
	}
	var p post
	select {
	case p = <-posts:
	default:
		t.Fatal("SendMDN returned but no MDN arrived")
	}
	rc, err := as2.ReadReceipt(p.header, p.body, []*x509.Certificate{s.us.Certificate})
	if err != nil {
		t.Fatalf("ReadReceipt: %v", err)
	}
	if err := msg.Check(rc); err != nil {
		t.Errorf("Check: %v", err)
	}
	if rc.Signer == nil || rc.MDN.OriginalMessageID != msg.MessageID {
		t.Errorf("receipt %+v", rc.MDN)
	}
}

// TestServerReceivesAsyncMDN: the asynchronous MDN a partner posts for one of our messages
// reaches Receive as in.MDN, its signature verified, and matches the message.
func TestServerReceivesAsyncMDN(t *testing.T) {
	t.Parallel()
	s := newStations(t)
	arrived := make(chan received, 1)
	b, srv := newHandler(t, s, func(b *testBackend) { b.arrived = arrived })

	// We, STATION, send to the partner and ask for the MDN at our Handler.
	o := &as2.PackOptions{
		From: "STATION", To: "PARTNER",
		Sign: as2.MICAlgSHA384, Certificate: s.us.Certificate, Key: s.us.Key,
		Encrypt: cms.AES128CBC, Recipients: []*x509.Certificate{s.them.Certificate},
		MDN: as2.MDNRequest{Mode: as2.MDNAsync, Signed: true, URL: srv.URL + "/as2"},
	}
	msg := pack(t, o)
	p := as2test.NewPartner(t, as2test.WithBehavior(as2test.AS2(s.partner())))
	resp, err := (&as2.Client{HTTP: p.Client()}).Send(context.Background(), p.URL, msg, nil)
	if err != nil || resp.Receipt != nil {
		t.Fatalf("Send: %v, receipt %v; want an empty 200", err, resp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var r received
	select {
	case r = <-arrived:
	case <-ctx.Done():
		t.Fatal("the asynchronous MDN did not reach Receive")
	}
	if r.unpackErr != nil || r.mdn == nil {
		t.Fatalf("Receive got MDN %v, error %v", r.mdn, r.unpackErr)
	}
	if r.signer == nil || !r.signer.Certificate.Equal(s.them.Certificate) {
		t.Errorf("the MDN's signature was not verified with the partner's certificate: %+v", r.signer)
	}
	if r.req.From != "PARTNER" || r.req.To != "STATION" || len(r.payloads) != 0 {
		t.Errorf("request from %q to %q with payloads %q", r.req.From, r.req.To, r.payloads)
	}
	if err := msg.Check(&as2.Receipt{MDN: r.mdn, Signer: r.signer}); err != nil {
		t.Errorf("Check: %v", err)
	}
	if n := len(b.calls()); n != 1 {
		t.Errorf("Receive called %d times, want once", n)
	}
	if reqs := p.Requests(); len(reqs) != 1 || reqs[0].AS2.Answer == nil || reqs[0].AS2.Answer.OriginalMessageID != msg.MessageID {
		t.Errorf("the partner did not record the MDN it sent")
	}
}
