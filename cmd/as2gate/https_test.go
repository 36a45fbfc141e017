package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/as2/as2test"
	"github.com/as2gate/as2gate/cms/cmstest"
	"github.com/as2gate/as2gate/internal/config"
)

// gatewaySpec is a gateway configuration for the tests that need more than startNode offers:
// HTTPS listeners, TLS client identities, several partners, strict limits.
type gatewaySpec struct {
	id              string // the station's AS2 name
	cert, key       string // the station's signing and decryption identity (files)
	tlsCert, tlsKey string // the station's TLS client identity (files); empty: none
	// listenerTLS is tls.as2 as a YAML flow mapping; empty serves plain HTTP.
	listenerTLS     string
	allowPrivateMDN bool
	partners        []partnerSpec
	// extra is further top-level YAML, e.g. a notify block.
	extra string
}

// partnerSpec is one partner entry of a gatewaySpec.
type partnerSpec struct {
	id, cert string
	// url is where the partner receives; empty means a loopback port nobody listens on
	// (tests point it at the other gateway once both are running).
	url string
	// settings are further keys of the entry with their YAML values, e.g. "tls": "{ca: …}".
	settings map[string]string
}

// yaml writes the configuration file of g with its data under dir.
func (g gatewaySpec) yaml(dir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: %q\n", filepath.Join(dir, "data"))
	b.WriteString("listen: {as2: \"127.0.0.1:0\", admin: \"127.0.0.1:0\"}\n")
	b.WriteString("public_url: http://127.0.0.1:1/as2\n")
	fmt.Fprintf(&b, "allow_private_mdn_urls: %v\n", g.allowPrivateMDN)
	b.WriteString("log: {format: json, level: warn}\n")
	b.WriteString(g.extra)
	if g.listenerTLS != "" {
		fmt.Fprintf(&b, "tls:\n  as2: %s\n", g.listenerTLS)
	}
	fmt.Fprintf(&b, "stations:\n  - as2_id: %s\n    key: %q\n    cert: %q\n", g.id, g.key, g.cert)
	if g.tlsCert != "" {
		fmt.Fprintf(&b, "    tls_cert: %q\n    tls_key: %q\n", g.tlsCert, g.tlsKey)
	}
	b.WriteString("partners:\n")
	for _, p := range g.partners {
		url := p.url
		if url == "" {
			url = "http://127.0.0.1:1/as2"
		}
		fmt.Fprintf(&b, "  - as2_id: %s\n    station: %s\n    url: %q\n    certs: [%q]\n", p.id, g.id, url, p.cert)
		keys := make([]string, 0, len(p.settings))
		for k := range p.settings {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "    %s: %s\n", k, p.settings[k])
		}
	}
	return b.String()
}

// startGateway starts the gateway g in-process with its files under dir, as startNode does
// for the end-to-end pairs. Its public URL is its AS2 listener, https when it serves TLS.
func startGateway(t *testing.T, dir string, g gatewaySpec) *node {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "as2gate.yaml")
	if err := os.WriteFile(path, []byte(g.yaml(dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("%s: %v\n%s", g.id, err, g.yaml(dir))
	}
	token, _, err := cfg.EnsureAPIToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("gateway", g.id)
	}
	gw, err := Open(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cfg.PublicURL = gatewayURL(gw, g.listenerTLS != "")
	n := &node{t: t, id: g.id, cfg: cfg, gw: gw, token: token, done: make(chan error, 1), stop: cancel}
	go func() { n.done <- gw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-n.done; err != nil {
			t.Errorf("%s: Run: %v", g.id, err)
		}
		gw.Close()
	})
	return n
}

// gatewayURL is the AS2 endpoint of a running gateway.
func gatewayURL(gw *Gateway, https bool) string {
	scheme := "http"
	if https {
		scheme = "https"
	}
	return scheme + "://" + gw.AS2Addr().String() + "/as2"
}

// serverIdentity makes the HTTPS identity of a gateway dialled at 127.0.0.1 and writes it
// to dir/<base>.crt and .key.
func serverIdentity(t *testing.T, dir, base string) (id *cmstest.Identity, certPath, keyPath string) {
	t.Helper()
	id = cmstest.New(t, base, &cmstest.Options{
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	certPath, keyPath = id.WriteFiles(t, dir, base)
	return id, certPath, keyPath
}

// listenerTLS is the tls.as2 mapping for a server identity, demanding client certificates
// from clientCA when it is not empty.
func listenerTLS(cert, key, clientCA string) string {
	if clientCA == "" {
		return fmt.Sprintf("{cert: %q, key: %q}", cert, key)
	}
	return fmt.Sprintf("{cert: %q, key: %q, client_ca: %q}", cert, key, clientCA)
}

// agreed is the agreement of the HTTPS exchanges: signed, encrypted, signed sync MDN.
func agreed(extra map[string]string) map[string]string {
	s := map[string]string{"sign": "sha256", "encrypt": "aes256-cbc", "mdn": "sync", "mdn_signed": "true",
		"retry": "{failed: {strategy: exponential, attempts: 3, initial: 1s}}"}
	for k, v := range extra {
		s[k] = v
	}
	return s
}

// deliver sends content from one gateway to the other through the API and checks that it
// ends Sent with a verified MDN and arrives identical, in the receiver's inbox folder too.
func deliver(t *testing.T, from, to *node, name string, content []byte) {
	t.Helper()
	s := from.submit(to.id, map[string][]byte{name: content})
	sent := from.await(s.ID, "sent", "failed")
	if sent.State != "sent" {
		t.Fatalf("%s -> %s: %s, attempts %+v", from.id, to.id, sent.State, sent.Attempts)
	}
	if sent.MDN == nil || !sent.MDN.MICOK || !sent.MDN.Signed || !strings.HasSuffix(sent.MDN.Disposition, "processed") {
		t.Fatalf("%s -> %s: MDN %+v", from.id, to.id, sent.MDN)
	}
	got := to.received(s.MessageID)
	sum := sha256.Sum256(content)
	if got.State != "received" || len(got.Files) != 1 || got.Files[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("%s received %+v", to.id, got)
	}
	inbox, err := os.ReadFile(filepath.Join(to.cfg.Inbox(from.id), name))
	if err != nil || !bytes.Equal(inbox, content) {
		t.Fatalf("%s inbox file: %q, %v", to.id, inbox, err)
	}
}

// fails submits a message and checks that its one attempt fails permanently with code, and
// that the corrective action names hint.
func fails(t *testing.T, from *node, partner, code, hint string) {
	t.Helper()
	s := from.submit(partner, map[string][]byte{"invoice.xml": []byte("<invoice/>")})
	m := from.await(s.ID, "failed", "sent")
	if m.State != "failed" || len(m.Attempts) != 1 {
		t.Fatalf("%s -> %s: %s after %d attempts %+v, want failed after one", from.id, partner, m.State, len(m.Attempts), m.Attempts)
	}
	a := m.Attempts[0]
	if a.Class != "permanent" || a.Code != code {
		t.Fatalf("attempt %s/%s (%s), want permanent/%s", a.Class, a.Code, a.Error, code)
	}
	if !strings.Contains(a.Action, hint) {
		t.Fatalf("action %q does not mention %q", a.Action, hint)
	}
}

// nothingReceived checks that n holds no inbound message.
func nothingReceived(t *testing.T, n *node) {
	t.Helper()
	var list struct{ Messages []messageView }
	n.api("GET", "/api/v1/messages?box=received", nil, "", &list)
	if len(list.Messages) != 0 {
		t.Fatalf("%s received %+v", n.id, list.Messages)
	}
}

// TestHTTPSPinnedServerCertificate exchanges messages both ways between two gateways that
// serve HTTPS with self-signed certificates, each pinning the other's through the partner's
// tls.ca. A's messages get a synchronous MDN; B's ask for an asynchronous one, which A
// delivers to B's https public URL under the same pinning.
func TestHTTPSPinnedServerCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certA, keyA := cmstest.New(t, "GW-A", nil).WriteFiles(t, dir, "a")
	certB, keyB := cmstest.New(t, "GW-B", nil).WriteFiles(t, dir, "b")
	_, httpsA, httpsKeyA := serverIdentity(t, dir, "a-https")
	_, httpsB, httpsKeyB := serverIdentity(t, dir, "b-https")
	A := startGateway(t, filepath.Join(dir, "A"), gatewaySpec{
		id: "GW-A", cert: certA, key: keyA, listenerTLS: listenerTLS(httpsA, httpsKeyA, ""), allowPrivateMDN: true,
		partners: []partnerSpec{{id: "GW-B", cert: certB, settings: agreed(map[string]string{"tls": fmt.Sprintf("{ca: %q}", httpsB)})}},
	})
	B := startGateway(t, filepath.Join(dir, "B"), gatewaySpec{
		id: "GW-B", cert: certB, key: keyB, listenerTLS: listenerTLS(httpsB, httpsKeyB, ""), allowPrivateMDN: true,
		partners: []partnerSpec{{id: "GW-A", cert: certA, settings: agreed(map[string]string{"tls": fmt.Sprintf("{ca: %q}", httpsA), "mdn": "async"})}},
	})
	A.cfg.Partner("GW-B").URL = gatewayURL(B.gw, true)
	B.cfg.Partner("GW-A").URL = gatewayURL(A.gw, true)

	deliver(t, A, B, "a-to-b.edi", []byte("UNB+UNOC:3+GWA+GWB'\nUNZ+1+1'\n"))
	deliver(t, B, A, "b-to-a.edi", []byte("UNB+UNOC:3+GWB+GWA'\nUNZ+1+2'\n"))
}

// TestHTTPSClientCertificate has B demand a client certificate issued by a CA it names in
// tls.as2.client_ca; A presents its station's tls_cert and tls_key and pins B's server
// certificate.
func TestHTTPSClientCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certA, keyA := cmstest.New(t, "GW-A", nil).WriteFiles(t, dir, "a")
	certB, keyB := cmstest.New(t, "GW-B", nil).WriteFiles(t, dir, "b")
	_, httpsB, httpsKeyB := serverIdentity(t, dir, "b-https")
	ca := cmstest.New(t, "partners CA", &cmstest.Options{IsCA: true})
	caPath, _ := ca.WriteFiles(t, dir, "partners-ca")
	clientA := cmstest.New(t, "GW-A client", &cmstest.Options{Parent: ca, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	clientCrt, clientKey := clientA.WriteFiles(t, dir, "a-client")

	B := startGateway(t, filepath.Join(dir, "B"), gatewaySpec{
		id: "GW-B", cert: certB, key: keyB, listenerTLS: listenerTLS(httpsB, httpsKeyB, caPath),
		partners: []partnerSpec{{id: "GW-A", cert: certA, settings: agreed(nil)}},
	})
	A := startGateway(t, filepath.Join(dir, "A"), gatewaySpec{
		id: "GW-A", cert: certA, key: keyA, tlsCert: clientCrt, tlsKey: clientKey,
		partners: []partnerSpec{{id: "GW-B", cert: certB, url: gatewayURL(B.gw, true), settings: agreed(map[string]string{"tls": fmt.Sprintf("{ca: %q}", httpsB)})}},
	})
	deliver(t, A, B, "orders.csv", []byte("order,qty\n4711,12\n"))
}

// TestHTTPSFailures checks how a sender reports TLS set-ups that cannot work: a pinned
// certificate that is not the partner's, and a partner that demands a client certificate
// the station does not have. Each is a permanent failure with its code and an action that
// names the setting to fix; nothing reaches the receiver.
func TestHTTPSFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certA, keyA := cmstest.New(t, "GW-A", nil).WriteFiles(t, dir, "a")
	certB, keyB := cmstest.New(t, "GW-B", nil).WriteFiles(t, dir, "b")
	_, httpsB, httpsKeyB := serverIdentity(t, dir, "b-https")
	_, otherServer, _ := serverIdentity(t, dir, "not-b-https")
	ca := cmstest.New(t, "partners CA", &cmstest.Options{IsCA: true})
	caPath, _ := ca.WriteFiles(t, dir, "partners-ca")

	cases := []struct {
		name     string
		clientCA string // B's tls.as2.client_ca
		pin      string // A's tls.ca for B
		code     string
		hint     string
	}{
		{name: "wrong CA pinned", pin: otherServer, code: "tls_untrusted", hint: "tls.ca"},
		{name: "no client certificate", clientCA: caPath, pin: httpsB, code: "tls_client_cert_required", hint: "tls_cert"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
			B := startGateway(t, filepath.Join(dir, "B"), gatewaySpec{
				id: "GW-B", cert: certB, key: keyB, listenerTLS: listenerTLS(httpsB, httpsKeyB, c.clientCA),
				partners: []partnerSpec{{id: "GW-A", cert: certA, settings: agreed(nil)}},
			})
			A := startGateway(t, filepath.Join(dir, "A"), gatewaySpec{
				id: "GW-A", cert: certA, key: keyA,
				partners: []partnerSpec{{id: "GW-B", cert: certB, url: gatewayURL(B.gw, true), settings: agreed(map[string]string{"tls": fmt.Sprintf("{ca: %q}", c.pin)})}},
			})
			fails(t, A, "GW-B", c.code, c.hint)
			nothingReceived(t, B)
		})
	}
}

// TestHTTPSMinimumVersion checks that TLS 1.2 is the floor both ways: the partner listener
// refuses a client that speaks at most TLS 1.1 and serves one limited to TLS 1.2, and the
// sender refuses a partner server that speaks at most TLS 1.1 (permanent tls_protocol).
func TestHTTPSMinimumVersion(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certA, keyA := cmstest.New(t, "GW-A", nil).WriteFiles(t, dir, "a")
	certB, _ := cmstest.New(t, "GW-B", nil).WriteFiles(t, dir, "b")
	serverA, httpsA, httpsKeyA := serverIdentity(t, dir, "a-https")
	old := as2test.NewPartner(t, as2test.WithTLSVersion(tls.VersionTLS10, tls.VersionTLS11))
	oldCA := filepath.Join(dir, "old-partner.crt")
	if err := os.WriteFile(oldCA, (&cmstest.Identity{Certificate: old.Certificate()}).CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	A := startGateway(t, filepath.Join(dir, "A"), gatewaySpec{
		id: "GW-A", cert: certA, key: keyA, listenerTLS: listenerTLS(httpsA, httpsKeyA, ""),
		partners: []partnerSpec{{id: "GW-B", cert: certB, url: old.URL, settings: agreed(map[string]string{"tls": fmt.Sprintf("{ca: %q}", oldCA)})}},
	})

	roots := x509.NewCertPool()
	roots.AddCert(serverA.Certificate)
	versions := []struct {
		name     string
		min, max uint16
		ok       bool
	}{
		{name: "TLS 1.0 and 1.1", min: tls.VersionTLS10, max: tls.VersionTLS11},
		{name: "TLS 1.2", min: tls.VersionTLS12, max: tls.VersionTLS12, ok: true},
		{name: "TLS 1.3", min: tls.VersionTLS13, max: tls.VersionTLS13, ok: true},
	}
	for _, v := range versions {
		t.Run("listener/"+v.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", A.gw.AS2Addr().String(), &tls.Config{RootCAs: roots, MinVersion: v.min, MaxVersion: v.max})
			if !v.ok {
				if err == nil {
					conn.Close()
					t.Fatalf("the AS2 listener accepted TLS %x", conn.ConnectionState().Version)
				}
				if !strings.Contains(err.Error(), "protocol version") {
					t.Fatalf("handshake failed with %v, want a protocol_version alert", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer conn.Close()
			if got := conn.ConnectionState().Version; got != v.max {
				t.Fatalf("negotiated %x, want %x", got, v.max)
			}
		})
	}
	t.Run("sender", func(t *testing.T) {
		fails(t, A, "GW-B", "tls_protocol", "TLS 1.2")
		if n := len(old.Requests()); n != 0 {
			t.Fatalf("the TLS 1.1 partner received %d requests", n)
		}
	})
}

// readAll reads a response body for a test, failing it on error.
func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
