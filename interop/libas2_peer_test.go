package interop

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/as2gate/as2gate/cms/cmstest"
)

// The Node harness in libas2/ runs the libas2 npm package as an AS2 partner: `peer.js
// receive` and `peer.js send`. These helpers start it and read its JSON reports.

// libas2Dir is the harness folder, relative to this package.
const libas2Dir = "libas2"

// libas2Deadline bounds every wait on the harness. It is a safety net for a hung process,
// not a timer anything waits for: every wait ends on an event first.
const libas2Deadline = 2 * time.Minute

// libas2 bug workarounds in peer.js (its --fix names). A test names the ones it needs, and
// the reports say which of them changed an outcome.
const (
	// libas2FixSignCRLF: libas2 signs a multipart entity (every signed MDN) or text ending in a
	// line break without its final CRLF, so the signature verifies nowhere.
	libas2FixSignCRLF = "sign-crlf"
	// libas2FixBinaryParts: libas2 re-encodes parsed 8-bit parts as UTF-8 before verifying them.
	libas2FixBinaryParts = "binary-parts"
	// libas2FixBigPayload: libas2's parser overflows the call stack above about 125 KB.
	libas2FixBigPayload = "big-payload"
	// libas2FixRFCDisposition: libas2 writes "processed/error=x" instead of "processed/error: x".
	libas2FixRFCDisposition = "rfc-disposition"
	// libas2FixEmbedPartnerCert: libas2 verifies only signatures that embed the signer's
	// certificate.
	libas2FixEmbedPartnerCert = "embed-partner-cert"
)

// Object identifiers peer.js reports for an EnvelopedData libas2 received.
const (
	libas2OIDRSAESOAEP   = "1.2.840.113549.1.1.7"
	libas2OIDRSAPKCS1v15 = "1.2.840.113549.1.1.1"
	libas2OIDDESEDE3CBC  = "1.2.840.113549.3.7"
	libas2OIDAES128CBC   = "2.16.840.1.101.3.4.1.2"
	libas2OIDAES192CBC   = "2.16.840.1.101.3.4.1.22"
	libas2OIDAES256CBC   = "2.16.840.1.101.3.4.1.42"
)

// needLibas2 returns the node binary, skipping (or failing in CI) when node or the npm
// install of the harness is missing.
func needLibas2(t testing.TB) string {
	t.Helper()
	node := need(t, "node")
	needFile(t, filepath.Join(libas2Dir, "node_modules", "libas2", "package.json"))
	return node
}

// libas2Party is an AS2 identity written where peer.js can read it.
type libas2Party struct {
	AS2ID    string
	Identity *cmstest.Identity
	CertPath string // PEM certificate
	KeyPath  string // unencrypted PKCS#8 PEM key
}

// newLibas2Party makes a throwaway identity with AS2 id as2ID and writes it to dir.
func newLibas2Party(t testing.TB, dir, as2ID string) libas2Party {
	t.Helper()
	id := cmstest.New(t, as2ID, nil)
	certPath, keyPath := id.WriteFiles(t, dir, strings.ToLower(as2ID))
	return libas2Party{AS2ID: as2ID, Identity: id, CertPath: certPath, KeyPath: keyPath}
}

// libas2ReceiverConfig describes a `peer.js receive`.
type libas2ReceiverConfig struct {
	Self          libas2Party // the identity libas2 receives as
	Partner       libas2Party // the only sender it accepts
	Count         int         // exit after answering this many messages; 0: until the deadline
	RequireSigned bool        // refuse unsigned messages (insufficient-message-security)
	Fixes         []string    // libas2 bug workarounds to apply
}

// libas2Received is peer.js's report on one message it answered.
type libas2Received struct {
	N            int      `json:"n"`
	MessageID    string   `json:"messageId"`
	AS2From      string   `json:"as2From"`
	AS2To        string   `json:"as2To"`
	MDNRequested string   `json:"mdnRequested"` // sync, async or none
	MDNSignAlg   string   `json:"mdnSignAlg"`   // empty: unsigned MDN
	Steps        []string `json:"steps"`        // "decrypted", "verified sha-256"
	Envelope     *struct {
		KeyTransport      string `json:"keyTransport"`
		ContentEncryption string `json:"contentEncryption"`
	} `json:"envelope"`
	Micalg string `json:"micalg"` // the micalg parameter of multipart/signed
	MIC    *struct {
		MIC       string `json:"mic"`
		Algorithm string `json:"algorithm"`
	} `json:"mic"`
	PayloadBytes  int      `json:"payloadBytes"`
	PayloadSHA256 string   `json:"payloadSha256"`
	Disposition   string   `json:"disposition"`
	MDN           string   `json:"mdn"` // how the MDN went back: sync, async or none
	AsyncStatus   int      `json:"asyncStatus"`
	AsyncError    string   `json:"asyncError"`
	Error         string   `json:"error"`
	Fixes         []string `json:"fixes"`
	FixesUsed     []string `json:"fixesUsed"`
}

// libas2Receiver is a running `peer.js receive`.
type libas2Receiver struct {
	URL string // where to POST AS2 messages
	Out string // folder of N.payload and N.json

	messages chan libas2Received
	exited   chan struct{} // closed when the process has ended
	waitErr  error         // the process's exit status, set before exited closes
	stderr   *lockedBuffer
}

// startLibas2Receiver starts peer.js receive on a free port of 127.0.0.1 and returns once
// it has said it is listening. The process is killed at the end of the test.
func startLibas2Receiver(t testing.TB, cfg libas2ReceiverConfig) *libas2Receiver {
	t.Helper()
	node := needLibas2(t)
	r := &libas2Receiver{
		Out:      t.TempDir(),
		messages: make(chan libas2Received, 64),
		exited:   make(chan struct{}),
		stderr:   &lockedBuffer{},
	}
	args := []string{
		// libas2 decrypts PKCS#1 v1.5 key transport with RSA_PKCS1_PADDING, which Node 20
		// refuses without this.
		"--security-revert=CVE-2023-46809",
		"peer.js", "receive", "--port", "0",
		"--as2-id", cfg.Self.AS2ID, "--cert", cfg.Self.CertPath, "--key", cfg.Self.KeyPath,
		"--partner-id", cfg.Partner.AS2ID, "--partner-cert", cfg.Partner.CertPath,
		"--out", r.Out, "--timeout", strconv.Itoa(int(libas2Deadline / time.Second)),
	}
	if cfg.Count > 0 {
		args = append(args, "--count", strconv.Itoa(cfg.Count))
	}
	if cfg.RequireSigned {
		args = append(args, "--require-signed")
	}
	if len(cfg.Fixes) > 0 {
		args = append(args, "--fix", strings.Join(cfg.Fixes, ","))
	}
	cmd := exec.Command(node, args...)
	cmd.Dir = libas2Dir
	cmd.Stderr = r.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting peer.js receive: %v", err)
	}
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			_ = cmd.Process.Kill()
			<-r.exited
		}
		if t.Failed() {
			t.Logf("peer.js receive standard error:\n%s", r.stderr.String())
		}
	})

	ready := make(chan int, 1)
	go func() {
		// Node prints a SECURITY WARNING line for --security-revert on standard output:
		// only lines that are JSON objects are the harness's.
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if !bytes.HasPrefix(line, []byte("{")) {
				continue
			}
			var ev struct {
				Listening int             `json:"listening"`
				Message   *libas2Received `json:"message"`
			}
			if err := json.Unmarshal(line, &ev); err != nil {
				fmt.Fprintf(r.stderr, "as2gate test: unreadable line from peer.js: %v: %s\n", err, line)
				continue
			}
			switch {
			case ev.Listening != 0:
				ready <- ev.Listening
			case ev.Message != nil:
				r.messages <- *ev.Message
			}
		}
		r.waitErr = cmd.Wait()
		close(r.exited)
	}()

	deadline := time.NewTimer(libas2Deadline)
	defer deadline.Stop()
	select {
	case port := <-ready:
		r.URL = fmt.Sprintf("http://127.0.0.1:%d/as2", port)
	case <-r.exited:
		t.Fatalf("peer.js receive exited before listening: %v\n%s", r.waitErr, r.stderr.String())
	case <-deadline.C:
		t.Fatalf("peer.js receive not listening after %v\n%s", libas2Deadline, r.stderr.String())
	}
	return r
}

// next returns the report on the next message the receiver answered.
func (r *libas2Receiver) next(t testing.TB) libas2Received {
	t.Helper()
	deadline := time.NewTimer(libas2Deadline)
	defer deadline.Stop()
	select {
	case m := <-r.messages:
		return m
	case <-r.exited:
		// The process may have reported its last message just before exiting.
		select {
		case m := <-r.messages:
			return m
		default:
		}
		t.Fatalf("peer.js receive exited (%v) without reporting a message\n%s", r.waitErr, r.stderr.String())
	case <-deadline.C:
		t.Fatalf("peer.js receive reported no message within %v", libas2Deadline)
	}
	return libas2Received{}
}

// payload returns the payload libas2 extracted from message n.
func (r *libas2Receiver) payload(t testing.TB, n int) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.Out, strconv.Itoa(n)+".payload"))
	if err != nil {
		t.Fatalf("libas2 stored no payload for message %d: %v", n, err)
	}
	return b
}

// libas2SendConfig describes a `peer.js send`.
type libas2SendConfig struct {
	URL         string
	Self        libas2Party // the identity libas2 sends as
	Partner     libas2Party // the receiver: its certificate encrypts and verifies the MDN
	Sign        string      // sha-1, sha-256, sha-384, sha-512 or none
	Encrypt     string      // des-EDE3-CBC, aes128-CBC, aes192-CBC, aes256-CBC or none
	MDN         string      // sync, async or none
	MDNSign     string      // the MIC algorithm asked for a signed MDN, or none for an unsigned one
	File        string      // the payload; empty: a small X12 sample
	ContentType string      // of the payload; empty: application/edi-x12
	Transfer    string      // base64 (what libas2 does) or binary
	Fixes       []string
}

// libas2SendResult is peer.js's report on one message it sent.
type libas2SendResult struct {
	MessageID      string `json:"messageId"`
	HTTPStatus     int    `json:"httpStatus"`
	ExpectedMIC    string `json:"expectedMIC"`
	MICAlg         string `json:"micAlg"`
	MDNTransfer    string `json:"mdnTransfer"` // chunked or content-length (sync MDNs)
	MDNContentType string `json:"mdnContentType"`
	MDNSigned      bool   `json:"mdnSigned"`
	MDNSignatureOK *bool  `json:"mdnSignatureOk"` // nil when the MDN was not signed
	Disposition    string `json:"disposition"`
	ReceivedMIC    *struct {
		MIC       string `json:"mic"`
		Algorithm string `json:"algorithm"`
	} `json:"receivedMIC"`
	MICOK     *bool    `json:"micOk"` // nil when the MDN carried no MIC
	OK        bool     `json:"ok"`    // processed, MIC matches, signature verifies as asked
	Error     string   `json:"error"`
	Fixes     []string `json:"fixes"`
	FixesUsed []string `json:"fixesUsed"`
}

// runLibas2Sender runs peer.js send and returns its report. The error is non-nil when
// libas2 did not confirm the exchange (the report says why) or when the harness failed.
func runLibas2Sender(t testing.TB, cfg libas2SendConfig) (libas2SendResult, error) {
	t.Helper()
	node := needLibas2(t)
	args := []string{
		"peer.js", "send", "--url", cfg.URL,
		"--from", cfg.Self.AS2ID, "--to", cfg.Partner.AS2ID,
		"--cert", cfg.Self.CertPath, "--key", cfg.Self.KeyPath, "--partner-cert", cfg.Partner.CertPath,
		"--timeout", strconv.Itoa(int(libas2Deadline / time.Second)),
	}
	for _, o := range []struct{ flag, value string }{
		{"--sign", cfg.Sign}, {"--encrypt", cfg.Encrypt}, {"--mdn", cfg.MDN}, {"--mdn-sign", cfg.MDNSign},
		{"--file", cfg.File}, {"--content-type", cfg.ContentType}, {"--transfer", cfg.Transfer},
		{"--fix", strings.Join(cfg.Fixes, ",")},
	} {
		if o.value != "" {
			args = append(args, o.flag, o.value)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), libas2Deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = libas2Dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	var res libas2SendResult
	found := false
	for line := range bytes.Lines(stdout.Bytes()) {
		var ev struct {
			Result *libas2SendResult `json:"result"`
		}
		if bytes.HasPrefix(line, []byte("{")) && json.Unmarshal(line, &ev) == nil && ev.Result != nil {
			res, found = *ev.Result, true
		}
	}
	switch {
	case !found:
		return res, fmt.Errorf("peer.js send printed no result (%v): %s", runErr, stderr.String())
	case runErr != nil:
		var ee *exec.ExitError
		if errors.As(runErr, &ee) && ee.ExitCode() == 1 {
			return res, fmt.Errorf("libas2 did not confirm the exchange: %s", res.Error)
		}
		return res, fmt.Errorf("peer.js send: %v: %s %s", runErr, res.Error, stderr.String())
	}
	return res, nil
}

// lockedBuffer collects a process's standard error while tests read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLibas2SelfLoop checks the harness against itself: libas2 sends to libas2 over
// loopback with every signing hash and cipher libas2 offers and every MDN mode, and both
// ends must agree on the payload, the algorithms and the MIC. Gateway interop tests rely on
// each half of peer.js doing exactly this.
func TestLibas2SelfLoop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sender := newLibas2Party(t, dir, "LIBAS2A")
	receiver := newLibas2Party(t, dir, "LIBAS2B")

	payload := filepath.Join(dir, "order.edi")
	content := []byte("ISA*00*          *00*          *ZZ*LIBAS2A        *ZZ*LIBAS2B        *260101*1200*U*00401*000000042*0*T*>~\r\n" +
		"GS*PO*LIBAS2A*LIBAS2B*20260101*1200*42*X*004010~\r\nST*850*0001~\r\nSE*2*0001~\r\nGE*1*42~\r\nIEA*1*000000042~\r\n")
	if err := os.WriteFile(payload, content, 0o600); err != nil {
		t.Fatal(err)
	}
	// Above the ~125 KB where libas2's parser overflows the stack.
	big := filepath.Join(dir, "big.bin")
	bigContent := bytes.Repeat([]byte{0x00, 0x80, 0xff, 'A', '\r', '\n', 0x1b}, 300<<10/7)
	if err := os.WriteFile(big, bigContent, 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		sign    string
		encrypt string
		cipher  string // content encryption OID libas2 must have received
		mdn     string
		mdnSign string
		file    string
		want    []byte
	}{
		{"sha-1 aes256-CBC", "sha-1", "aes256-CBC", libas2OIDAES256CBC, "sync", "sha-1", payload, content},
		{"sha-256 aes256-CBC", "sha-256", "aes256-CBC", libas2OIDAES256CBC, "sync", "sha-256", payload, content},
		{"sha-384 aes256-CBC", "sha-384", "aes256-CBC", libas2OIDAES256CBC, "sync", "sha-384", payload, content},
		{"sha-512 aes256-CBC", "sha-512", "aes256-CBC", libas2OIDAES256CBC, "sync", "sha-512", payload, content},
		{"sha-256 3DES", "sha-256", "des-EDE3-CBC", libas2OIDDESEDE3CBC, "sync", "sha-256", payload, content},
		{"sha-256 aes128-CBC", "sha-256", "aes128-CBC", libas2OIDAES128CBC, "sync", "sha-256", payload, content},
		{"sha-256 aes192-CBC", "sha-256", "aes192-CBC", libas2OIDAES192CBC, "sync", "sha-256", payload, content},
		{"signed only", "sha-256", "none", "", "sync", "sha-256", payload, content},
		{"encrypted only", "none", "aes128-CBC", libas2OIDAES128CBC, "sync", "sha-256", payload, content},
		{"neither signed nor encrypted", "none", "none", "", "sync", "none", payload, content},
		{"unsigned MDN", "sha-256", "aes256-CBC", libas2OIDAES256CBC, "sync", "none", payload, content},
		{"async MDN", "sha-256", "aes256-CBC", libas2OIDAES256CBC, "async", "sha-256", payload, content},
		{"no MDN", "sha-256", "aes256-CBC", libas2OIDAES256CBC, "none", "sha-256", payload, content},
		{"300 KB binary", "sha-512", "aes192-CBC", libas2OIDAES192CBC, "sync", "sha-512", big, bigContent},
	}

	// libas2 cannot verify its own signed MDNs nor decrypt big payloads without these.
	fixes := []string{libas2FixSignCRLF, libas2FixBigPayload}
	r := startLibas2Receiver(t, libas2ReceiverConfig{Self: receiver, Partner: sender, Count: len(tests), Fixes: fixes})
	for _, tc := range tests {
		// One receiver answers the cases in turn; they share it, so they run in sequence.
		t.Run(tc.name, func(t *testing.T) {
			res, err := runLibas2Sender(t, libas2SendConfig{
				URL: r.URL, Self: sender, Partner: receiver,
				Sign: tc.sign, Encrypt: tc.encrypt, MDN: tc.mdn, MDNSign: tc.mdnSign, File: tc.file,
				Fixes: fixes,
			})
			got := r.next(t)
			if err != nil {
				t.Fatalf("%v\nreceiver: %+v", err, got)
			}
			if got.Error != "" || got.MessageID != res.MessageID {
				t.Fatalf("receiver reported %q for %s, want %s processed", got.Error, got.MessageID, res.MessageID)
			}
			if p := r.payload(t, got.N); !bytes.Equal(p, tc.want) {
				t.Errorf("libas2 received %d bytes, want the %d sent", len(p), len(tc.want))
			}
			if tc.cipher != "" {
				if got.Envelope == nil || got.Envelope.ContentEncryption != tc.cipher || got.Envelope.KeyTransport != libas2OIDRSAESOAEP {
					t.Errorf("envelope %+v, want %s with RSA-OAEP key transport", got.Envelope, tc.cipher)
				}
			} else if got.Envelope != nil {
				t.Errorf("envelope %+v on an unencrypted message", got.Envelope)
			}
			if tc.sign != "none" && (got.MIC == nil || got.MIC.Algorithm != tc.sign || got.Micalg != tc.sign) {
				t.Errorf("MIC %+v with micalg %q, want %s", got.MIC, got.Micalg, tc.sign)
			}
			if got.MDN != tc.mdn || (tc.mdn == "async" && got.AsyncStatus != 200) {
				t.Errorf("MDN went back %q (async status %d %s), want %s", got.MDN, got.AsyncStatus, got.AsyncError, tc.mdn)
			}
			if tc.mdn != "none" {
				if res.Disposition != "automatic-action/MDN-sent-automatically; processed" || res.MICOK == nil || !*res.MICOK {
					t.Errorf("sender read disposition %q, MIC match %v", res.Disposition, res.MICOK)
				}
				if signed := tc.mdnSign != "none"; res.MDNSigned != signed || (signed && (res.MDNSignatureOK == nil || !*res.MDNSignatureOK)) {
					t.Errorf("MDN signed %v (signature verified %v), want signed %v", res.MDNSigned, res.MDNSignatureOK, signed)
				}
			}
			if tc.mdn == "sync" && res.MDNTransfer != "content-length" {
				t.Errorf("sync MDN sent %s, want with Content-Length", res.MDNTransfer)
			}
			for _, f := range append(res.FixesUsed, got.FixesUsed...) {
				t.Logf("libas2 bug %s worked around", f)
			}
		})
	}
}

// TestLibas2SignedMDNBug pins the libas2 bug that libas2FixSignCRLF works around: without
// it, libas2 cannot verify the signed MDN it produced itself. If a libas2 release fixes the
// bug this test fails, and the workaround can go.
func TestLibas2SignedMDNBug(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sender := newLibas2Party(t, dir, "LIBAS2A")
	receiver := newLibas2Party(t, dir, "LIBAS2B")
	r := startLibas2Receiver(t, libas2ReceiverConfig{Self: receiver, Partner: sender, Count: 1})
	res, err := runLibas2Sender(t, libas2SendConfig{
		URL: r.URL, Self: sender, Partner: receiver, Sign: "sha-256", Encrypt: "aes256-CBC", MDN: "sync", MDNSign: "sha-256",
	})
	got := r.next(t)
	if got.Error != "" || got.Disposition != "automatic-action/MDN-sent-automatically; processed" {
		t.Fatalf("receiver: %+v", got)
	}
	if err == nil || !res.MDNSigned || res.MDNSignatureOK == nil || *res.MDNSignatureOK {
		t.Fatalf("libas2 verified its own signed MDN without the %s workaround (err %v, result %+v): the bug is fixed, drop the workaround",
			libas2FixSignCRLF, err, res)
	}
}
