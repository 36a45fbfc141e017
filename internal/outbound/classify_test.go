package outbound

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/as2gate/as2gate/internal/netpolicy"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/as2/as2test"
	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
	"github.com/as2gate/as2gate/internal/store"
)

var now = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// world is a station and a partner with their signing identities.
type world struct {
	station, partner *cmstest.Identity
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return &world{station: cmstest.New(t, "STATION", nil), partner: cmstest.New(t, "PARTNER", nil)}
}

// pack builds a signed message of size bytes asking for a signed synchronous MDN.
func (w *world) pack(t *testing.T, size int) *as2.Message {
	t.Helper()
	msg, err := as2.Pack([]as2.Payload{{Filename: "order.edi", Body: bytes.NewReader(bytes.Repeat([]byte("ISA*00*~"), size/8+1))}},
		&as2.PackOptions{
			From: "STATION", To: "PARTNER",
			Sign: as2.MICAlgSHA256, Certificate: w.station.Certificate, Key: w.station.Key,
			MDN: as2.MDNRequest{Mode: as2.MDNSync, Signed: true, MICAlgs: []as2.MICAlg{as2.MICAlgSHA256}},
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { msg.Close() })
	return msg
}

// send sends msg to u as the gateway would and returns what the partner answered.
func (w *world) send(t *testing.T, hc *http.Client, u string, msg *as2.Message) (*as2.Response, error) {
	t.Helper()
	c := &as2.Client{HTTP: hc}
	return c.Send(context.Background(), u, msg, &as2.SendOptions{Trusted: []*x509.Certificate{w.partner.Certificate}})
}

// mdnHandler answers like an AS2 receiver: it unpacks the message and returns the MDN,
// after edit has had its way with it. signer nil answers unsigned.
func (w *world) mdnHandler(t *testing.T, signer *cmstest.Identity, edit func(m *as2.MDN)) as2test.Behavior {
	return as2test.Handler(func(rw http.ResponseWriter, r *http.Request, body []byte) {
		req, err := as2.ParseRequest(r)
		if err != nil {
			t.Errorf("partner: %v", err)
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		in, err := as2.Unpack(r.Header, io.NewSectionReader(bytes.NewReader(body), 0, int64(len(body))),
			&as2.UnpackOptions{Trusted: []*x509.Certificate{w.station.Certificate}})
		if err != nil {
			t.Errorf("partner: %v", err)
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		defer in.Close()
		m := as2.NewMDN(req, in, as2.Processed(), "as2test")
		if edit != nil {
			edit(m)
		}
		var s *as2.MDNSigner
		if signer != nil {
			s = &as2.MDNSigner{Certificate: signer.Certificate, Key: signer.Key}
		}
		h, b, err := as2.EncodeMDN(m, req, s, "PARTNER")
		if err != nil {
			t.Errorf("partner: %v", err)
			http.Error(rw, err.Error(), http.StatusInternalServerError)
			return
		}
		for k, v := range h {
			rw.Header()[k] = v
		}
		rw.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = rw.Write(b)
	})
}

// impostor returns an identity whose key differs from the partner's.
func (w *world) impostor(t *testing.T) *cmstest.Identity {
	t.Helper()
	for range 9 {
		id := cmstest.New(t, "PARTNER", nil)
		if !id.Key.Equal(w.partner.Key) {
			return id
		}
	}
	t.Fatal("no second key")
	return nil
}

// silentListener accepts connections and never says a word: a TLS client waits for the
// server's hello until its handshake timeout.
func silentListener(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { <-done; c.Close() }()
		}
	}()
	return l.Addr().String()
}

// fakeDNS answers every query on a loopback UDP socket with rcode (3 NXDOMAIN, 2 SERVFAIL)
// and returns a resolver that asks only it.
func fakeDNS(t *testing.T, rcode byte) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			// Keep the header and the question (name, type, class); drop any OPT record.
			end := 12
			for end < len(q) && q[end] != 0 {
				end += int(q[end]) + 1
			}
			end += 5
			if n < 12 || end > len(q) {
				continue
			}
			resp := append([]byte(nil), q[:end]...)
			resp[2] = 0x80 | resp[2]&0x01 // a response; recursion desired as asked
			resp[3] = 0x80 | rcode        // recursion available
			clear(resp[6:12])             // no answer, authority or additional records
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", pc.LocalAddr().String())
		},
	}
}

// transportCase is one way an exchange fails, produced for real.
type transportCase struct {
	name string
	// run sends a message and returns the error and the partner's answer.
	run   func(t *testing.T, w *world) (*as2.Response, error)
	class string
	codes []string // acceptable codes; the first is the expected one
	// mentions are facts the action must name; "$host" is replaced by the partner's
	// host:port, found from the error.
	mentions []string
}

func TestClassifyRealFailures(t *testing.T) {
	t.Parallel()
	partnerCall := func(b as2test.Behavior, opts ...as2test.Option) func(t *testing.T, w *world) (*as2.Response, error) {
		return func(t *testing.T, w *world) (*as2.Response, error) {
			p := as2test.NewPartner(t, append(opts, as2test.WithBehavior(b))...)
			return w.send(t, p.Client(), p.URL, w.pack(t, 512))
		}
	}
	station := as2test.NewClientCert(t, "STATION")
	tests := []transportCase{
		{
			name: "connection refused",
			run: func(t *testing.T, w *world) (*as2.Response, error) {
				return w.send(t, &http.Client{Transport: &http.Transport{}}, as2test.RefusedURL(t), w.pack(t, 512))
			},
			class: store.ClassTransient, codes: []string{CodeConnectRefused},
			mentions: []string{"127.0.0.1:", "loopback"},
		},
		{
			name: "connect timeout",
			run: func(t *testing.T, w *world) (*as2.Response, error) {
				p := as2test.NewPartner(t)
				hc := p.Client()
				// A deadline already passed when the dial starts: the net package's own
				// connect timeout, without waiting for one.
				hc.Transport.(*http.Transport).DialContext = (&net.Dialer{Timeout: time.Nanosecond}).DialContext
				return w.send(t, hc, p.URL, w.pack(t, 512))
			},
			class: store.ClassTransient, codes: []string{CodeConnectTimeout},
			mentions: []string{"127.0.0.1:"},
		},
		{
			name: "TLS handshake timeout",
			run: func(t *testing.T, w *world) (*as2.Response, error) {
				hc := &http.Client{Transport: &http.Transport{TLSHandshakeTimeout: 100 * time.Millisecond}}
				return w.send(t, hc, "https://"+silentListener(t)+"/as2", w.pack(t, 512))
			},
			class: store.ClassTransient, codes: []string{CodeConnectTimeout},
			mentions: []string{"127.0.0.1:"},
		},
		{
			name: "no answer within the transmission timeout",
			run: func(t *testing.T, w *world) (*as2.Response, error) {
				p := as2test.NewPartner(t, as2test.WithBehavior(as2test.Stall()))
				hc := p.Client()
				hc.Timeout = 200 * time.Millisecond
				return w.send(t, hc, p.URL, w.pack(t, 512))
			},
			class: store.ClassIncomplete, codes: []string{CodeReadTimeout},
			mentions: []string{"127.0.0.1:", "Message-ID"},
		},
		{
			name: "reset after the request was sent",
			run:  partnerCall(as2test.ResetMidBody(0)),
			// The reset may overtake the end of the request: then net/http's reader closes
			// the connection under the writer. Either way the partner may hold it.
			class: store.ClassIncomplete, codes: []string{CodeConnectionReset, CodeConnectionClosed, CodeBrokenPipe},
			mentions: []string{"127.0.0.1:", "same Message-ID"},
		},
		{
			name: "reset while the body is written",
			run: func(t *testing.T, w *world) (*as2.Response, error) {
				p := as2test.NewPartner(t, as2test.WithBehavior(as2test.ResetMidBody(1000)))
				return w.send(t, p.Client(), p.URL, w.pack(t, 8<<20))
			},
			// The kernel reports the reset on the next write or read, whichever comes
			// first: ECONNRESET or EPIPE; or net/http's reader sees it first and closes the
			// connection under the writer (net.ErrClosed). All are incomplete.
			class: store.ClassIncomplete, codes: []string{CodeConnectionReset, CodeBrokenPipe, CodeConnectionClosed},
			mentions: []string{"127.0.0.1:"},
		},
		{
			name:  "closed after the body without an answer",
			run:   partnerCall(as2test.CloseAfterBody()),
			class: store.ClassIncomplete, codes: []string{CodeConnectionClosed},
			mentions: []string{"127.0.0.1:"},
		},
		{
			name: "closed in the middle of the MDN",
			run: partnerCall(as2test.Handler(func(rw http.ResponseWriter, _ *http.Request, _ []byte) {
				rw.Header().Set("Content-Type", `multipart/report; report-type=disposition-notification; boundary="b"`)
				rw.Header().Set("Content-Length", "1000")
				_, _ = io.WriteString(rw, "--b\r\n")
				http.NewResponseController(rw).Flush()
				panic(http.ErrAbortHandler)
			})),
			class: store.ClassIncomplete, codes: []string{CodeConnectionClosed},
		},
		{
			name:  "an answer that is not HTTP",
			run:   partnerCall(as2test.Garbage([]byte("220 ftp.partner.example ready\r\n"))),
			class: store.ClassIncomplete, codes: []string{CodeUnknown},
			mentions: []string{"127.0.0.1:", "report the error text"},
		},
		{
			name: "untrusted server certificate",
			run: func(t *testing.T, w *world) (*as2.Response, error) {
				p := as2test.NewPartner(t, as2test.WithTLS())
				return w.send(t, &http.Client{Transport: &http.Transport{}}, p.URL, w.pack(t, 512))
			},
			class: store.ClassPermanent, codes: []string{CodeTLSUntrusted},
			mentions: []string{"127.0.0.1:", "tls.ca", "authority"},
		},
		{
			name: "certificate for another host",
			run: func(t *testing.T, w *world) (*as2.Response, error) {
				p := as2test.NewPartner(t, as2test.WithTLSFor("as2.partner.example"))
				return w.send(t, p.Client(), p.URL, w.pack(t, 512))
			},
			class: store.ClassPermanent, codes: []string{CodeTLSHostname},
			mentions: []string{"as2.partner.example", "not for 127.0.0.1"},
		},
		{
			name: "client certificate required, TLS 1.3",
			run: func(t *testing.T, w *world) (*as2.Response, error) {
				p := as2test.NewPartner(t, as2test.WithClientCertRequired(station.Pool()))
				return w.send(t, observed(p.Client()), p.URL, w.pack(t, 512))
			},
			// The refusal arrives after the request started (as an alert, a broken pipe or
			// a reset), yet no server accepted it: the observed handshake says why.
			class: store.ClassPermanent, codes: []string{CodeTLSClientCertRequired},
			mentions: []string{"tls_cert"},
		},
		{
			name: "client certificate required, TLS 1.2, observed",
			run: func(t *testing.T, w *world) (*as2.Response, error) {
				p := as2test.NewPartner(t, as2test.WithClientCertRequired(station.Pool()), as2test.WithTLSVersion(0, tls.VersionTLS12))
				return w.send(t, observed(p.Client()), p.URL, w.pack(t, 512))
			},
			class: store.ClassPermanent, codes: []string{CodeTLSClientCertRequired},
			mentions: []string{"tls_cert"},
		},
		{
			name: "client certificate required, TLS 1.2",
			run: func(t *testing.T, w *world) (*as2.Response, error) {
				p := as2test.NewPartner(t, as2test.WithClientCertRequired(station.Pool()), as2test.WithTLSVersion(0, tls.VersionTLS12))
				return w.send(t, p.Client(), p.URL, w.pack(t, 512))
			},
			// A TLS 1.2 server says only handshake_failure: the action names both causes.
			class: store.ClassPermanent, codes: []string{CodeTLSProtocol},
			mentions: []string{"handshake failure", "client certificate", "tls_cert"},
		},
		{
			name: "no common TLS version",
			run: func(t *testing.T, w *world) (*as2.Response, error) {
				p := as2test.NewPartner(t, as2test.WithTLSVersion(tls.VersionTLS10, tls.VersionTLS11))
				return w.send(t, p.Client(), p.URL, w.pack(t, 512))
			},
			class: store.ClassPermanent, codes: []string{CodeTLSProtocol},
			mentions: []string{"protocol version", "TLS 1.2 and 1.3"},
		},
		{
			name: "https to a plain HTTP port",
			run: func(t *testing.T, w *world) (*as2.Response, error) {
				p := as2test.NewPartner(t)
				return w.send(t, p.Client(), strings.Replace(p.URL, "http://", "https://", 1), w.pack(t, 512))
			},
			class: store.ClassPermanent, codes: []string{CodeTLSProtocol},
			mentions: []string{"did not answer in TLS", "scheme and port"},
		},
		{
			name: "http to a TLS port",
			run: func(t *testing.T, w *world) (*as2.Response, error) {
				p := as2test.NewPartner(t, as2test.WithTLS())
				return w.send(t, p.Client(), strings.Replace(p.URL, "https://", "http://", 1), w.pack(t, 512))
			},
			// The TLS server answers 400 and closes at once; when the close overtakes the
			// answer the client sees a reset instead. Both are reported as what they are.
			codes: []string{CodeHTTP400, CodeConnectionReset, CodeConnectionClosed},
		},
		{
			name: "unknown host",
			run: func(t *testing.T, w *world) (*as2.Response, error) {
				d := &net.Dialer{Resolver: fakeDNS(t, 3)}
				hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
				return w.send(t, hc, "http://as2.partner.invalid:4080/as2", w.pack(t, 512))
			},
			class: store.ClassPermanent, codes: []string{CodeDNSNotFound},
			mentions: []string{"as2.partner.invalid", "192.168.0.0/16", "nslookup as2.partner.invalid"},
		},
		{
			name: "DNS server failure",
			run: func(t *testing.T, w *world) (*as2.Response, error) {
				d := &net.Dialer{Resolver: fakeDNS(t, 2)}
				hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
				return w.send(t, hc, "http://as2.partner.invalid:4080/as2", w.pack(t, 512))
			},
			class: store.ClassTransient, codes: []string{CodeDNSTemporary},
			mentions: []string{"as2.partner.invalid"},
		},
		{
			name: "partner URL that does not parse",
			run: func(t *testing.T, w *world) (*as2.Response, error) {
				return w.send(t, nil, "http://partner.example:port/as2", w.pack(t, 512))
			},
			class: store.ClassPermanent, codes: []string{CodeConfig},
			mentions: []string{"partner.example:port"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			resp, err := tc.run(t, w)
			if err == nil {
				t.Fatal("the exchange succeeded")
			}
			f := ClassifyResponse(resp, err, now)
			checkFailure(t, f, err, tc.class, tc.codes, tc.mentions)
		})
	}
}

func TestClassifyMDN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		behavior func(t *testing.T, w *world) as2test.Behavior
		class    string
		code     string
		mentions []string
		errHas   string // the Error text keeps this
	}{
		{
			name: "negative MDN: decryption failed",
			behavior: func(t *testing.T, w *world) as2test.Behavior {
				return w.mdnHandler(t, w.partner, func(m *as2.MDN) { m.Disposition = as2.ProcessedWithError(as2.DecryptionFailed) })
			},
			class: store.ClassPermanent, code: CodeMDNNegative,
			mentions: []string{"processed/error: decryption-failed", "decrypt"},
			errHas:   "processed/error: decryption-failed",
		},
		{
			name: "negative MDN: unknown trading relationship",
			behavior: func(t *testing.T, w *world) as2test.Behavior {
				return w.mdnHandler(t, w.partner, func(m *as2.MDN) {
					m.Disposition = as2.ProcessedWithError(as2.UnknownTradingRelationship)
				})
			},
			class: store.ClassPermanent, code: CodeMDNNegative,
			mentions: []string{"unknown-trading-relationship", "AS2-From/AS2-To"},
			errHas:   "unknown-trading-relationship",
		},
		{
			name: "negative MDN: failure",
			behavior: func(t *testing.T, w *world) as2test.Behavior {
				return w.mdnHandler(t, w.partner, func(m *as2.MDN) { m.Disposition = as2.Failed(as2.UnsupportedMICAlgorithms) })
			},
			class: store.ClassPermanent, code: CodeMDNNegative,
			mentions: []string{"failed/failure: unsupported MIC-algorithms", "MIC algorithm"},
			errHas:   "failed/failure",
		},
		{
			name: "unsigned MDN when a signed one was asked for",
			behavior: func(t *testing.T, w *world) as2test.Behavior {
				return w.mdnHandler(t, nil, nil)
			},
			class: store.ClassPermanent, code: CodeMDNUnsigned,
			mentions: []string{"mdn_signed"},
		},
		{
			name: "MDN signed with a certificate we do not have",
			behavior: func(t *testing.T, w *world) as2test.Behavior {
				return w.mdnHandler(t, w.impostor(t), nil)
			},
			class: store.ClassPermanent, code: CodeMDNSignatureInvalid,
			mentions: []string{"PARTNER", "certs"},
		},
		{
			name: "MIC mismatch",
			behavior: func(t *testing.T, w *world) as2test.Behavior {
				return w.mdnHandler(t, w.partner, func(m *as2.MDN) {
					bad := *m.ReceivedMIC
					bad.Digest = bytes.Repeat([]byte{0x5a}, len(bad.Digest))
					m.ReceivedMIC = &bad
				})
			},
			class: store.ClassPermanent, code: CodeMICMismatch,
			mentions: []string{"WlpaWlpa", "sha-256"},
		},
		{
			name: "success without the MDN",
			behavior: func(*testing.T, *world) as2test.Behavior {
				return as2test.Respond(http.StatusOK, nil, nil)
			},
			class: store.ClassIncomplete, code: CodeMDNMissing,
			mentions: []string{"synchronous MDN"},
		},
		{
			name: "garbled MDN",
			behavior: func(*testing.T, *world) as2test.Behavior {
				return as2test.Respond(http.StatusOK, http.Header{"Content-Type": {"text/html"}}, []byte("<html>thanks</html>"))
			},
			class: store.ClassIncomplete, code: CodeMDNUnreadable,
			mentions: []string{"text/html", "Message-ID"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			p := as2test.NewPartner(t, as2test.WithBehavior(tc.behavior(t, w)))
			resp, err := w.send(t, p.Client(), p.URL, w.pack(t, 512))
			if err == nil {
				t.Fatal("the exchange succeeded")
			}
			f := ClassifyResponse(resp, err, now)
			checkFailure(t, f, err, tc.class, []string{tc.code}, tc.mentions)
			if f.HTTPStatus != http.StatusOK || f.Header.Get("Content-Length") == "" {
				t.Errorf("HTTP status %d, header %v: want the 200 response recorded", f.HTTPStatus, f.Header)
			}
			if !strings.Contains(f.Error, tc.errHas) {
				t.Errorf("Error %q does not keep %q", f.Error, tc.errHas)
			}
		})
	}
}

// The harness itself: a well-behaved partner's MDN passes, so the failures above are the
// ones each case provokes.
func TestClassifyHarnessSucceeds(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	p := as2test.NewPartner(t, as2test.WithBehavior(w.mdnHandler(t, w.partner, nil)))
	resp, err := w.send(t, p.Client(), p.URL, w.pack(t, 512))
	if err != nil {
		t.Fatalf("a good MDN failed: %v", err)
	}
	if resp.Receipt == nil || resp.Receipt.Signer == nil {
		t.Fatalf("no signed receipt: %+v", resp)
	}
	if f := ClassifyResponse(resp, nil, now); f.Code != "" || f.Class != "" {
		t.Errorf("success classified as %+v", f)
	}
}

func TestClassifyHTTPStatus(t *testing.T) {
	t.Parallel()
	const location = "https://as2.partner.example/as2/inbound"
	tests := []struct {
		status   int
		header   http.Header
		body     string
		class    string
		mentions []string
		retry    time.Duration
	}{
		{301, http.Header{"Location": {location}}, "", store.ClassPermanent, []string{location, "partner URL"}, 0},
		{302, http.Header{"Location": {location}}, "", store.ClassPermanent, []string{location}, 0},
		{303, http.Header{"Location": {location}}, "", store.ClassPermanent, []string{location}, 0},
		{307, http.Header{"Location": {"/as2/"}}, "", store.ClassPermanent, []string{"/as2/"}, 0}, // resolved against the URL below
		{308, http.Header{"Location": {location}}, "", store.ClassPermanent, []string{location}, 0},
		{400, nil, "missing AS2-To", store.ClassPermanent, []string{"missing AS2-To", "malformed"}, 0},
		{401, http.Header{"WWW-Authenticate": {`Basic realm="as2"`}}, "", store.ClassPermanent, []string{`Basic realm="as2"`, "auth"}, 0},
		{403, nil, "", store.ClassPermanent, []string{"allow-list"}, 0},
		{404, nil, "", store.ClassPermanent, []string{"path"}, 0},
		{405, nil, "", store.ClassPermanent, []string{"405"}, 0},
		{408, nil, "", store.ClassTransient, []string{"waiting"}, 0},
		{410, nil, "", store.ClassPermanent, []string{"410"}, 0},
		{413, nil, "", store.ClassPermanent, []string{"size limit"}, 0},
		{415, nil, "", store.ClassPermanent, []string{"415"}, 0},
		{422, nil, "", store.ClassPermanent, []string{"AS2 identifiers"}, 0},
		{429, http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, "", store.ClassTransient, []string{"1m30s"}, 90 * time.Second},
		{500, nil, "java.lang.NullPointerException", store.ClassTransient, []string{"NullPointerException", "log"}, 0},
		{501, nil, "", store.ClassTransient, []string{"501"}, 0},
		{502, nil, "", store.ClassTransient, []string{"proxy"}, 0},
		{503, http.Header{"Retry-After": {"120"}}, "maintenance", store.ClassTransient, []string{"2m0s", "maintenance"}, 2 * time.Minute},
		{504, nil, "", store.ClassTransient, []string{"proxy"}, 0},
		{505, nil, "", store.ClassTransient, []string{"505"}, 0},
		{599, nil, "", store.ClassTransient, []string{"599"}, 0},
		// A Retry-After on a permanent answer changes nothing.
		{400, http.Header{"Retry-After": {"60"}}, "", store.ClassPermanent, []string{"400"}, 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d %s", tc.status, tc.header), func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			p := as2test.NewPartner(t, as2test.WithBehavior(as2test.Respond(tc.status, tc.header, []byte(tc.body))))
			resp, err := w.send(t, p.Client(), p.URL, w.pack(t, 512))
			if err == nil {
				t.Fatal("the exchange succeeded")
			}
			f := ClassifyResponse(resp, err, now)
			code := "http_" + strconv.Itoa(tc.status)
			checkFailure(t, f, err, tc.class, []string{code}, append(tc.mentions, strconv.Itoa(tc.status)))
			if f.HTTPStatus != tc.status {
				t.Errorf("HTTPStatus %d, want %d", f.HTTPStatus, tc.status)
			}
			if f.BodyExcerpt != tc.body {
				t.Errorf("BodyExcerpt %q, want %q", f.BodyExcerpt, tc.body)
			}
			if f.RetryAfter != tc.retry {
				t.Errorf("RetryAfter %v, want %v", f.RetryAfter, tc.retry)
			}
			if loc := tc.header.Get("Location"); loc != "" {
				if !strings.HasSuffix(f.Location, loc) {
					t.Errorf("Location %q, want %q", f.Location, loc)
				}
				if !strings.Contains(f.Action, f.Location) {
					t.Errorf("action %q does not show the Location %q", f.Action, f.Location)
				}
			}
			for k := range tc.header {
				if f.Header.Get(k) == "" {
					t.Errorf("header %s not kept: %v", k, f.Header)
				}
			}
		})
	}
}

// Failures that need no partner, or whose real form is impractical on loopback, built the
// way the code that meets them builds them.
func TestClassifyConstructed(t *testing.T) {
	t.Parallel()
	dnsErr := func(dns *net.DNSError) error {
		// As net/http reports a failed lookup: url.Error, then the dial's OpError.
		return &as2.TransportError{Op: "dns lookup", Err: &url.Error{Op: "Post", URL: "https://as2.partner.example/as2",
			Err: &net.OpError{Op: "dial", Net: "tcp", Err: dns}}}
	}
	tests := []struct {
		name     string
		err      error
		class    string
		code     string
		mentions []string
	}{
		{"DNS name not found", dnsErr(&net.DNSError{Err: "no such host", Name: "as2.partner.example", IsNotFound: true}),
			store.ClassPermanent, CodeDNSNotFound, []string{"as2.partner.example", "10.0.0.0/8"}},
		{"DNS timeout", dnsErr(&net.DNSError{Err: "i/o timeout", Name: "as2.partner.example", IsTimeout: true}),
			store.ClassTransient, CodeDNSTemporary, []string{"as2.partner.example"}},
		{"DNS temporary", dnsErr(&net.DNSError{Err: "server misbehaving", Name: "as2.partner.example", IsTemporary: true}),
			store.ClassTransient, CodeDNSTemporary, []string{"as2.partner.example"}},
		{"connect timeout to a private address",
			&as2.TransportError{Op: "connect", Err: &url.Error{Op: "Post", URL: "https://as2.partner.example/as2",
				Err: &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 443}, Err: os.ErrDeadlineExceeded}}},
			store.ClassTransient, CodeConnectTimeout, []string{"as2.partner.example:443", "10.1.2.3:443", "private address"}},
		{"asynchronous MDN delivery: dial timeout",
			&as2.TransportError{Op: "send MDN", Err: &url.Error{Op: "Post", URL: "http://[2001:db8::7]:8080/mdn",
				Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}}},
			store.ClassTransient, CodeConnectTimeout, []string{"[2001:db8::7]:8080"}},
		{"asynchronous MDN delivery: reset",
			&as2.TransportError{Op: "send MDN", Err: &url.Error{Op: "Post", URL: "http://[2001:db8::7]:8080/mdn",
				Err: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}}},
			store.ClassIncomplete, CodeConnectionReset, []string{"[2001:db8::7]:8080"}},
		{"async MDN timeout", fmt.Errorf("message <1@x>: %w", ErrAsyncMDNTimeout),
			store.ClassIncomplete, CodeAsyncMDNTimeout, []string{"public_url"}},
		{"no certificate", &ConfigError{What: "encrypting for partner PARTNERX", Err: errors.New("no valid encryption certificate")},
			store.ClassPermanent, CodeConfig, []string{"PARTNERX", "no valid encryption certificate"}},
		{"unsupported algorithm", fmt.Errorf("packing: %w", &cms.UnsupportedAlgorithmError{What: "content encryption", Name: "rc2"}),
			store.ClassPermanent, CodeConfig, []string{"rc2"}},
		{"unsupported MIC algorithm", &as2.UnsupportedMICAlgError{Name: "md5"},
			store.ClassPermanent, CodeConfig, []string{"md5"}},
		{"unknown error before sending", &as2.TransportError{Op: "connect", Err: errors.New("proxyconnect: something odd")},
			store.ClassTransient, CodeUnknownNotSent, []string{"before any of the message"}},
		{"unknown error of unknown origin", errors.New("something odd"),
			store.ClassIncomplete, CodeUnknown, []string{"Message-ID"}},
		{"reset during the TLS handshake", &as2.TransportError{Op: "tls handshake", Err: &url.Error{Op: "Post", URL: "https://as2.partner.example/as2", Err: io.EOF}},
			store.ClassTransient, CodeConnectReset, []string{"as2.partner.example:443"}},
		{"remote alert wrapped as tls.AlertError", &as2.TransportError{Op: "tls handshake", Err: fmt.Errorf("handshake: %w", tls.AlertError(116))},
			store.ClassPermanent, CodeTLSClientCertRequired, []string{"certificate required"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkFailure(t, Classify(tc.err, now), tc.err, tc.class, []string{tc.code}, tc.mentions)
		})
	}
}

// checkFailure asserts class, code, the error text and an action naming the facts.
// observed is hc with its TLS handshakes observed, as the gateway's clients are.
func observed(hc *http.Client) *http.Client {
	tr := hc.Transport.(*http.Transport)
	tr.TLSClientConfig = as2.ObserveClientCertificateRequests(tr.TLSClientConfig)
	return hc
}

// checkFailure checks a classification; an empty class accepts the class of any of codes.
func checkFailure(t *testing.T, f Failure, err error, class string, codes, mentions []string) {
	t.Helper()
	ok := false
	for _, c := range codes {
		ok = ok || f.Code == c
	}
	if !ok || (class != "" && f.Class != class) {
		t.Fatalf("classified %s/%s, want %s/%s; error: %v", f.Class, f.Code, class, strings.Join(codes, " or "), err)
	}
	t.Logf("%s/%s: %s", f.Class, f.Code, f.Action)
	if f.Error != err.Error() {
		t.Errorf("Error %q, want %q", f.Error, err.Error())
	}
	if f.Action == "" {
		t.Fatal("no action")
	}
	for _, m := range mentions {
		if !strings.Contains(f.Action, m) {
			t.Errorf("action does not mention %q: %s", m, f.Action)
		}
	}
	if c, _ := Describe(f.Code); c != f.Class {
		t.Errorf("Describe(%s) gives class %q, Classify %q", f.Code, c, f.Class)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	count := map[string]int{}
	for _, code := range Codes() {
		if seen[code] {
			t.Errorf("code %s listed twice", code)
		}
		seen[code] = true
		class, action := Describe(code)
		count[class]++
		if class == "" || action == "" {
			t.Errorf("Describe(%s) = %q, %q", code, class, action)
		}
		for _, bad := range []string{"  ", " .", "..", " :", "()"} {
			if strings.Contains(action, bad) {
				t.Errorf("Describe(%s): %q in %q", code, bad, action)
			}
		}
	}
	if count[store.ClassTransient] == 0 || count[store.ClassIncomplete] == 0 || count[store.ClassPermanent] == 0 {
		t.Errorf("classes %v, want all three", count)
	}
	for _, tc := range []struct{ code, class string }{
		{"http_418", store.ClassPermanent},
		{"http_425", store.ClassTransient},
		{"http_507", store.ClassTransient},
		{"http_399", store.ClassPermanent},
		{"http_200", ""},
		{"http_5000", ""},
		{"http_abc", ""},
		{"bogus", ""},
		{"", ""},
	} {
		if class, action := Describe(tc.code); class != tc.class || (class != "") != (action != "") {
			t.Errorf("Describe(%q) = %q, %q; want class %q", tc.code, class, action, tc.class)
		}
	}
}

func TestClassifyNil(t *testing.T) {
	t.Parallel()
	if f := Classify(nil, now); f.Code != "" || f.Class != "" || f.Action != "" {
		t.Errorf("Classify(nil) = %+v, want the zero Failure", f)
	}
}

func TestPrivateAddressHint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want string // "" for a public address
	}{
		{"10.0.0.7", "private"},
		{"172.20.1.1", "private"},
		{"192.168.1.10", "private"},
		{"fd00::1", "private"},
		{"::ffff:192.168.1.10", "private"},
		{"127.0.0.1", "loopback"},
		{"::1", "loopback"},
		{"169.254.10.1", "link-local"},
		{"100.64.3.4", "carrier-grade NAT"},
		{"0.0.0.0", "unspecified"},
		{"203.0.113.9", ""},
		{"2001:db8::1", ""},
	}
	for _, tc := range tests {
		got := PrivateAddressHint(netip.MustParseAddr(tc.addr))
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.addr, got, tc.want)
		}
	}

	resolve := func(_ context.Context, host string) ([]netip.Addr, error) {
		switch host {
		case "edi.partner.internal":
			return []netip.Addr{netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("10.20.30.40")}, nil
		case "as2.partner.example":
			return []netip.Addr{netip.MustParseAddr("203.0.113.5")}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	for host, want := range map[string]string{
		"edi.partner.internal:4080": "10.20.30.40 is a private address",
		"as2.partner.example":       "",
		"missing.example":           "",
		"192.168.7.7:443":           "192.168.7.7 is a private address",
	} {
		if got := HintPrivateAddress(context.Background(), host, resolve); (want == "") != (got == "") || !strings.HasPrefix(got, want) {
			t.Errorf("HintPrivateAddress(%s) = %q, want %q", host, got, want)
		}
	}
}

// TestClassifyAddressPolicy: an asynchronous MDN refused by the address policy at connect
// time is a permanent configuration matter, not a network fault to retry.
func TestClassifyAddressPolicy(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	d := netpolicy.Dialer(&net.Dialer{}, false)
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	err := (&as2.Client{HTTP: hc}).SendMDN(context.Background(), srv.URL, http.Header{}, []byte("mdn"))
	f := Classify(err, time.Now())
	if f.Class != store.ClassPermanent || f.Code != CodeConfig || !strings.Contains(f.Action, "allow_private_mdn_urls") {
		t.Fatalf("classified %s/%s: %s", f.Class, f.Code, f.Action)
	}
}
