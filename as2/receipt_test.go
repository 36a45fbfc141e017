package as2_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/as2/as2test"
	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
)

// mdnFor encodes the MDN a partner answers msg with, signed with signer when not nil.
func mdnFor(t testing.TB, msg *as2.Message, d as2.Disposition, signer *cmstest.Identity) (http.Header, []byte) {
	t.Helper()
	return editedMDNFor(t, msg, d, signer, nil)
}

// editedMDNFor is mdnFor with the MDN changed by edit before it is encoded.
func editedMDNFor(t testing.TB, msg *as2.Message, d as2.Disposition, signer *cmstest.Identity, edit func(*as2.MDN)) (http.Header, []byte) {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, "http://partner.example/as2", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header = msg.Header.Clone()
	req, err := as2.ParseRequest(r)
	if err != nil {
		t.Fatal(err)
	}
	mic := msg.MIC
	m := as2.NewMDN(req, nil, d, "partner product 1.0")
	m.ReceivedMIC = &mic
	if edit != nil {
		edit(m)
	}
	var s *as2.MDNSigner
	if signer != nil {
		s = &as2.MDNSigner{Certificate: signer.Certificate, Key: signer.Key}
	}
	h, body, err := as2.EncodeMDN(m, req, s, "PARTNER")
	if err != nil {
		t.Fatal(err)
	}
	return h, body
}

// TestReceiptRead: ReadReceipt reads the MDN in the forms partners send it and verifies a
// signed one; what is not a readable MDN is an *as2.MDNError, a signature that does not
// verify an *as2.SignatureError.
func TestReceiptRead(t *testing.T) {
	t.Parallel()
	s := newStations(t)
	stranger := cmstest.New(t, "stranger", &cmstest.Options{Bits: 1024}) // a key no one else has
	msg := pack(t, s.packOptions())
	unsignedOpts := s.packOptions()
	unsignedOpts.MDN.Signed = false
	unsignedMsg := pack(t, unsignedOpts)
	signedH, signedBody := mdnFor(t, msg, as2.Processed(), s.them)
	plainH, plainBody := mdnFor(t, unsignedMsg, as2.Processed(), nil)
	negH, negBody := mdnFor(t, msg, as2.ProcessedWithError(as2.DecryptionFailed), s.them)
	strangerH, strangerBody := mdnFor(t, msg, as2.Processed(), stranger)

	// QUIRK: libas2 sends the body in base64 with Content-Transfer-Encoding as an HTTP header.
	b64H := plainH.Clone()
	b64H.Set("Content-Transfer-Encoding", "base64")
	b64Body := []byte(base64.StdEncoding.EncodeToString(plainBody))

	// A bare message/disposition-notification, without the multipart/report around it.
	bareBody := []byte("Reporting-UA: partner\r\nFinal-Recipient: rfc822; PARTNER\r\nOriginal-Message-ID: " +
		unsignedMsg.MessageID + "\r\nDisposition: automatic-action/MDN-sent-automatically; processed\r\n")
	bareH := http.Header{"Content-Type": {"message/disposition-notification"}}

	// A partner that answers with a signed message of its own rather than an MDN.
	notMDN := pack(t, &as2.PackOptions{From: "PARTNER", To: "STATION", Sign: as2.MICAlgSHA256, Certificate: s.them.Certificate, Key: s.them.Key})
	notMDNBody := wire(t, notMDN)

	// "processed", yet with an Error field (RFC 3798 §3.2.8): not a success.
	errFieldH, errFieldBody := editedMDNFor(t, msg, as2.Processed(), s.them, func(m *as2.MDN) {
		m.Errors = []string{"the payload could not be stored"}
	})
	// A signed receipt whose MIC cannot be read cannot vouch for the message.
	badMICH, badMICBody := editedMDNFor(t, msg, as2.Processed(), s.them, func(m *as2.MDN) {
		m.ReceivedMIC = nil
		m.Extensions = []as2.Field{{Name: "Received-Content-MIC", Value: "not base64!, sha-256"}}
	})

	tampered := bytes.Replace(signedBody, []byte("processed"), []byte("Processed"), 1)

	trusted := []*x509.Certificate{s.them.Certificate}
	tests := []struct {
		name    string
		header  http.Header
		body    []byte
		trusted []*x509.Certificate
		msg     *as2.Message
		signed  bool
		check   func(t *testing.T, err error) // nil: read and matching msg
	}{
		{name: "signed", header: signedH, body: signedBody, trusted: trusted, msg: msg, signed: true},
		{name: "unsigned", header: plainH, body: plainBody, msg: unsignedMsg},
		{name: "unsigned in base64", header: b64H, body: b64Body, msg: unsignedMsg},
		{name: "bare disposition-notification", header: bareH, body: bareBody, msg: unsignedMsg},
		{name: "negative, signed", header: negH, body: negBody, trusted: trusted, msg: msg, signed: true,
			check: func(t *testing.T, err error) {
				var de *as2.DispositionError
				if !errors.As(err, &de) || de.Disposition.Description != as2.DecryptionFailed {
					t.Errorf("Check: %v, want a *as2.DispositionError %q", err, as2.DecryptionFailed)
				}
			}},
		{name: "processed with an Error field", header: errFieldH, body: errFieldBody, trusted: trusted, msg: msg, signed: true,
			check: func(t *testing.T, err error) {
				var de *as2.DispositionError
				if !errors.As(err, &de) || !strings.Contains(err.Error(), "Error: the payload could not be stored") {
					t.Errorf("Check: %v, want a *as2.DispositionError naming the Error field", err)
				}
			}},
		{name: "signed with an unreadable MIC", header: badMICH, body: badMICBody, trusted: trusted, msg: msg, signed: true,
			check: func(t *testing.T, err error) {
				var me *as2.MDNError
				if !errors.As(err, &me) || !strings.Contains(err.Error(), "Received-Content-MIC") {
					t.Errorf("Check: %v, want a *as2.MDNError about the MIC", err)
				}
			}},
		{name: "signed by a stranger", header: strangerH, body: strangerBody, trusted: trusted,
			check: func(t *testing.T, err error) {
				var ve *cms.VerifyError
				if !errors.As(err, new(*as2.SignatureError)) || !errors.As(err, &ve) || ve.Reason != cms.ReasonUntrusted {
					t.Errorf("got %v, want *as2.SignatureError wrapping an untrusted signer", err)
				}
			}},
		{name: "signed, nobody trusted", header: signedH, body: signedBody,
			check: func(t *testing.T, err error) {
				if !errors.As(err, new(*as2.SignatureError)) {
					t.Errorf("got %v (%T), want *as2.SignatureError: a signature checked against nothing is not verified", err, err)
				}
			}},
		{name: "signed, changed after signing", header: signedH, body: tampered, trusted: trusted,
			check: func(t *testing.T, err error) {
				var ve *cms.VerifyError
				if !errors.As(err, new(*as2.SignatureError)) || !errors.As(err, &ve) || ve.Reason != cms.ReasonDigestMismatch {
					t.Errorf("got %v, want *as2.SignatureError wrapping a digest mismatch", err)
				}
			}},
		{name: "a signed message, not an MDN", header: notMDN.Header, body: notMDNBody, trusted: trusted,
			check: func(t *testing.T, err error) {
				if !errors.As(err, new(*as2.MDNError)) || !strings.Contains(err.Error(), "not an MDN") {
					t.Errorf("got %v (%T), want *as2.MDNError", err, err)
				}
			}},
		{name: "HTML", header: http.Header{"Content-Type": {"text/html"}}, body: []byte("<html>OK</html>"),
			check: func(t *testing.T, err error) {
				if !errors.As(err, new(*as2.MDNError)) {
					t.Errorf("got %v (%T), want *as2.MDNError", err, err)
				}
			}},
		{name: "no Content-Type", header: http.Header{}, body: plainBody,
			check: func(t *testing.T, err error) {
				if !errors.As(err, new(*as2.MDNError)) {
					t.Errorf("got %v (%T), want *as2.MDNError", err, err)
				}
			}},
		{name: "multipart/report without its close delimiter", header: plainH, body: plainBody[:len(plainBody)-20],
			check: func(t *testing.T, err error) {
				if !errors.As(err, new(*as2.MDNError)) {
					t.Errorf("got %v (%T), want *as2.MDNError", err, err)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc, err := as2.ReadReceipt(tc.header, tc.body, tc.trusted)
			if tc.msg == nil {
				if rc != nil {
					t.Errorf("a receipt %+v along with the error", rc.MDN)
				}
				tc.check(t, err)
				return
			}
			if err != nil {
				t.Fatalf("ReadReceipt: %v", err)
			}
			if (rc.Signer != nil) != tc.signed || tc.signed && !rc.Signer.Certificate.Equal(s.them.Certificate) {
				t.Errorf("signer %+v, want signed %v by the partner", rc.Signer, tc.signed)
			}
			if rc.MDN.OriginalMessageID != tc.msg.MessageID || len(rc.Entity) == 0 {
				t.Errorf("receipt for %q with an entity of %d bytes", rc.MDN.OriginalMessageID, len(rc.Entity))
			}
			err = tc.msg.Check(rc)
			if tc.check != nil {
				tc.check(t, err)
			} else if err != nil {
				t.Errorf("Check: %v", err)
			}
		})
	}
}

// TestReceiptSendMDN: SendMDN posts the MDN as it is, and reports the partner's answer like
// Send does, without following redirects.
func TestReceiptSendMDN(t *testing.T) {
	t.Parallel()
	s := newStations(t)
	msg := pack(t, s.packOptions())
	h, body := mdnFor(t, msg, as2.Processed(), s.them)
	tests := []struct {
		name     string
		behavior as2test.Behavior
		refused  bool
		check    func(t *testing.T, err error)
	}{
		{name: "accepted", behavior: as2test.Respond(http.StatusOK, nil, nil)},
		{name: "accepted with 204", behavior: as2test.Respond(http.StatusNoContent, nil, nil)},
		{name: "unavailable", behavior: as2test.Respond(http.StatusServiceUnavailable, http.Header{"Retry-After": {"60"}}, nil),
			check: func(t *testing.T, err error) {
				var he *as2.HTTPError
				if !errors.As(err, &he) || he.StatusCode != http.StatusServiceUnavailable || he.Header.Get("Retry-After") != "60" {
					t.Errorf("got %v, want *as2.HTTPError 503 with Retry-After", err)
				}
			}},
		{name: "redirected", behavior: as2test.Respond(http.StatusFound, http.Header{"Location": {"http://127.0.0.1:1/elsewhere"}}, nil),
			check: func(t *testing.T, err error) {
				var he *as2.HTTPError
				if !errors.As(err, &he) || he.StatusCode != http.StatusFound || he.Location != "http://127.0.0.1:1/elsewhere" {
					t.Errorf("got %v, want *as2.HTTPError 302 with its Location", err)
				}
			}},
		{name: "refused", refused: true,
			check: func(t *testing.T, err error) {
				var te *as2.TransportError
				if !errors.As(err, &te) || te.Sent {
					t.Errorf("got %v, want *as2.TransportError not sent", err)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var url string
			var p *as2test.Partner
			hc := &http.Client{Transport: &http.Transport{}}
			if tc.refused {
				url = as2test.RefusedURL(t)
			} else {
				p = as2test.NewPartner(t, as2test.WithBehavior(tc.behavior))
				url = p.URL
				// A stock client that follows redirects: SendMDN must not.
				hc = &http.Client{Transport: p.Client().Transport}
			}
			err := (&as2.Client{HTTP: hc}).SendMDN(context.Background(), url, h, body)
			if tc.check != nil {
				tc.check(t, err)
			} else if err != nil {
				t.Errorf("SendMDN: %v", err)
			}
			if p == nil {
				return
			}
			reqs := p.Requests()
			if len(reqs) != 1 {
				t.Fatalf("partner saw %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if !bytes.Equal(r.Body, body) || r.ContentLength != int64(len(body)) {
				t.Errorf("partner received %d bytes (Content-Length %d), want the %d of the MDN", len(r.Body), r.ContentLength, len(body))
			}
			for _, name := range []string{"Content-Type", "AS2-From", "AS2-To", "Message-Id"} {
				if r.Header.Get(name) != h.Get(name) {
					t.Errorf("%s %q, want %q", name, r.Header.Get(name), h.Get(name))
				}
			}
		})
	}
}
