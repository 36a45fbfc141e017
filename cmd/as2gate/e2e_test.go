package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/cms/cmstest"
	"github.com/as2gate/as2gate/internal/config"
)

// node is one gateway started in-process on loopback ports chosen by the system.
type node struct {
	t     *testing.T
	id    string
	cfg   *config.Config
	gw    *Gateway
	token string
	done  chan error
	stop  context.CancelFunc
}

// agreement is what one side of a pair sends.
type agreement struct {
	sign, encrypt, compress, mdn, keyTransport string
	pss, mdnSigned                             bool
}

func (a agreement) String() string {
	return fmt.Sprintf("sign=%s pss=%v encrypt=%s compress=%s mdn=%s signed=%v", a.sign, a.pss, a.encrypt, a.compress, a.mdn, a.mdnSigned)
}

// startPair starts two gateways, A and B, each the other's partner under agreement a, and
// points them at each other.
func startPair(t *testing.T, a agreement) (*node, *node) {
	t.Helper()
	dir := t.TempDir()
	idA, idB := cmstest.New(t, "GW-A", nil), cmstest.New(t, "GW-B", nil)
	certA, keyA := idA.WriteFiles(t, dir, "a")
	certB, keyB := idB.WriteFiles(t, dir, "b")
	A := startNode(t, filepath.Join(dir, "A"), "GW-A", certA, keyA, "GW-B", certB, a)
	B := startNode(t, filepath.Join(dir, "B"), "GW-B", certB, keyB, "GW-A", certA, a)
	A.cfg.Partner("GW-B").URL = "http://" + B.gw.AS2Addr().String() + "/as2"
	B.cfg.Partner("GW-A").URL = "http://" + A.gw.AS2Addr().String() + "/as2"
	return A, B
}

// startNode starts one gateway; extraYAML adds top-level settings.
func startNode(t *testing.T, dir, id, cert, key, partner, partnerCert string, a agreement, extraYAML ...string) *node {
	t.Helper()
	return startNodeLog(t, nil, dir, id, cert, key, partner, partnerCert, a, extraYAML...)
}

// startNodeLog is startNode with the gateway logging to logger (nil: discarded, or warnings
// to standard error with -v).
func startNodeLog(t *testing.T, logger *slog.Logger, dir, id, cert, key, partner, partnerCert string, a agreement, extraYAML ...string) *node {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`data_dir: %s
listen: {as2: "127.0.0.1:0", admin: "127.0.0.1:0"}
public_url: http://127.0.0.1:1/as2
allow_private_mdn_urls: true
log: {format: json, level: warn}
stations:
  - as2_id: %s
    key: %s
    cert: %s
partners:
  - as2_id: %s
    station: %s
    url: http://127.0.0.1:1/as2
    certs: [%s]
    sign: %s
    pss: %v
    encrypt: %s
    key_transport: %s
    compress: %s
    mdn: %s
    mdn_signed: %v
    retry:
      failed: {strategy: exponential, attempts: 3, initial: 1s}
`, filepath.Join(dir, "data"), id, key, cert, partner, id, partnerCert, a.sign, a.pss, a.encrypt, a.keyTransport, a.compress, a.mdn, a.mdnSigned)
	yaml += strings.Join(extraYAML, "\n")
	path := filepath.Join(dir, "as2gate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := cfg.EnsureAPIToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if logger != nil {
		log = logger
	}
	gw, err := Open(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	cfg.PublicURL = "http://" + gw.AS2Addr().String() + "/as2"
	n := &node{t: t, id: id, cfg: cfg, gw: gw, token: token, done: make(chan error, 1), stop: cancel}
	go func() { n.done <- gw.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-n.done; err != nil {
			t.Errorf("%s: Run: %v", id, err)
		}
		gw.Close()
	})
	return n
}

func (n *node) api(method, path string, body io.Reader, contentType string, out any) int {
	n.t.Helper()
	req, err := http.NewRequest(method, "http://"+n.gw.AdminAddr().String()+path, body)
	if err != nil {
		n.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+n.token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			n.t.Fatalf("%s %s: %s: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

type submitted struct {
	ID        int64  `json:"id"`
	MessageID string `json:"message_id"`
	State     string `json:"state"`
}

func (n *node) submit(partner string, files map[string][]byte) submitted {
	n.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("partner", partner)
	mw.WriteField("subject", "end to end")
	for name, content := range files {
		w, _ := mw.CreateFormFile("file", name)
		w.Write(content)
	}
	mw.Close()
	var s submitted
	if code := n.api("POST", "/api/v1/messages", &buf, mw.FormDataContentType(), &s); code != http.StatusAccepted {
		n.t.Fatalf("submit: HTTP %d", code)
	}
	return s
}

type messageView struct {
	ID        int64  `json:"id"`
	MessageID string `json:"message_id"`
	Direction string `json:"direction"`
	Partner   string `json:"partner"`
	State     string `json:"state"`
	Files     []struct {
		Name   string `json:"name"`
		SHA256 string `json:"sha256"`
	} `json:"files"`
	MDN *struct {
		Disposition string `json:"disposition"`
		MICOK       bool   `json:"mic_ok"`
		Signed      bool   `json:"signed"`
	} `json:"mdn"`
	Attempts []struct {
		Class, Code, Error, Action string
	} `json:"attempts"`
}

// await polls a message until it reaches one of the final states or the deadline passes.
func (n *node) await(id int64, states ...string) messageView {
	n.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var m messageView
		n.api("GET", fmt.Sprintf("/api/v1/messages/%d", id), nil, "", &m)
		for _, s := range states {
			if m.State == s {
				return m
			}
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: message %d is %q, want %v (attempts %+v)", n.id, id, m.State, states, m.Attempts)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// received returns the inbound message with this Message-ID, once it has arrived.
func (n *node) received(messageID string) messageView {
	n.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var list struct{ Messages []messageView }
		n.api("GET", "/api/v1/messages?box=received", nil, "", &list)
		for _, m := range list.Messages {
			if m.MessageID == messageID {
				var full messageView
				n.api("GET", fmt.Sprintf("/api/v1/messages/%d", m.ID), nil, "", &full)
				return full
			}
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: %s never arrived", n.id, messageID)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEndToEnd exchanges messages both ways between two gateways for each protection and
// MDN choice, and checks through the API that the sender sees Sent with a verified MDN and
// the receiver holds the identical bytes, also in the partner's inbox folder.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	cases := []agreement{
		{sign: "sha256", encrypt: "aes256-cbc", keyTransport: "rsa-pkcs1v15", compress: "none", mdn: "sync", mdnSigned: true},
		{sign: "sha1", encrypt: "3des", keyTransport: "rsa-oaep-sha1", compress: "before-sign", mdn: "sync", mdnSigned: true},
		{sign: "sha512", pss: true, encrypt: "aes128-gcm", keyTransport: "rsa-oaep-sha256", compress: "after-sign", mdn: "async", mdnSigned: true},
		{sign: "sha384", encrypt: "aes192-cbc", keyTransport: "rsa-pkcs1v15", compress: "none", mdn: "async", mdnSigned: false},
		{sign: "none", encrypt: "none", keyTransport: "rsa-pkcs1v15", compress: "none", mdn: "sync", mdnSigned: false},
		{sign: "sha256", encrypt: "aes256-gcm", keyTransport: "rsa-pkcs1v15", compress: "before-sign", mdn: "none"},
		{sign: "none", encrypt: "aes128-cbc", keyTransport: "rsa-pkcs1v15", compress: "after-sign", mdn: "sync", mdnSigned: true},
	}
	for _, a := range cases {
		t.Run(a.String(), func(t *testing.T) {
			t.Parallel()
			A, B := startPair(t, a)
			files := map[string][]byte{"po-850.edi": []byte("ISA*00*          *00*          *ZZ*GWA*ZZ*GWB~\nIEA*1*000000001~\n")}
			for _, dir := range []struct{ from, to *node }{{A, B}, {B, A}} {
				s := dir.from.submit(dir.to.id, files)
				if s.State != "queued" || !strings.HasPrefix(s.MessageID, "<") {
					t.Fatalf("submit answered %+v", s)
				}
				sent := dir.from.await(s.ID, "sent", "failed")
				if sent.State != "sent" {
					t.Fatalf("%s -> %s: %s, attempts %+v", dir.from.id, dir.to.id, sent.State, sent.Attempts)
				}
				if a.mdn != "none" && (sent.MDN == nil || !sent.MDN.MICOK || sent.MDN.Signed != a.mdnSigned || !strings.HasSuffix(sent.MDN.Disposition, "processed")) {
					t.Fatalf("%s -> %s: MDN %+v", dir.from.id, dir.to.id, sent.MDN)
				}
				got := dir.to.received(s.MessageID)
				if got.State != "received" || got.Partner != dir.from.id || len(got.Files) != 1 || got.Files[0].Name != "po-850.edi" {
					t.Fatalf("%s received %+v", dir.to.id, got)
				}
				sum := sha256.Sum256(files["po-850.edi"])
				if got.Files[0].SHA256 != hex.EncodeToString(sum[:]) {
					t.Fatalf("received content differs: %s", got.Files[0].SHA256)
				}
				inbox, err := os.ReadFile(filepath.Join(dir.to.cfg.Inbox(dir.from.id), "po-850.edi"))
				if err != nil || !bytes.Equal(inbox, files["po-850.edi"]) {
					t.Fatalf("inbox file: %q, %v", inbox, err)
				}
			}
		})
	}
}
