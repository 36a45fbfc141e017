package as2_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/as2/as2test"
	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
)

// These tests send real messages with Pack and Client.Send to fake partners that misbehave
// the ways real ones do, and check the typed error each fact reaches the caller as: the
// gateway's failure classifier reads nothing else.

const payload = "ISA*00*          *00*          *ZZ*STATION        *ZZ*PARTNER        *240101*1200*U*00401*000000001*0*P*>~\r\nIEA*1*000000001~\r\n"

// stations are the two ends of an exchange: us, the sender, and them, the partner.
type stations struct {
	us, them *cmstest.Identity
}

func newStations(t testing.TB) stations {
	t.Helper()
	return stations{us: cmstest.New(t, "station", nil), them: cmstest.New(t, "partner", nil)}
}

// packOptions asks for what most AS2 agreements use: SHA-256 signature, AES-256-CBC,
// synchronous signed MDN.
func (s stations) packOptions() *as2.PackOptions {
	return &as2.PackOptions{
		From: "STATION", To: "PARTNER", Subject: "purchase order",
		Sign: as2.MICAlgSHA256, Certificate: s.us.Certificate, Key: s.us.Key,
		Encrypt: cms.AES256CBC, Recipients: []*x509.Certificate{s.them.Certificate},
		MDN: as2.MDNRequest{Mode: as2.MDNSync, Signed: true},
	}
}

// partner is the configuration of a correct partner that knows us.
func (s stations) partner() as2test.AS2Config {
	return as2test.AS2Config{
		ID: "PARTNER", Certificate: s.them.Certificate, Key: s.them.Key,
		Trusted: []*x509.Certificate{s.us.Certificate},
	}
}

// sendOptions trust the partner's MDN signing certificate.
func (s stations) sendOptions() *as2.SendOptions {
	return &as2.SendOptions{Trusted: []*x509.Certificate{s.them.Certificate}}
}

func pack(t testing.TB, opts *as2.PackOptions) *as2.Message {
	t.Helper()
	msg, err := as2.Pack([]as2.Payload{{Filename: "po.edi", ContentType: "application/edi-x12", Body: strings.NewReader(payload)}}, opts)
	if err != nil {
		t.Fatalf("Pack: %v", err)
	}
	t.Cleanup(func() { msg.Close() })
	return msg
}

func wire(t testing.TB, msg *as2.Message) []byte {
	t.Helper()
	b, err := io.ReadAll(msg.Body.Open())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestClientSendSuccess sends to a correct partner: the receipt is read, verified and
// matched, and the partner read what was sent.
func TestClientSendSuccess(t *testing.T) {
	t.Parallel()
	s := newStations(t)
	tests := []struct {
		name   string
		pack   func(*as2.PackOptions)
		config func(*as2test.AS2Config)
		// layers the partner must have found, outermost first
		layers []cms.ContentType
	}{
		{
			name:   "signed and encrypted, signed MDN",
			layers: []cms.ContentType{cms.TypeEnvelopedData, cms.TypeSignedData},
		},
		{
			name:   "signed MDN sent chunked",
			config: func(c *as2test.AS2Config) { c.Chunked = true },
			layers: []cms.ContentType{cms.TypeEnvelopedData, cms.TypeSignedData},
		},
		{
			name: "SHA-512 signature, compression before signing, AES-128-GCM",
			pack: func(o *as2.PackOptions) {
				o.Sign, o.Compression, o.Encrypt = as2.MICAlgSHA512, as2.CompressBeforeSign, cms.AES128GCM
			},
			layers: []cms.ContentType{cms.TypeAuthEnvelopedData, cms.TypeSignedData, cms.TypeCompressedData},
		},
		{
			name:   "unsigned, unencrypted message with an unsigned MDN",
			pack:   func(o *as2.PackOptions) { o.Sign, o.Encrypt, o.MDN.Signed = 0, 0, false },
			layers: []cms.ContentType{},
		},
		{
			name: "unsigned MDN without MIC when an unsigned MDN was asked for",
			pack: func(o *as2.PackOptions) { o.MDN.Signed = false },
			// QUIRK: OpenAS2's unsigned MDNs carry no Received-Content-MIC.
			config: func(c *as2test.AS2Config) { c.OmitMIC = true },
			layers: []cms.ContentType{cms.TypeEnvelopedData, cms.TypeSignedData},
		},
		{
			name: "processed with a warning is a success",
			config: func(c *as2test.AS2Config) {
				d := as2.ProcessedWithWarning(as2.DuplicateDocument)
				c.Disposition = &d
			},
			layers: []cms.ContentType{cms.TypeEnvelopedData, cms.TypeSignedData},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := s.packOptions()
			if tc.pack != nil {
				tc.pack(o)
			}
			msg := pack(t, o)
			cfg := s.partner()
			if tc.config != nil {
				tc.config(&cfg)
			}
			p := as2test.NewPartner(t, as2test.WithBehavior(as2test.AS2(cfg)))
			c := &as2.Client{HTTP: p.Client()}
			resp, err := c.Send(context.Background(), p.URL, msg, s.sendOptions())
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if resp.StatusCode != http.StatusOK || len(resp.Body) == 0 || resp.Receipt == nil {
				t.Fatalf("response %d with %d bytes, receipt %v; want 200 with a receipt", resp.StatusCode, len(resp.Body), resp.Receipt)
			}
			rc := resp.Receipt
			if o.MDN.Signed {
				if rc.Signer == nil || !rc.Signer.Certificate.Equal(s.them.Certificate) {
					t.Errorf("receipt signer %+v, want the partner's certificate", rc.Signer)
				}
			} else if rc.Signer != nil {
				t.Errorf("receipt signed by %v, want unsigned", rc.Signer.Certificate.Subject)
			}
			if rc.MDN.OriginalMessageID != msg.MessageID || rc.MDN.FinalRecipient != "PARTNER" || !rc.MDN.Disposition.Positive() {
				t.Errorf("receipt answers %q for %q with %v; want %q for PARTNER, positive",
					rc.MDN.OriginalMessageID, rc.MDN.FinalRecipient, rc.MDN.Disposition, msg.MessageID)
			}
			if mic := rc.MDN.ReceivedMIC; (mic == nil) != cfg.OmitMIC || mic != nil && !mic.Equal(msg.MIC) {
				t.Errorf("receipt MIC %v, want %v", mic, msg.MIC)
			}
			if o.MDN.Signed && !bytes.Contains(resp.Body, rc.Entity) {
				t.Errorf("the signed receipt's entity is not part of the response body")
			}

			reqs := p.Requests()
			if len(reqs) != 1 || reqs[0].AS2 == nil {
				t.Fatalf("partner recorded %d requests, want 1 read as AS2", len(reqs))
			}
			got := reqs[0].AS2
			if got.Err != nil {
				t.Fatalf("partner could not read the message: %v", got.Err)
			}
			if len(got.Attachments) != 1 || string(got.Attachments[0].Body) != payload ||
				got.Attachments[0].Filename != "po.edi" || got.Attachments[0].ContentType != "application/edi-x12" {
				t.Errorf("partner received %+v, want po.edi", got.Attachments)
			}
			var layers []cms.ContentType
			for _, l := range got.Layers {
				layers = append(layers, l.Type)
			}
			if len(layers) != len(tc.layers) {
				t.Fatalf("partner found layers %v, want %v", layers, tc.layers)
			}
			for i := range layers {
				if layers[i] != tc.layers[i] {
					t.Errorf("partner found layers %v, want %v", layers, tc.layers)
				}
			}
			if !got.MIC.Equal(msg.MIC) {
				t.Errorf("partner computed MIC %v, we expect %v", got.MIC, msg.MIC)
			}
			if !bytes.Equal(reqs[0].Body, wire(t, msg)) || reqs[0].Header.Get(as2.HeaderMessageID) != msg.MessageID {
				t.Errorf("partner received other bytes or another Message-ID than packed")
			}
		})
	}
}

// TestClientMICAlgorithmOffered: the receiver answers in the signature's digest (RFC 4130
// §7.4.3) whatever the sender offered for the receipt, and the sender also accepts a
// receipt in the first offered algorithm, as some products send it.
func TestClientMICAlgorithmOffered(t *testing.T) {
	t.Parallel()
	s := newStations(t)
	o := s.packOptions()
	o.MDN.MICAlgs = []as2.MICAlg{as2.MICAlgSHA384, as2.MICAlgSHA256}
	msg := pack(t, o)
	p := as2test.NewPartner(t, as2test.WithBehavior(as2test.AS2(s.partner())))
	resp, err := (&as2.Client{HTTP: p.Client()}).Send(context.Background(), p.URL, msg, s.sendOptions())
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if mic := resp.Receipt.MDN.ReceivedMIC; mic == nil || mic.Alg != o.Sign.Hash() {
		t.Errorf("receipt MIC %v, want one in the signature's digest %v", mic, o.Sign.Hash())
	}
	if msg.MIC.Alg != o.Sign.Hash() {
		t.Errorf("the message expects a MIC in %v, want the signature's %v", msg.MIC.Alg, o.Sign.Hash())
	}
	// QUIRK: a receiver that answers in the first offered algorithm is accepted too.
	offered := as2.MIC{Alg: as2.MICAlgSHA384.Hash()}
	for _, m := range msg.MICs {
		if m.Alg == offered.Alg {
			offered = m
		}
	}
	rc := *resp.Receipt
	mdn := *rc.MDN
	mdn.ReceivedMIC = &offered
	rc.MDN = &mdn
	if offered.Digest == nil {
		t.Error("the message has no MIC in the offered SHA-384")
	} else if err := msg.Check(&rc); err != nil {
		t.Errorf("a receipt with the MIC in the offered algorithm: %v", err)
	}
}

// TestClientSendHTTPError: every non-2xx answer is an *as2.HTTPError with its status,
// headers and body, and a redirect is reported, never followed.
func TestClientSendHTTPError(t *testing.T) {
	t.Parallel()
	s := newStations(t)
	// elsewhere is where a redirect points: it must see no request.
	elsewhere := as2test.NewPartner(t)
	tests := []struct {
		name     string
		behavior as2test.Behavior
		status   int
		check    func(t *testing.T, e *as2.HTTPError)
	}{
		{"301 moved", as2test.Respond(301, http.Header{"Location": {elsewhere.URL}}, nil), 301, func(t *testing.T, e *as2.HTTPError) {
			if e.Location != elsewhere.URL {
				t.Errorf("Location %q, want %q", e.Location, elsewhere.URL)
			}
		}},
		{"307 with a relative Location", as2test.Respond(307, http.Header{"Location": {"/as2-new"}}, nil), 307, func(t *testing.T, e *as2.HTTPError) {
			if !strings.HasPrefix(e.Location, "http://127.0.0.1:") || !strings.HasSuffix(e.Location, "/as2-new") {
				t.Errorf("Location %q, want it resolved against the partner URL", e.Location)
			}
		}},
		{"400", as2test.Respond(400, nil, []byte("missing AS2-To")), 400, func(t *testing.T, e *as2.HTTPError) {
			if string(e.Body) != "missing AS2-To" || !strings.Contains(e.Error(), "missing AS2-To") {
				t.Errorf("body %q, error %q; want the partner's text", e.Body, e.Error())
			}
		}},
		{"401", as2test.Respond(401, http.Header{"Www-Authenticate": {`Basic realm="as2"`}}, nil), 401, func(t *testing.T, e *as2.HTTPError) {
			if e.Header.Get("WWW-Authenticate") == "" {
				t.Error("WWW-Authenticate lost")
			}
		}},
		{"403", as2test.Respond(403, nil, []byte("unknown AS2-From")), 403, nil},
		{"404", as2test.Respond(404, nil, nil), 404, nil},
		{"413", as2test.Respond(413, nil, nil), 413, nil},
		{"422", as2test.Respond(422, nil, nil), 422, nil},
		{"429 with Retry-After", as2test.Respond(429, http.Header{"Retry-After": {"120"}}, nil), 429, func(t *testing.T, e *as2.HTTPError) {
			if d, ok := e.RetryAfter(time.Now()); !ok || d != 2*time.Minute {
				t.Errorf("RetryAfter %v %v, want 2m", d, ok)
			}
		}},
		{"500", as2test.Respond(500, nil, []byte("java.lang.NullPointerException")), 500, nil},
		{"500 carrying a positive MDN", as2test.AS2(func() as2test.AS2Config {
			c := s.partner()
			c.Status = 500
			return c
		}()), 500, func(t *testing.T, e *as2.HTTPError) {
			if !bytes.Contains(e.Body, []byte("multipart/report")) {
				t.Errorf("body %q, want the MDN kept for the archive", e.Body)
			}
		}},
		{"502", as2test.Respond(502, nil, nil), 502, nil},
		{"503 with Retry-After", as2test.Respond(503, http.Header{"Retry-After": {"3600"}}, nil), 503, func(t *testing.T, e *as2.HTTPError) {
			if d, ok := e.RetryAfter(time.Now()); !ok || d != time.Hour {
				t.Errorf("RetryAfter %v %v, want 1h", d, ok)
			}
		}},
		{"504", as2test.Respond(504, nil, nil), 504, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg := pack(t, s.packOptions())
			p := as2test.NewPartner(t, as2test.WithBehavior(tc.behavior))
			// A stock client that follows redirects: Send must not.
			c := &as2.Client{HTTP: &http.Client{Transport: p.Client().Transport}}
			resp, err := c.Send(context.Background(), p.URL, msg, s.sendOptions())
			var he *as2.HTTPError
			if !errors.As(err, &he) {
				t.Fatalf("Send: %v (%T), want *as2.HTTPError", err, err)
			}
			if he.StatusCode != tc.status || resp == nil || resp.StatusCode != tc.status {
				t.Errorf("status %d (response %v), want %d", he.StatusCode, resp, tc.status)
			}
			if resp != nil && resp.Receipt != nil {
				t.Error("a receipt was read from an error response")
			}
			if tc.check != nil {
				tc.check(t, he)
			}
			if n := len(p.Requests()); n != 1 {
				t.Errorf("partner saw %d requests, want 1", n)
			}
		})
	}
	t.Cleanup(func() {
		if n := len(elsewhere.Requests()); n != 0 {
			t.Errorf("the redirect target got %d requests: a redirect was followed", n)
		}
	})
}

// TestClientSendTransportError: failures below HTTP are *as2.TransportError, wrapping the
// net, tls or x509 error, with Sent telling whether the partner may hold the message.
func TestClientSendTransportError(t *testing.T) {
	t.Parallel()
	s := newStations(t)
	tests := []struct {
		name string
		// client returns the client and URL to send with.
		client func(t *testing.T) (*http.Client, string)
		big    bool // a message far larger than the socket buffers
		sent   bool
		op     string
		check  func(t *testing.T, err error)
	}{
		{
			name: "connection refused",
			client: func(t *testing.T) (*http.Client, string) {
				return &http.Client{Transport: &http.Transport{}}, as2test.RefusedURL(t)
			},
			op: "connect",
			check: func(t *testing.T, err error) {
				if !errors.Is(err, syscall.ECONNREFUSED) {
					t.Errorf("%v does not wrap ECONNREFUSED", err)
				}
			},
		},
		{
			name: "TLS certificate from an unknown authority",
			client: func(t *testing.T) (*http.Client, string) {
				p := as2test.NewPartner(t, as2test.WithTLS(), as2test.WithBehavior(as2test.AS2(s.partner())))
				// The system roots do not know the partner's self-signed certificate.
				return &http.Client{Transport: &http.Transport{}}, p.URL
			},
			op: "tls handshake",
			check: func(t *testing.T, err error) {
				var ua x509.UnknownAuthorityError
				if !errors.As(err, &ua) {
					t.Errorf("%v does not wrap an x509.UnknownAuthorityError", err)
				}
			},
		},
		{
			name: "TLS certificate for another host",
			client: func(t *testing.T) (*http.Client, string) {
				p := as2test.NewPartner(t, as2test.WithTLSFor("as2.partner.example"), as2test.WithBehavior(as2test.AS2(s.partner())))
				return p.Client(), p.URL
			},
			op: "tls handshake",
			check: func(t *testing.T, err error) {
				var he x509.HostnameError
				if !errors.As(err, &he) {
					t.Errorf("%v does not wrap an x509.HostnameError", err)
				}
			},
		},
		{
			name: "reset after the whole body was read",
			client: func(t *testing.T) (*http.Client, string) {
				p := as2test.NewPartner(t, as2test.WithBehavior(as2test.ResetMidBody(1<<30)))
				return p.Client(), p.URL
			},
			sent: true,
			op:   "read response",
			check: func(t *testing.T, err error) {
				if !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("%v does not wrap ECONNRESET", err)
				}
			},
		},
		{
			name: "reset while the message is still being written",
			client: func(t *testing.T) (*http.Client, string) {
				p := as2test.NewPartner(t, as2test.WithBehavior(as2test.ResetMidBody(100)))
				return p.Client(), p.URL
			},
			big: true,
			check: func(t *testing.T, err error) {
				if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, net.ErrClosed) {
					t.Errorf("%v wraps none of ECONNRESET, EPIPE, net.ErrClosed", err)
				}
			},
		},
		{
			name: "closed after the body without an answer",
			client: func(t *testing.T) (*http.Client, string) {
				p := as2test.NewPartner(t, as2test.WithBehavior(as2test.CloseAfterBody()))
				return p.Client(), p.URL
			},
			sent: true,
			op:   "read response",
			check: func(t *testing.T, err error) {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("%v is not an end of file", err)
				}
			},
		},
		{
			name: "no answer within the client's timeout",
			client: func(t *testing.T) (*http.Client, string) {
				p := as2test.NewPartner(t, as2test.WithBehavior(as2test.Stall()))
				c := p.Client()
				c.Timeout = 300 * time.Millisecond // the timeout is what is tested
				return c, p.URL
			},
			sent: true,
			op:   "read response",
			check: func(t *testing.T, err error) {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					t.Errorf("%v is not a timeout", err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var msg *as2.Message
			if tc.big {
				o := s.packOptions()
				o.Sign, o.Encrypt = 0, 0 // the size matters here, not the protection
				m, err := as2.Pack([]as2.Payload{{Body: bytes.NewReader(make([]byte, 32<<20))}}, o)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { m.Close() })
				msg = m
			} else {
				msg = pack(t, s.packOptions())
			}
			hc, url := tc.client(t)
			resp, err := (&as2.Client{HTTP: hc}).Send(context.Background(), url, msg, s.sendOptions())
			var te *as2.TransportError
			if !errors.As(err, &te) {
				t.Fatalf("Send: %v (%T), want *as2.TransportError", err, err)
			}
			if resp != nil {
				t.Errorf("a response %+v came with a transport error", resp)
			}
			if te.Sent != tc.sent {
				t.Errorf("Sent %v, want %v: %v", te.Sent, tc.sent, err)
			}
			if tc.op != "" && te.Op != tc.op {
				t.Errorf("Op %q, want %q", te.Op, tc.op)
			}
			tc.check(t, err)
		})
	}
}

// TestClientSendMDNFailures: a partner that answers with a bad, negative or mismatched MDN
// never makes Send succeed, and each fault has its own error.
func TestClientSendMDNFailures(t *testing.T) {
	t.Parallel()
	s := newStations(t)
	retired := cmstest.New(t, "partner's retired certificate", nil)
	as2With := func(f func(c *as2test.AS2Config)) as2test.Behavior {
		c := s.partner()
		f(&c)
		return as2test.AS2(c)
	}
	negative := func(d as2.Disposition) as2test.Behavior {
		return as2With(func(c *as2test.AS2Config) { c.Disposition = &d })
	}
	dispositionError := func(typ, modifier, desc string) func(t *testing.T, err error, msg *as2.Message) {
		return func(t *testing.T, err error, msg *as2.Message) {
			var de *as2.DispositionError
			if !errors.As(err, &de) {
				t.Fatalf("got %v (%T), want *as2.DispositionError", err, err)
			}
			d := de.Disposition
			if d.Type != typ || d.Modifier != modifier || d.Description != desc || d.Positive() {
				t.Errorf("disposition %+v, want %s/%s: %s", d, typ, modifier, desc)
			}
			if de.MDN == nil || de.MDN.OriginalMessageID != msg.MessageID {
				t.Errorf("the error does not carry the MDN answering %s", msg.MessageID)
			}
		}
	}
	mdnError := func(t *testing.T, err error, _ *as2.Message) {
		var me *as2.MDNError
		if !errors.As(err, &me) {
			t.Fatalf("got %v (%T), want *as2.MDNError", err, err)
		}
	}
	tests := []struct {
		name     string
		pack     func(*as2.PackOptions)
		behavior as2test.Behavior
		signed   bool // the response body carries a signed receipt that was read
		check    func(t *testing.T, err error, msg *as2.Message)
	}{
		{
			name:     "200 without the synchronous MDN",
			behavior: as2test.Respond(200, nil, nil),
			check: func(t *testing.T, err error, _ *as2.Message) {
				if !errors.Is(err, as2.ErrMDNMissing) {
					t.Fatalf("got %v, want as2.ErrMDNMissing", err)
				}
			},
		},
		{
			name:     "garbled MDN",
			behavior: as2With(func(c *as2test.AS2Config) { c.GarbledMDN = true }),
			check:    mdnError,
		},
		{
			name: "garbled MDN labelled multipart/report",
			behavior: as2With(func(c *as2test.AS2Config) {
				c.GarbledMDN, c.MDNContentType = true, "multipart/report; report-type=disposition-notification; boundary=x"
			}),
			check: mdnError,
		},
		{
			name:     "a signed MDN labelled application/octet-stream",
			behavior: as2With(func(c *as2test.AS2Config) { c.MDNContentType = "application/octet-stream" }),
			check:    mdnError,
		},
		{
			name:     "MDN for another message",
			behavior: as2With(func(c *as2test.AS2Config) { c.MessageIDOverride = "<another@partner>" }),
			signed:   true,
			check: func(t *testing.T, err error, msg *as2.Message) {
				mdnError(t, err, msg)
				if !strings.Contains(err.Error(), "<another@partner>") {
					t.Errorf("%q does not name the message the MDN answers", err)
				}
			},
		},
		{
			name:     "unsigned MDN where a signed one was asked for",
			behavior: as2With(func(c *as2test.AS2Config) { c.UnsignedMDN = true }),
			check: func(t *testing.T, err error, _ *as2.Message) {
				var se *as2.SignatureError
				if !errors.As(err, &se) || !errors.Is(err, as2.ErrMDNUnsigned) {
					t.Fatalf("got %v (%T), want *as2.SignatureError wrapping ErrMDNUnsigned", err, err)
				}
			},
		},
		{
			name:     "MDN whose signature does not verify",
			behavior: as2With(func(c *as2test.AS2Config) { c.TamperSignature = true }),
			check: func(t *testing.T, err error, _ *as2.Message) {
				var se *as2.SignatureError
				var ve *cms.VerifyError
				if !errors.As(err, &se) || !errors.As(err, &ve) {
					t.Fatalf("got %v (%T), want *as2.SignatureError wrapping *cms.VerifyError", err, err)
				}
				if ve.Reason != cms.ReasonDigestMismatch {
					t.Errorf("reason %q, want %q", ve.Reason, cms.ReasonDigestMismatch)
				}
			},
		},
		{
			name: "MDN signed by a certificate we do not trust",
			behavior: as2With(func(c *as2test.AS2Config) {
				// A key of another size: the test identities of one size share a few keys.
				other := cmstest.New(t, "impostor", &cmstest.Options{Bits: 1024})
				c.Certificate, c.Key = other.Certificate, other.Key
				// The impostor cannot decrypt: it answers a negative MDN, signed.
				d := as2.Processed()
				c.Disposition = &d
			}),
			check: func(t *testing.T, err error, _ *as2.Message) {
				var ve *cms.VerifyError
				var ue *cms.UntrustedSignerError
				if !errors.As(err, new(*as2.SignatureError)) || !errors.As(err, &ve) || !errors.As(err, &ue) {
					t.Fatalf("got %v (%T), want *as2.SignatureError wrapping *cms.UntrustedSignerError", err, err)
				}
				if ue.Certificate == nil || ue.Certificate.Subject.CommonName != "impostor" {
					t.Errorf("untrusted signer %v, want the impostor's certificate", ue)
				}
			},
		},
		{name: "decryption-failed", behavior: negative(as2.ProcessedWithError(as2.DecryptionFailed)), signed: true, check: dispositionError("processed", "error", "decryption-failed")},
		{name: "authentication-failed", behavior: negative(as2.ProcessedWithError(as2.AuthenticationFailed)), signed: true, check: dispositionError("processed", "error", "authentication-failed")},
		{name: "integrity-check-failed", behavior: negative(as2.ProcessedWithError(as2.IntegrityCheckFailed)), signed: true, check: dispositionError("processed", "error", "integrity-check-failed")},
		{name: "insufficient-message-security", behavior: negative(as2.ProcessedWithError(as2.InsufficientMessageSecurity)), signed: true, check: dispositionError("processed", "error", "insufficient-message-security")},
		{name: "unexpected-processing-error", behavior: negative(as2.ProcessedWithError(as2.UnexpectedProcessingError)), signed: true, check: dispositionError("processed", "error", "unexpected-processing-error")},
		{name: "decompression-failed", behavior: negative(as2.ProcessedWithError(as2.DecompressionFailed)), signed: true, check: dispositionError("processed", "error", "decompression-failed")},
		{name: "failed/failure: unsupported MIC-algorithms", behavior: negative(as2.Failed(as2.UnsupportedMICAlgorithms)), signed: true, check: dispositionError("failed", "failure", "unsupported MIC-algorithms")},
		{
			name: "partner that cannot decrypt answers decryption-failed by itself",
			// The message is encrypted for a certificate the partner no longer has.
			pack: func(o *as2.PackOptions) {
				o.Recipients = []*x509.Certificate{retired.Certificate}
			},
			behavior: as2test.AS2(s.partner()),
			signed:   true,
			check:    dispositionError("processed", "error", "decryption-failed"),
		},
		{
			name:     "wrong MIC",
			behavior: as2With(func(c *as2test.AS2Config) { c.WrongMIC = true }),
			signed:   true,
			check: func(t *testing.T, err error, msg *as2.Message) {
				var me *as2.MICMismatchError
				if !errors.As(err, &me) {
					t.Fatalf("got %v (%T), want *as2.MICMismatchError", err, err)
				}
				if !me.Want.Equal(msg.MIC) || me.Got.Digest == nil || me.Got.Equal(msg.MIC) {
					t.Errorf("want %v got %v; want the message's MIC and another one", me.Want, me.Got)
				}
			},
		},
		{
			name:     "no MIC in a signed MDN",
			behavior: as2With(func(c *as2test.AS2Config) { c.OmitMIC = true }),
			signed:   true,
			check: func(t *testing.T, err error, msg *as2.Message) {
				var me *as2.MICMismatchError
				if !errors.As(err, &me) {
					t.Fatalf("got %v (%T), want *as2.MICMismatchError", err, err)
				}
				if !me.Want.Equal(msg.MIC) || me.Got.Digest != nil {
					t.Errorf("want %v got %v; want the message's MIC and none", me.Want, me.Got)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := s.packOptions()
			if tc.pack != nil {
				tc.pack(o)
			}
			msg := pack(t, o)
			p := as2test.NewPartner(t, as2test.WithBehavior(tc.behavior))
			resp, err := (&as2.Client{HTTP: p.Client()}).Send(context.Background(), p.URL, msg, s.sendOptions())
			if err == nil {
				t.Fatalf("Send succeeded with receipt %+v", resp.Receipt.MDN)
			}
			tc.check(t, err, msg)
			// The partner answered: what it sent is kept for the archive.
			if resp == nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("response %+v, want the 200 that came back", resp)
			}
			if tc.signed && (resp.Receipt == nil || resp.Receipt.Signer == nil) {
				t.Errorf("receipt %+v, want the verified receipt along with the error", resp.Receipt)
			}
		})
	}
}

// TestClientRetrySendsIdenticalBytes: a Message sent again after a failure goes out byte
// for byte the same, under the same Message-ID, so that the partner can tell a duplicate.
func TestClientRetrySendsIdenticalBytes(t *testing.T) {
	t.Parallel()
	s := newStations(t)
	msg := pack(t, s.packOptions())
	p := as2test.NewPartner(t, as2test.WithBehavior(as2test.Sequence(
		as2test.Respond(http.StatusServiceUnavailable, http.Header{"Retry-After": {"1"}}, nil),
		as2test.CloseAfterBody(),
		as2test.AS2(s.partner()),
	)))
	c := &as2.Client{HTTP: p.Client()}
	var he *as2.HTTPError
	if _, err := c.Send(context.Background(), p.URL, msg, s.sendOptions()); !errors.As(err, &he) {
		t.Fatalf("first attempt: %v, want a 503", err)
	}
	var te *as2.TransportError
	if _, err := c.Send(context.Background(), p.URL, msg, s.sendOptions()); !errors.As(err, &te) || !te.Sent {
		t.Fatalf("second attempt: %v, want a connection closed after the message was sent", err)
	}
	if _, err := c.Send(context.Background(), p.URL, msg, s.sendOptions()); err != nil {
		t.Fatalf("third attempt: %v", err)
	}
	reqs := p.Requests()
	if len(reqs) != 3 {
		t.Fatalf("partner saw %d requests, want 3", len(reqs))
	}
	want := wire(t, msg)
	for i, r := range reqs {
		if !bytes.Equal(r.Body, want) {
			t.Errorf("attempt %d sent %d other bytes, want the packed %d", i+1, len(r.Body), len(want))
		}
		if id := r.Header.Get(as2.HeaderMessageID); id != msg.MessageID {
			t.Errorf("attempt %d Message-ID %q, want %q", i+1, id, msg.MessageID)
		}
		if r.ContentLength != int64(len(want)) {
			t.Errorf("attempt %d Content-Length %d, want %d", i+1, r.ContentLength, len(want))
		}
	}
}

// TestClientAsyncMDN: with an asynchronous MDN requested, Send returns at the empty 200 and
// the partner's receipt, posted later, is read with ReadReceipt and matched with Check.
func TestClientAsyncMDN(t *testing.T) {
	t.Parallel()
	s := newStations(t)
	type post struct {
		header http.Header
		body   []byte
	}
	arrived := make(chan post, 1)
	mdnURL := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		arrived <- post{r.Header.Clone(), b}
	}))
	t.Cleanup(mdnURL.Close)

	o := s.packOptions()
	o.MDN = as2.MDNRequest{Mode: as2.MDNAsync, Signed: true, URL: mdnURL.URL + "/mdn"}
	msg := pack(t, o)
	p := as2test.NewPartner(t, as2test.WithBehavior(as2test.AS2(s.partner())))
	resp, err := (&as2.Client{HTTP: p.Client()}).Send(context.Background(), p.URL, msg, s.sendOptions())
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if resp.StatusCode != http.StatusOK || resp.Receipt != nil || resp.Body != nil {
		t.Fatalf("response %+v, want an empty 200", resp)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got post
	select {
	case got = <-arrived:
	case <-ctx.Done():
		t.Fatal("no asynchronous MDN arrived")
	}
	if got.header.Get(as2.HeaderAS2From) != "PARTNER" || got.header.Get(as2.HeaderAS2To) != "STATION" {
		t.Errorf("MDN from %q to %q", got.header.Get(as2.HeaderAS2From), got.header.Get(as2.HeaderAS2To))
	}
	rc, err := as2.ReadReceipt(got.header, got.body, []*x509.Certificate{s.them.Certificate})
	if err != nil {
		t.Fatalf("ReadReceipt: %v", err)
	}
	if err := msg.Check(rc); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// TestClientMDNBodyFailures: the synchronous MDN body itself can fail to arrive whole, or be
// larger than the client accepts.
func TestClientMDNBodyFailures(t *testing.T) {
	t.Parallel()
	s := newStations(t)
	tests := []struct {
		name     string
		behavior as2test.Behavior
		maxMDN   int64
		check    func(t *testing.T, err error)
	}{
		{
			name: "connection closed in the middle of the MDN",
			behavior: as2test.Handler(func(w http.ResponseWriter, r *http.Request, body []byte) {
				w.Header().Set("Content-Type", "multipart/report; report-type=disposition-notification; boundary=b")
				w.Header().Set("Content-Length", "1000")
				// Shorter than announced: net/http closes the connection after it.
				io.WriteString(w, "--b\r\nContent-Type: text/plain\r\n\r\n")
			}),
			check: func(t *testing.T, err error) {
				var te *as2.TransportError
				if !errors.As(err, &te) || !te.Sent || te.Op != "read MDN" || !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Errorf("got %v, want *as2.TransportError reading the MDN, sent, unexpected EOF", err)
				}
			},
		},
		{
			name:     "MDN larger than the client accepts",
			behavior: as2test.AS2(s.partner()),
			maxMDN:   512,
			check: func(t *testing.T, err error) {
				var me *as2.MDNError
				if !errors.As(err, &me) || !strings.Contains(err.Error(), "512") {
					t.Errorf("got %v, want *as2.MDNError naming the limit", err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg := pack(t, s.packOptions())
			p := as2test.NewPartner(t, as2test.WithBehavior(tc.behavior))
			resp, err := (&as2.Client{HTTP: p.Client(), MaxMDNSize: tc.maxMDN}).Send(context.Background(), p.URL, msg, s.sendOptions())
			if err == nil {
				t.Fatal("Send succeeded")
			}
			tc.check(t, err)
			if resp == nil || resp.StatusCode != http.StatusOK || resp.Receipt != nil {
				t.Errorf("response %+v, want the 200 without a receipt", resp)
			}
		})
	}
}
