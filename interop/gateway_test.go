package interop

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/cms/cmstest"
)

// The as2gate binary against the peers nobody on the project wrote, both ways: libas2 (the
// Node harness in libas2/) and the OpenSSL peer (openssl_peer_test.go). The gateway is built
// once per run, started as a user starts it (`as2gate serve --config FILE`) on loopback
// ports, and judged only from outside: its REST API, its inbox folder, and what the peers
// report. `go test -v -run Gateway ./interop` prints one matrix line per case.

// gatewayDeadline bounds every wait on the gateway: a safety net for a hung process, not a
// timer anything waits for.
const gatewayDeadline = time.Minute

// gatewayStation is the AS2 id of the gateway's station in these tests.
const gatewayStation = "AS2GATE"

// Algorithm OIDs the OpenSSL peer reports that libas2_peer_test.go does not name.
const (
	opensslOIDAES128GCM     = "2.16.840.1.101.3.4.1.6"
	opensslOIDRSAPSS        = "1.2.840.113549.1.1.10"
	opensslOIDRSAEncryption = libas2OIDRSAPKCS1v15
	opensslOIDSHA1          = "1.3.14.3.2.26"
	opensslOIDSHA256        = "2.16.840.1.101.3.4.2.1"
	opensslOIDSHA512        = "2.16.840.1.101.3.4.2.3"
)

// buildGateway builds cmd/as2gate into a temporary folder and returns the binary.
func buildGateway(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "as2gate")
	if out, err := runErr(nil, "go", "build", "-o", bin, "../cmd/as2gate"); err != nil {
		t.Fatalf("building as2gate: %v\n%s", err, out)
	}
	return bin
}

// gatewayPartner is one partner of the gateway's configuration.
type gatewayPartner struct {
	AS2ID, URL, CertPath             string
	Sign, Encrypt, KeyTransport, MDN string // as the YAML spells them
	PSS, MDNSigned                   bool
}

// gatewayProcess is a running `as2gate serve`.
type gatewayProcess struct {
	AS2URL   string // where partners POST
	adminURL string
	token    string
	inbox    string // inbox_dir
	stderr   *lockedBuffer
}

// gatewayPorts returns n distinct loopback ports nothing listens on at the time of the call:
// the gateway must know its own public_url before it starts, so port 0 will not do.
func gatewayPorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		// Held until all are chosen, so that they differ.
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// startGateway writes a configuration with station and partners, starts the gateway, and
// returns once it says it is serving. It is stopped with SIGINT at the end of the test and
// must exit cleanly.
func startGateway(t testing.TB, bin string, station libas2Party, partners []gatewayPartner) *gatewayProcess {
	t.Helper()
	dir := t.TempDir()
	// Another process may take a free port before the gateway binds it: try again then. The
	// gateway's message is all a test can tell that case by.
	for try := 1; ; try++ {
		g, err := launchGateway(t, bin, dir, station, partners)
		if err == nil {
			return g
		}
		if try == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
	}
}

func launchGateway(t testing.TB, bin, dir string, station libas2Party, partners []gatewayPartner) (*gatewayProcess, error) {
	t.Helper()
	ports := gatewayPorts(t, 2)
	g := &gatewayProcess{
		AS2URL:   fmt.Sprintf("http://127.0.0.1:%d/as2", ports[0]),
		adminURL: fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		token:    "interop-" + opensslBoundary(),
		inbox:    filepath.Join(dir, "inbox"),
		stderr:   &lockedBuffer{},
	}
	var y strings.Builder
	fmt.Fprintf(&y, "data_dir: %q\ninbox_dir: %q\n", filepath.Join(dir, "data"), g.inbox)
	fmt.Fprintf(&y, "listen: {as2: \"127.0.0.1:%d\", admin: \"127.0.0.1:%d\"}\n", ports[0], ports[1])
	fmt.Fprintf(&y, "public_url: %q\nallow_private_mdn_urls: true\napi_tokens: [%q]\nlog: {format: json, level: info}\n", g.AS2URL, g.token)
	fmt.Fprintf(&y, "stations:\n  - as2_id: %s\n    key: %q\n    cert: %q\npartners:\n", station.AS2ID, station.KeyPath, station.CertPath)
	for _, p := range partners {
		fmt.Fprintf(&y, "  - as2_id: %s\n    station: %s\n    url: %q\n    certs: [%q]\n", p.AS2ID, station.AS2ID, p.URL, p.CertPath)
		fmt.Fprintf(&y, "    sign: %s\n    pss: %t\n    encrypt: %s\n    key_transport: %s\n", p.Sign, p.PSS, p.Encrypt, p.KeyTransport)
		fmt.Fprintf(&y, "    mdn: %s\n    mdn_signed: %t\n", p.MDN, p.MDNSigned)
		// A failed send shows in the attempts at once; no retry comes within the test.
		fmt.Fprintf(&y, "    retry: {failed: {strategy: exponential, attempts: 3, initial: 30s}}\n")
	}
	config := filepath.Join(dir, "as2gate.yaml")
	if err := os.WriteFile(config, []byte(y.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, "serve", "--config", config)
	cmd.Stderr = g.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting as2gate: %v", err)
	}
	ready, exited := make(chan struct{}), make(chan struct{})
	var waitErr error
	go func() {
		// serve prints its addresses once both listeners are bound.
		sc := bufio.NewScanner(stdout)
		for signalled := false; sc.Scan(); {
			if !signalled && strings.Contains(sc.Text(), "API and health") {
				close(ready)
				signalled = true
			}
		}
		waitErr = cmd.Wait()
		close(exited)
	}()
	deadline := time.NewTimer(gatewayDeadline)
	defer deadline.Stop()
	select {
	case <-ready:
	case <-exited:
		return nil, fmt.Errorf("as2gate serve exited before serving (%v): %s", waitErr, g.stderr.String())
	case <-deadline.C:
		cmd.Process.Kill()
		<-exited
		return nil, fmt.Errorf("as2gate serve not serving after %v: %s", gatewayDeadline, g.stderr.String())
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		stop := time.NewTimer(gatewayDeadline)
		defer stop.Stop()
		select {
		case <-exited:
			if waitErr != nil {
				t.Errorf("as2gate did not stop cleanly on SIGINT: %v", waitErr)
			}
		case <-stop.C:
			cmd.Process.Kill()
			<-exited
			t.Errorf("as2gate did not stop within %v of SIGINT", gatewayDeadline)
		}
		if t.Failed() {
			log := g.stderr.String()
			t.Logf("as2gate log (last 16 KB):\n%s", log[max(0, len(log)-16<<10):])
		}
	})
	return g, nil
}

// api calls the gateway's REST API and decodes its JSON answer into out.
func (g *gatewayProcess) api(t testing.TB, method, path string, body io.Reader, contentType string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, g.adminURL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+g.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := (&http.Client{Timeout: gatewayDeadline}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s %s: HTTP %d %s: %v", method, path, resp.StatusCode, b, err)
	}
	return resp.StatusCode
}

// gatewayMessage is the API's view of a message (GET /api/v1/messages/{id}).
type gatewayMessage struct {
	ID        int64  `json:"id"`
	MessageID string `json:"message_id"`
	Direction string `json:"direction"`
	Partner   string `json:"partner"`
	State     string `json:"state"`
	Files     []struct {
		Name   string `json:"name"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	} `json:"files"`
	MDN *struct {
		Disposition string `json:"disposition"`
		MICOK       bool   `json:"mic_ok"`
		Signed      bool   `json:"signed"`
	} `json:"mdn"`
	Attempts []struct {
		Class      string `json:"class"`
		Code       string `json:"code"`
		HTTPStatus int    `json:"http_status"`
		Error      string `json:"error"`
	} `json:"attempts"`
}

// submit posts one file to partner through the API and returns the new message's row id and
// Message-ID.
func (g *gatewayProcess) submit(t testing.TB, partner, filename, contentType string, content []byte) (int64, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("partner", partner)
	mw.WriteField("subject", "interop "+filename)
	mw.WriteField("content_type", contentType)
	w, err := mw.CreateFormFile("file", filename)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(content)
	mw.Close()
	var s struct {
		ID        int64  `json:"id"`
		MessageID string `json:"message_id"`
		State     string `json:"state"`
		Error     string `json:"error"`
	}
	if code := g.api(t, http.MethodPost, "/api/v1/messages", &buf, mw.FormDataContentType(), &s); code != http.StatusAccepted || s.State != "queued" {
		t.Fatalf("submitting to %s: HTTP %d %+v", partner, code, s)
	}
	return s.ID, s.MessageID
}

// gatewayPoll asks done every few milliseconds until it says true or the deadline passes; the
// gateway's API has no way to wait for a state change.
func gatewayPoll(t testing.TB, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(gatewayDeadline)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, gatewayDeadline)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outcome returns message id once it is sent or failed, or as soon as an attempt has
// failed: a failed attempt is retried only after 30 s, and the test is already decided.
func (g *gatewayProcess) outcome(t testing.TB, id int64) gatewayMessage {
	t.Helper()
	var m gatewayMessage
	gatewayPoll(t, fmt.Sprintf("message %d sent or failed", id), func() bool {
		m = gatewayMessage{}
		g.api(t, http.MethodGet, fmt.Sprintf("/api/v1/messages/%d", id), nil, "", &m)
		return m.State == "sent" || m.State == "failed" || len(m.Attempts) > 0
	})
	return m
}

// received returns the inbound message with this Message-ID once the gateway has it, and
// the bytes of its single payload from the inbox folder, once delivered there.
func (g *gatewayProcess) received(t testing.TB, messageID string) (gatewayMessage, []byte) {
	t.Helper()
	var m gatewayMessage
	gatewayPoll(t, "message "+messageID+" received", func() bool {
		var list struct{ Messages []gatewayMessage }
		g.api(t, http.MethodGet, "/api/v1/messages?box=received", nil, "", &list)
		i := slices.IndexFunc(list.Messages, func(m gatewayMessage) bool { return gatewaySameMessageID(m.MessageID, messageID) })
		if i < 0 {
			return false
		}
		g.api(t, http.MethodGet, fmt.Sprintf("/api/v1/messages/%d", list.Messages[i].ID), nil, "", &m)
		return true
	})
	if len(m.Files) != 1 {
		t.Fatalf("received message %s has %d files, want 1: %+v", messageID, len(m.Files), m)
	}
	// The tests' AS2 ids and file names need no sanitising: the inbox holds them as they are.
	path := filepath.Join(g.inbox, m.Partner, m.Files[0].Name)
	var content []byte
	gatewayPoll(t, path+" delivered", func() bool {
		var err error
		content, err = os.ReadFile(path)
		return err == nil
	})
	return m, content
}

// gatewaySameMessageID compares Message-IDs with or without their angle brackets.
func gatewaySameMessageID(a, b string) bool { return strings.Trim(a, "<> ") == strings.Trim(b, "<> ") }

func gatewaySHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// gatewayCheckReceived asserts that the gateway holds message messageID from partner with payload
// want under filename, in the API (name, size, SHA-256) and in the inbox folder (bytes).
func gatewayCheckReceived(c *matrixCase, g *gatewayProcess, messageID, partner, filename string, want []byte) {
	c.t.Helper()
	m, content := g.received(c.t, messageID)
	f := m.Files[0]
	if m.State != "received" || m.Direction != "in" || m.Partner != partner {
		c.Errorf("gateway shows %s %s from %s, want received (direction in) from %s", m.State, m.Direction, m.Partner, partner)
	}
	if f.Name != filename || f.Size != int64(len(want)) || f.SHA256 != gatewaySHA256(want) {
		c.Errorf("gateway file %s (%d bytes, sha256 %s), want %s (%d bytes, sha256 %s)", f.Name, f.Size, f.SHA256, filename, len(want), gatewaySHA256(want))
	}
	if !bytes.Equal(content, want) {
		c.Errorf("inbox file holds %d bytes that differ from the %d sent", len(content), len(want))
	}
}

// gatewayCheckSent asserts that the gateway shows m Sent with a positive MDN whose MIC matched,
// signed as asked.
func gatewayCheckSent(c *matrixCase, m gatewayMessage, signed bool) {
	c.t.Helper()
	if m.State != "sent" {
		c.Fatalf("gateway shows message %d %s, attempts %+v", m.ID, m.State, m.Attempts)
	}
	if m.MDN == nil || m.MDN.Disposition != "automatic-action/MDN-sent-automatically; processed" || !m.MDN.MICOK || m.MDN.Signed != signed {
		c.Errorf("gateway MDN %+v, want processed, MIC matched, signed %t", m.MDN, signed)
	}
}

// TestGatewayPeers runs the as2gate binary against libas2 and the OpenSSL peer, both ways.
func TestGatewayPeers(t *testing.T) {
	t.Parallel()
	bin := buildGateway(t)
	t.Run("libas2", func(t *testing.T) {
		t.Parallel()
		gatewayWithLibas2(t, bin)
	})
	t.Run("openssl", func(t *testing.T) {
		t.Parallel()
		gatewayWithOpenSSL(t, bin)
	})
}

// gatewayEDI is an X12 interchange with CRLF line ends between two of the tests' stations.
func gatewayEDI(from, to string, n int) []byte {
	return fmt.Appendf(nil, "ISA*00*          *00*          *ZZ*%-15s*ZZ*%-15s*260101*1200*U*00401*%09d*0*T*>~\r\n"+
		"GS*PO*%s*%s*20260101*1200*%d*X*004010~\r\nST*850*0001~\r\nBEG*00*SA*PO-%d**20260101~\r\nSE*3*0001~\r\nGE*1*%d~\r\nIEA*1*%09d~\r\n",
		from, to, n, from, to, n, n, n, n)
}

func gatewayWithLibas2(t *testing.T, bin string) {
	needLibas2(t)
	dir := t.TempDir()
	station := newLibas2Party(t, dir, gatewayStation)

	// What the gateway sends to libas2, one libas2 receiver per agreement. libas2 signs every
	// MDN without its last CRLF and keeps the CRLF before a boundary in a binary part: the
	// receivers work around both bugs, and each case must need exactly the workarounds it
	// names. Unpatched, libas2's signed MDN must fail the gateway's verification.
	libas2Fixes := []string{libas2FixSignCRLF, libas2FixPartCRLF}
	outbound := []struct {
		name     string
		party    libas2Party
		partner  gatewayPartner
		cipher   string   // the content encryption OID libas2 must report
		fixes    []string // the libas2 workarounds the receiver applies
		wantCode string   // the gateway's failure code; "": the message must reach Sent
	}{
		{"sha-256 aes256-cbc pkcs1v15, sync signed MDN", newLibas2Party(t, dir, "LIBAS2"),
			gatewayPartner{Sign: "sha256", Encrypt: "aes256-cbc", KeyTransport: "rsa-pkcs1v15", MDN: "sync", MDNSigned: true},
			libas2OIDAES256CBC, libas2Fixes, ""},
		{"sha-256 3des pkcs1v15, async signed MDN", newLibas2Party(t, dir, "LIBAS2-ASYNC"),
			gatewayPartner{Sign: "sha256", Encrypt: "3des", KeyTransport: "rsa-pkcs1v15", MDN: "async", MDNSigned: true},
			libas2OIDDESEDE3CBC, libas2Fixes, ""},
		{"sync signed MDN, libas2 sign-crlf bug unpatched", newLibas2Party(t, dir, "LIBAS2-UNPATCHED"),
			gatewayPartner{Sign: "sha256", Encrypt: "aes256-cbc", KeyTransport: "rsa-pkcs1v15", MDN: "sync", MDNSigned: true},
			libas2OIDAES256CBC, []string{libas2FixPartCRLF}, "mdn_signature_invalid"},
	}
	peer := outbound[0].party // also the sender of libas2 -> gateway
	receivers := make([]*libas2Receiver, len(outbound))
	var partners []gatewayPartner
	for i, o := range outbound {
		receivers[i] = startLibas2Receiver(t, libas2ReceiverConfig{Self: o.party, Partner: station, Count: 1, Fixes: o.fixes})
		p := o.partner
		p.AS2ID, p.URL, p.CertPath = o.party.AS2ID, receivers[i].URL, o.party.CertPath
		partners = append(partners, p)
	}
	g := startGateway(t, bin, station, partners)

	t.Run("libas2 -> gateway", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name, sign, encrypt, mdn, mdnSign string
		}{
			{"sha-256 aes256-cbc, sync signed MDN", "sha-256", "aes256-CBC", "sync", "sha-256"},
			{"sha-256 aes256-cbc, async signed MDN", "sha-256", "aes256-CBC", "async", "sha-256"},
			{"sha-256 3des, sync signed MDN", "sha-256", "des-EDE3-CBC", "sync", "sha-256"},
			{"sha-512 aes192-cbc, sync unsigned MDN", "sha-512", "aes192-CBC", "sync", "none"},
		}
		m := newInteropMatrix("libas2", "libas2 -> as2gate", len(tests))
		t.Run("cases", func(t *testing.T) {
			for i, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					c := m.start(t, i, tc.name)
					filename := fmt.Sprintf("invoice-%d.edi", i+1)
					content := gatewayEDI(peer.AS2ID, gatewayStation, i+1)
					file := filepath.Join(t.TempDir(), filename)
					if err := os.WriteFile(file, content, 0o600); err != nil {
						t.Fatal(err)
					}
					res, err := runLibas2Sender(t, libas2SendConfig{
						URL: g.AS2URL, Self: peer, Partner: station,
						Sign: tc.sign, Encrypt: tc.encrypt, MDN: tc.mdn, MDNSign: tc.mdnSign,
						File: file, ContentType: "application/edi-x12",
					})
					// libas2 exits 0 only when the MDN says processed, its MIC is the one
					// libas2 computed, and a signed MDN verifies with our certificate.
					if err != nil {
						c.Fatalf("%v (result %+v)", err, res)
					}
					if signed := tc.mdnSign != "none"; res.MDNSigned != signed || res.MICOK == nil || !*res.MICOK {
						c.Errorf("libas2 read an MDN signed %t with MIC match %v, want signed %t and a match", res.MDNSigned, res.MICOK, signed)
					}
					if tc.mdn == "sync" && res.MDNTransfer != "content-length" {
						c.Errorf("sync MDN sent %s, want with Content-Length", res.MDNTransfer)
					}
					gatewayCheckReceived(c, g, res.MessageID, peer.AS2ID, filename, content)
					c.checkFixes(res.FixesUsed, nil)
				})
			}
		})
		m.log(t)
	})

	t.Run("gateway -> libas2", func(t *testing.T) {
		t.Parallel()
		m := newInteropMatrix("libas2", "as2gate -> libas2", len(outbound))
		t.Run("cases", func(t *testing.T) {
			for i, o := range outbound {
				t.Run(o.name, func(t *testing.T) {
					t.Parallel()
					c := m.start(t, i, o.name)
					filename := fmt.Sprintf("po-%d.edi", i+1)
					content := gatewayEDI(gatewayStation, o.party.AS2ID, 100+i)
					id, messageID := g.submit(t, o.party.AS2ID, filename, "application/edi-x12", content)
					// The gateway's outcome comes first: when it never reached libas2 there
					// is no report to wait for.
					sent := g.outcome(t, id)
					if o.wantCode == "" {
						gatewayCheckSent(c, sent, true)
					} else if len(sent.Attempts) != 1 || sent.Attempts[0].Code != o.wantCode || sent.Attempts[0].Class != "permanent" || sent.State != "failed" {
						c.Fatalf("gateway shows message %d %s with attempts %+v, want failed with one permanent %s", id, sent.State, sent.Attempts, o.wantCode)
					} else {
						c.note("gateway refuses libas2's MDN: %s", o.wantCode)
					}
					got := receivers[i].next(t)
					if got.Error != "" || !gatewaySameMessageID(got.MessageID, messageID) {
						c.Fatalf("libas2 answered %s with %q, want %s processed", got.MessageID, got.Error, messageID)
					}
					if p := receivers[i].payload(t, got.N); !bytes.Equal(p, content) {
						c.Errorf("libas2 wrote %d bytes that differ from the %d submitted", len(p), len(content))
					}
					if got.Envelope == nil || got.Envelope.ContentEncryption != o.cipher || got.Envelope.KeyTransport != libas2OIDRSAPKCS1v15 {
						c.Errorf("libas2 saw envelope %+v, want %s with PKCS#1 v1.5 key transport", got.Envelope, o.cipher)
					}
					if !slices.Contains(got.Steps, "verified sha-256") || got.Micalg != "sha-256" {
						c.Errorf("libas2 steps %v, micalg %q: want a sha-256 signature verified", got.Steps, got.Micalg)
					}
					if got.MDN != o.partner.MDN || (got.MDN == "async" && got.AsyncStatus != http.StatusOK) {
						c.Errorf("libas2 sent its MDN %s (async status %d %s), want %s", got.MDN, got.AsyncStatus, got.AsyncError, o.partner.MDN)
					}
					c.checkFixes(got.FixesUsed, o.fixes)
				})
			}
		})
		m.log(t)
	})
}

func gatewayWithOpenSSL(t *testing.T, bin string) {
	need(t, "openssl")
	dir := t.TempDir()
	station := newLibas2Party(t, dir, gatewayStation)
	peer := newLibas2Party(t, dir, "OSSL")
	receiver := startOpenSSLReceiver(t, newOpenSSLAS2(t, peer.AS2ID, peer.CertPath, peer.KeyPath, station.CertPath))

	// What the gateway sends to the OpenSSL receiver: one partner (all of them the same
	// receiver) per agreement.
	outbound := []struct {
		name    string
		partner gatewayPartner
		micalg  string   // of the multipart/signed
		digest  string   // the OID of the signature's digest
		algs    []string // what openssl must name in the envelope (see opensslAS2.algorithms)
	}{
		{"sha-256 aes256-cbc pkcs1v15, sync signed MDN",
			gatewayPartner{AS2ID: "OSSL", Sign: "sha256", Encrypt: "aes256-cbc", KeyTransport: "rsa-pkcs1v15", MDN: "sync", MDNSigned: true},
			"sha-256", opensslOIDSHA256, []string{opensslOIDRSAEncryption, libas2OIDAES256CBC}},
		{"sha-512 pss aes128-gcm oaep-sha256, sync signed MDN",
			gatewayPartner{AS2ID: "OSSL-GCM", Sign: "sha512", PSS: true, Encrypt: "aes128-gcm", KeyTransport: "rsa-oaep-sha256", MDN: "sync", MDNSigned: true},
			"sha-512", opensslOIDSHA512, []string{libas2OIDRSAESOAEP, "sha256", opensslOIDAES128GCM}},
		{"sha-1 3des pkcs1v15, async signed MDN",
			gatewayPartner{AS2ID: "OSSL-ASYNC", Sign: "sha1", Encrypt: "3des", KeyTransport: "rsa-pkcs1v15", MDN: "async", MDNSigned: true},
			"sha-1", opensslOIDSHA1, []string{opensslOIDRSAEncryption, libas2OIDDESEDE3CBC}},
	}
	var partners []gatewayPartner
	for _, o := range outbound {
		p := o.partner
		p.URL, p.CertPath = receiver.URL, peer.CertPath
		partners = append(partners, p)
	}
	g := startGateway(t, bin, station, partners)

	t.Run("openssl -> gateway", func(t *testing.T) {
		t.Parallel()
		sender := newOpenSSLAS2(t, peer.AS2ID, peer.CertPath, peer.KeyPath, station.CertPath)
		// Signing as OSSL with a key the gateway does not trust; 1024 bits keeps it apart
		// from the cached 2048-bit keys of the real parties.
		impCert, impKey := cmstest.New(t, peer.AS2ID, &cmstest.Options{Bits: 1024}).WriteFiles(t, t.TempDir(), "impostor")
		impostorSender := newOpenSSLAS2(t, peer.AS2ID, impCert, impKey, station.CertPath)

		tests := []struct {
			name            string
			from            *opensslAS2
			msg             opensslOutbound
			wantDisposition string // "": processed
		}{
			{"sha-256 aes256-cbc pkcs1v15, sync signed MDN", sender,
				opensslOutbound{Sign: "sha256", Encrypt: "aes256", MDN: "sync", MDNSign: "sha256"}, ""},
			{"sha-384 pss aes128-gcm oaep-sha256, sync signed MDN", sender,
				opensslOutbound{Sign: "sha384", PSS: true, Encrypt: "aes-128-gcm", OAEP: "sha256", MDN: "sync", MDNSign: "sha256"}, ""},
			{"sha-1 3des pkcs1v15, async signed MDN", sender,
				opensslOutbound{Sign: "sha1", Encrypt: "des3", MDN: "async", MDNSign: "sha1"}, ""},
			{"sha-512 aes192-cbc oaep-sha512, sync unsigned MDN", sender,
				opensslOutbound{Sign: "sha512", Encrypt: "aes192", OAEP: "sha512", MDN: "sync"}, ""},
			{"signed with an untrusted key", impostorSender,
				opensslOutbound{Sign: "sha256", Encrypt: "aes256", MDN: "sync", MDNSign: "sha256"}, "processed/error: decryption-failed"},
			{"signed with an untrusted key, not encrypted", impostorSender,
				opensslOutbound{Sign: "sha256", MDN: "sync", MDNSign: "sha256"}, "processed/error: authentication-failed"},
		}
		m := newInteropMatrix("openssl", "openssl -> as2gate", len(tests))
		t.Run("cases", func(t *testing.T) {
			for i, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					c := m.start(t, i, tc.name)
					msg := tc.msg
					msg.Filename = fmt.Sprintf("orders-%d.edi", i+1)
					msg.ContentType = "application/EDIFACT"
					msg.Payload = smimePayload()
					var sink *opensslMDNSink
					if msg.MDN == "async" {
						sink = startOpenSSLMDNSink(t)
						msg.ReceiptURL = sink.URL
					}
					ctx, cancel := context.WithTimeout(context.Background(), opensslPeerDeadline)
					defer cancel()
					sent, err := tc.from.send(ctx, g.AS2URL, gatewayStation, msg)
					if err != nil {
						c.Fatalf("%v", err)
					}
					if sent.Status != http.StatusOK {
						c.Fatalf("gateway answered HTTP %d: %s", sent.Status, sent.Body)
					}
					contentType, body := sent.Header.Get("Content-Type"), sent.Body
					if sink != nil {
						if len(body) != 0 {
							c.Errorf("gateway answered an async MDN request with a %d-byte body", len(body))
						}
						contentType, body = sink.next(t)
					} else if sent.Header.Get("Content-Length") == "" {
						c.Errorf("sync MDN without Content-Length")
					}
					// The signed receipt verifies with openssl over its first part as sent.
					mdn, err := sender.readMDN(contentType, body)
					if err != nil {
						c.Fatalf("%v", err)
					}
					if mdn.Signed != (msg.MDNSign != "") || (mdn.Signed && opensslDigestName(mdn.Micalg) != msg.MDNSign) {
						c.Errorf("MDN signed %t with micalg %q, want signed %t with %s", mdn.Signed, mdn.Micalg, msg.MDNSign != "", msg.MDNSign)
					}
					if !gatewaySameMessageID(mdn.OriginalMessageID, sent.MessageID) {
						c.Errorf("MDN Original-Message-ID %s, sent %s", mdn.OriginalMessageID, sent.MessageID)
					}
					want := "automatic-action/MDN-sent-automatically; " + cmp.Or(tc.wantDisposition, "processed")
					if mdn.Disposition != want {
						c.Fatalf("MDN disposition %q, want %q", mdn.Disposition, want)
					}
					if tc.wantDisposition != "" {
						c.note("negative MDN %q verified with openssl", tc.wantDisposition)
						return
					}
					// The MIC the gateway returns is openssl's digest of what was signed.
					if !opensslSameMIC(mdn.ReceivedMIC, sent.ExpectedMIC) {
						c.Errorf("Received-Content-MIC %q, openssl dgst says %q", mdn.ReceivedMIC, sent.ExpectedMIC)
					}
					gatewayCheckReceived(c, g, sent.MessageID, peer.AS2ID, msg.Filename, msg.Payload)
					if mdn.Signed {
						c.note("signed MDN verified by openssl cms -verify, MIC matches openssl dgst")
					} else {
						c.note("MIC matches openssl dgst")
					}
				})
			}
		})
		m.log(t)
	})

	t.Run("gateway -> openssl", func(t *testing.T) {
		t.Parallel()
		m := newInteropMatrix("openssl", "as2gate -> openssl", len(outbound))
		t.Run("cases", func(t *testing.T) {
			for i, o := range outbound {
				t.Run(o.name, func(t *testing.T) {
					t.Parallel()
					c := m.start(t, i, o.name)
					filename := fmt.Sprintf("orders-%d.edi", i+1)
					content := smimePayload()
					id, messageID := g.submit(t, o.partner.AS2ID, filename, "application/EDIFACT", content)
					sent := g.outcome(t, id)
					if r, ok := receiver.report(messageID); ok && r.Err != nil {
						c.Fatalf("the OpenSSL receiver: %v", r.Err)
					}
					gatewayCheckSent(c, sent, true)
					got := receiver.next(t, messageID)
					if got.Err != nil {
						c.Fatalf("the OpenSSL receiver: %v", got.Err)
					}
					if !bytes.Equal(got.Payload, content) || got.Filename != filename {
						c.Errorf("openssl got %s with %d bytes that differ from the %d of %s", got.Filename, len(got.Payload), len(content), filename)
					}
					if got.Micalg != o.micalg || !slices.Contains(got.Signature, o.digest) {
						c.Errorf("multipart/signed micalg %q, signature algorithms %v: want %s with digest %s", got.Micalg, got.Signature, o.micalg, o.digest)
					}
					if slices.Contains(got.Signature, opensslOIDRSAPSS) != o.partner.PSS {
						c.Errorf("signature algorithms %v, want RSASSA-PSS %t", got.Signature, o.partner.PSS)
					}
					for _, oid := range o.algs {
						if !slices.Contains(got.Envelope, oid) {
							c.Errorf("openssl cms -print names %v in the envelope, want %s among them", got.Envelope, oid)
						}
					}
					if got.MDN != o.partner.MDN {
						c.Errorf("the OpenSSL receiver sent its MDN %s, want %s", got.MDN, o.partner.MDN)
					}
					if o.partner.PSS {
						c.note("RSASSA-PSS signature verified by openssl")
					}
				})
			}
		})
		m.log(t)
	})
}
