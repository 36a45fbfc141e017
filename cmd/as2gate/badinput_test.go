package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
	"github.com/as2gate/as2gate/internal/store"
)

// hostile sends hand-made AS2 messages to one running gateway, GW-B, with a plain
// http.Client, as a broken or malicious sender would. The gateway knows two partners that
// share the sender's certificate: MALLORY, which may send anything (unsigned, unencrypted)
// up to 1 MiB, and STRICT, whose messages must be signed and encrypted.
type hostile struct {
	t        *testing.T
	gw       *node
	sender   *cmstest.Identity
	receiver *x509.Certificate
	client   *http.Client
}

const hostileMaxSize = 1 << 20

func newHostile(t *testing.T) *hostile {
	t.Helper()
	dir := t.TempDir()
	sender := cmstest.New(t, "MALLORY", nil)
	receiver := cmstest.New(t, "GW-B", nil)
	certA, _ := sender.WriteFiles(t, dir, "mallory")
	certB, keyB := receiver.WriteFiles(t, dir, "b")
	gw := startGateway(t, filepath.Join(dir, "B"), gatewaySpec{
		id: "GW-B", cert: certB, key: keyB,
		partners: []partnerSpec{
			{id: "MALLORY", cert: certA, settings: map[string]string{
				"require": "{signed: false, encrypted: false}", "max_size": fmt.Sprint(hostileMaxSize)}},
			{id: "STRICT", cert: certA, settings: map[string]string{
				"require": "{signed: true, encrypted: true}"}},
		},
	})
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	t.Cleanup(client.CloseIdleConnections)
	return &hostile{t: t, gw: gw, sender: sender, receiver: receiver.Certificate, client: client}
}

// options are what a well-behaved partner sends: signed, encrypted, a signed sync MDN.
func (h *hostile) options(from string) as2.PackOptions {
	return as2.PackOptions{
		From: from, To: "GW-B", Subject: "hostile",
		Sign: as2.MICAlgSHA256, Certificate: h.sender.Certificate, Key: h.sender.Key,
		Encrypt: cms.AES256CBC, Recipients: []*x509.Certificate{h.receiver},
		MDN: as2.MDNRequest{Mode: as2.MDNSync, Signed: true},
	}
}

// pack packs one payload and returns the headers and the wire body.
func (h *hostile) pack(opts as2.PackOptions, name string, content []byte) (http.Header, []byte) {
	h.t.Helper()
	msg, err := as2.Pack([]as2.Payload{{Filename: name, ContentType: "application/edi-x12", Body: bytes.NewReader(content)}}, &opts)
	if err != nil {
		h.t.Fatal(err)
	}
	defer msg.Close()
	body, err := io.ReadAll(msg.Body.Open())
	if err != nil {
		h.t.Fatal(err)
	}
	return msg.Header, body
}

// post sends body with header to the AS2 listener: with a Content-Length of size, or
// chunked when size is -1.
func (h *hostile) post(header http.Header, body io.Reader, size int64) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, gatewayURL(h.gw.gw, false), body)
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header = header.Clone()
	req.ContentLength = size
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	return resp, readAll(h.t, resp.Body)
}

// mdn reads the synchronous MDN of a response, which must be signed by the gateway and
// answer messageID.
func (h *hostile) mdn(resp *http.Response, body []byte, messageID string) *as2.MDN {
	h.t.Helper()
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("HTTP %s: %s", resp.Status, body)
	}
	rc, err := as2.ReadReceipt(resp.Header, body, []*x509.Certificate{h.gw.cfg.Station("GW-B").Certificate})
	if err != nil {
		h.t.Fatalf("reading the MDN: %v", err)
	}
	if rc.Signer == nil {
		h.t.Fatal("the MDN is not signed though a signed one was asked for")
	}
	if rc.MDN.OriginalMessageID != messageID {
		h.t.Fatalf("the MDN answers %s, not %s", rc.MDN.OriginalMessageID, messageID)
	}
	return rc.MDN
}

// negative checks that the response is a negative MDN "processed/error: description".
func (h *hostile) negative(resp *http.Response, body []byte, messageID, description string) {
	h.t.Helper()
	m := h.mdn(resp, body, messageID)
	d := m.Disposition
	if d.Positive() || d.Type != as2.TypeProcessed || d.Modifier != as2.ModifierError || d.Description != description {
		h.t.Fatalf("disposition %q, want processed/error: %s", d, description)
	}
}

// receivedView is the API's view of an inbound message.
type receivedView struct {
	messageView
	LastCode  string `json:"last_code"`
	LastError string `json:"last_error"`
}

// inbound returns the message with messageID from the received box; it is there as soon as
// the gateway has answered.
func (h *hostile) inbound(messageID string) receivedView {
	h.t.Helper()
	var list struct{ Messages []receivedView }
	h.gw.api("GET", "/api/v1/messages?box=received&limit=500", nil, "", &list)
	var found []receivedView
	for _, m := range list.Messages {
		if m.MessageID == messageID {
			found = append(found, m)
		}
	}
	if len(found) != 1 {
		h.t.Fatalf("the received box holds %d messages %s, want one", len(found), messageID)
	}
	var full receivedView
	h.gw.api("GET", fmt.Sprintf("/api/v1/messages/%d", found[0].ID), nil, "", &full)
	return full
}

// suspended checks that the message is kept as suspended with code, that nothing of it was
// delivered, and that its wire bytes are in the payload store.
func (h *hostile) suspended(messageID, code string, wire []byte) {
	h.t.Helper()
	m := h.inbound(messageID)
	if m.State != store.StateSuspended || m.LastCode != code || m.LastError == "" {
		h.t.Fatalf("message %s is %s (%s: %s), want suspended with %s", messageID, m.State, m.LastCode, m.LastError, code)
	}
	if len(m.Files) != 0 {
		h.t.Fatalf("a suspended message has files %+v", m.Files)
	}
	h.wireStored(messageID, wire)
}

// wireStored checks that the message row points at its wire bytes and that the data
// folder holds them under their SHA-256.
func (h *hostile) wireStored(messageID string, wire []byte) {
	h.t.Helper()
	sum := sha256.Sum256(wire)
	key := hex.EncodeToString(sum[:])
	row, err := h.gw.gw.store.FindByMessageID(context.Background(), store.Inbound, messageID)
	if err != nil {
		h.t.Fatal(err)
	}
	if row.Wire != key {
		h.t.Fatalf("the message row points at wire %q, want %s", row.Wire, key)
	}
	stored, err := os.ReadFile(filepath.Join(h.gw.cfg.DataDir, "payloads", key[:2], key))
	if err != nil || !bytes.Equal(stored, wire) {
		h.t.Fatalf("the wire message is not in the payload store (%d bytes read, %v)", len(stored), err)
	}
}

// notStored checks that no inbound message with messageID was stored.
func (h *hostile) notStored(messageID string) {
	h.t.Helper()
	if m, err := h.gw.gw.store.FindByMessageID(context.Background(), store.Inbound, messageID); !errors.Is(err, store.ErrNotFound) {
		h.t.Fatalf("a refused message was stored: %+v, %v", m, err)
	}
}

// filesHolding returns the files under the gateway's folder, outside the payload store,
// whose content is content.
func (h *hostile) filesHolding(content []byte) []string {
	h.t.Helper()
	var found []string
	payloads := filepath.Join(h.gw.cfg.DataDir, "payloads")
	root := filepath.Dir(h.gw.cfg.DataDir)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path == payloads {
			return filepath.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if b, err := os.ReadFile(path); err == nil && bytes.Equal(b, content) {
			found = append(found, path)
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return found
}

// stalledBody is a request body that gives what r holds, then waits for ctx to end.
type stalledBody struct {
	r   io.Reader
	ctx context.Context
}

func (b *stalledBody) Read(p []byte) (int, error) {
	if n, err := b.r.Read(p); err != io.EOF {
		return n, err
	}
	<-b.ctx.Done()
	return 0, context.Cause(b.ctx)
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestBadInput sends malformed and hostile requests to a running gateway's AS2 listener.
// Each gets a clear refusal or the negative MDN the sender asked for; whatever the gateway
// accepted is kept (a suspended message with its wire bytes in the payload store); nothing
// lands outside the partner's inbox folder.
func TestBadInput(t *testing.T) {
	t.Parallel()
	h := newHostile(t)

	// First and alone, so that the allocation figures are the gateway's work on the bomb
	// (other tests of the package may still run alongside: the bound is generous).
	t.Run("decompression bomb", func(t *testing.T) {
		h := *h
		h.t = t
		const expanded = 256 << 20
		var bomb bytes.Buffer
		entity := io.MultiReader(strings.NewReader("Content-Type: application/octet-stream\r\n"+
			"Content-Disposition: attachment; filename=zeros.bin\r\n\r\n"), io.LimitReader(zeros{}, expanded))
		if err := cms.Compress(&bomb, entity); err != nil {
			t.Fatal(err)
		}
		if bomb.Len() >= hostileMaxSize {
			t.Fatalf("the bomb is %d bytes, more than max_size", bomb.Len())
		}
		opts := h.options("MALLORY")
		opts.Sign, opts.Encrypt, opts.Compression = 0, 0, as2.CompressBeforeSign
		header, _ := h.pack(opts, "zeros.bin", []byte("small"))
		id := header.Get(as2.HeaderMessageID)

		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		resp, body := h.post(header, bytes.NewReader(bomb.Bytes()), int64(bomb.Len()))
		runtime.ReadMemStats(&after)
		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("a %d-byte bomb of %d MiB: %d KiB allocated while it was received, heap in use %d KiB after",
			bomb.Len(), expanded>>20, allocated>>10, after.HeapInuse>>10)
		if allocated > expanded/4 {
			t.Errorf("%d MiB allocated while receiving the bomb: it was inflated into memory", allocated>>20)
		}
		h.negative(resp, body, id, as2.DecompressionFailed)
		h.suspended(id, as2.DecompressionFailed, bomb.Bytes())
	})

	t.Run("cases", func(t *testing.T) {
		t.Run("truncated CMS", func(t *testing.T) {
			t.Parallel()
			h := *h
			h.t = t
			header, wire := h.pack(h.options("MALLORY"), "po.edi", []byte("ISA*00*TRUNCATED~"))
			wire = wire[:len(wire)/2]
			id := header.Get(as2.HeaderMessageID)
			resp, body := h.post(header, bytes.NewReader(wire), int64(len(wire)))
			h.negative(resp, body, id, as2.DecryptionFailed)
			h.suspended(id, as2.DecryptionFailed, wire)
		})

		t.Run("unsigned where signing is required", func(t *testing.T) {
			t.Parallel()
			h := *h
			h.t = t
			opts := h.options("STRICT")
			opts.Sign = 0
			header, wire := h.pack(opts, "po.edi", []byte("ISA*00*UNSIGNED~"))
			id := header.Get(as2.HeaderMessageID)
			resp, body := h.post(header, bytes.NewReader(wire), int64(len(wire)))
			h.negative(resp, body, id, as2.InsufficientMessageSecurity)
			h.suspended(id, as2.InsufficientMessageSecurity, wire)
		})

		t.Run("bad base64", func(t *testing.T) {
			t.Parallel()
			cases := []struct {
				name        string
				encrypt     bool
				description string
			}{
				// The payload's transfer encoding breaks: the content cannot be read.
				{name: "plain", description: as2.UnexpectedProcessingError},
				// The CMS under the transfer encoding breaks: the envelope cannot be read.
				{name: "encrypted", encrypt: true, description: as2.DecryptionFailed},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					h := *h
					h.t = t
					opts := h.options("MALLORY")
					opts.Sign = 0
					if !c.encrypt {
						opts.Encrypt = 0
					}
					header, wire := h.pack(opts, "po.edi", []byte("ISA*00*BASE64~"))
					header.Set("Content-Transfer-Encoding", "base64")
					enc := []byte(base64Lines(wire))
					// Garbage in the middle, past what the first read of a layer peeks at.
					enc = append(enc[:len(enc)/2], append([]byte("%%not*base64!!\r\n"), enc[len(enc)/2:]...)...)
					id := header.Get(as2.HeaderMessageID)
					resp, body := h.post(header, bytes.NewReader(enc), int64(len(enc)))
					h.negative(resp, body, id, c.description)
					h.suspended(id, c.description, enc)
				})
			}
		})

		t.Run("refused headers", func(t *testing.T) {
			t.Parallel()
			cases := []struct {
				name, header, value string
				status              int
				reason              string // what the text reason must name
			}{
				{name: "wrong AS2-To", header: as2.HeaderAS2To, value: "NOT-GW-B", status: http.StatusForbidden, reason: "NOT-GW-B"},
				{name: "unknown AS2-From", header: as2.HeaderAS2From, value: "EVE", status: http.StatusForbidden, reason: "EVE"},
				{name: "partner of another station", header: as2.HeaderAS2To, value: "MALLORY", status: http.StatusForbidden, reason: "MALLORY"},
				{name: "no AS2-To", header: as2.HeaderAS2To, status: http.StatusBadRequest, reason: as2.HeaderAS2To},
				{name: "no Message-ID", header: as2.HeaderMessageID, status: http.StatusBadRequest, reason: as2.HeaderMessageID},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					h := *h
					h.t = t
					header, wire := h.pack(h.options("MALLORY"), "po.edi", []byte("ISA*00*LOST~"))
					id := header.Get(as2.HeaderMessageID)
					if c.value == "" {
						header.Del(c.header)
					} else {
						header.Set(c.header, c.value)
					}
					resp, body := h.post(header, bytes.NewReader(wire), int64(len(wire)))
					if resp.StatusCode != c.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
						t.Fatalf("HTTP %s (%s): %s, want %d with a text reason", resp.Status, resp.Header.Get("Content-Type"), body, c.status)
					}
					if !strings.Contains(string(body), c.reason) {
						t.Fatalf("the reason %q does not name %s", body, c.reason)
					}
					h.notStored(id)
				})
			}
		})

		t.Run("oversize", func(t *testing.T) {
			t.Parallel()
			cases := []struct {
				name    string
				chunked bool
			}{
				{name: "Content-Length"},
				{name: "chunked", chunked: true},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					h := *h
					h.t = t
					opts := h.options("MALLORY")
					opts.Sign, opts.Encrypt = 0, 0
					header, _ := h.pack(opts, "big.bin", []byte("big"))
					id := header.Get(as2.HeaderMessageID)
					// The sender is still sending when the answer comes: it stalls until the
					// test has the response in hand. With a Content-Length the gateway must
					// refuse on the header, before max_size bytes arrive; a chunked body it
					// can only refuse once it has read more than max_size.
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					sent := int64(64 << 10)
					if c.chunked {
						sent += hostileMaxSize
					}
					body := &stalledBody{r: io.LimitReader(zeros{}, sent), ctx: ctx}
					req, err := http.NewRequestWithContext(ctx, http.MethodPost, gatewayURL(h.gw.gw, false), body)
					if err != nil {
						t.Fatal(err)
					}
					req.Header = header.Clone()
					req.ContentLength = 4 * hostileMaxSize
					if c.chunked {
						req.ContentLength, req.TransferEncoding = -1, []string{"chunked"}
					}
					resp, err := h.client.Do(req)
					cancel() // lets the stalled body go
					if err != nil {
						t.Fatalf("POST: %v", err)
					}
					reason := readAll(t, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
						!strings.Contains(string(reason), fmt.Sprint(hostileMaxSize)) {
						t.Fatalf("HTTP %s: %q, want 413 with a text reason naming the limit", resp.Status, reason)
					}
					h.notStored(id)
				})
			}
		})

		t.Run("traversal filenames", func(t *testing.T) {
			t.Parallel()
			cases := []struct {
				name, filename string
				messageID      string // replaces the packed one when set
				want           string // the delivered name
			}{
				{name: "parent folders", filename: "../../etc/passwd", want: "passwd"},
				{name: "windows parent folder", filename: `..\evil.bat`, want: "evil.bat"},
				{name: "absolute path", filename: "/etc/cron.d/as2gate", want: "as2gate"},
				{name: "windows absolute path", filename: `C:\Windows\System32\evil.dll`, want: "evil.dll"},
				{name: "hidden file", filename: "../.bashrc", want: "bashrc"},
				// Nothing usable is left of the name: one is made from the Message-ID, which
				// a hostile sender controls as well.
				{name: "dot-dot only", filename: "..", messageID: "<../../../outside@evil>", want: "outside@evil-1.dat"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					h := *h
					h.t = t
					content := []byte("ISA*00*" + c.name + "~\n")
					header, wire := h.pack(h.options("MALLORY"), c.filename, content)
					if c.messageID != "" {
						header.Set(as2.HeaderMessageID, c.messageID)
					}
					id := header.Get(as2.HeaderMessageID)
					resp, body := h.post(header, bytes.NewReader(wire), int64(len(wire)))
					if d := h.mdn(resp, body, id).Disposition; !d.Positive() {
						t.Fatalf("disposition %q", d)
					}
					if m := h.inbound(id); m.State != store.StateReceived || len(m.Files) != 1 {
						t.Fatalf("received %+v", m)
					}
					inbox := h.gw.cfg.Inbox("MALLORY")
					found := h.filesHolding(content)
					if len(found) != 1 || filepath.Dir(found[0]) != inbox {
						t.Fatalf("the payload is at %q, want one file in %s", found, inbox)
					}
					if name := filepath.Base(found[0]); name != c.want {
						t.Fatalf("delivered as %q, want %q", name, c.want)
					}
				})
			}
		})

		t.Run("duplicate Message-ID", func(t *testing.T) {
			t.Parallel()
			h := *h
			h.t = t
			content := []byte("ISA*00*DUPLICATE~\n")
			header, wire := h.pack(h.options("MALLORY"), "dup.edi", content)
			id := header.Get(as2.HeaderMessageID)
			resp1, mdn1 := h.post(header, bytes.NewReader(wire), int64(len(wire)))
			if d := h.mdn(resp1, mdn1, id).Disposition; !d.Positive() {
				t.Fatalf("first: disposition %q", d)
			}
			resp2, mdn2 := h.post(header, bytes.NewReader(wire), int64(len(wire)))
			h.mdn(resp2, mdn2, id)
			if !bytes.Equal(mdn1, mdn2) || resp1.Header.Get(as2.HeaderMessageID) != resp2.Header.Get(as2.HeaderMessageID) {
				t.Fatal("the duplicate was answered with a new MDN, not the stored one")
			}
			h.inbound(id) // exactly one row
			if found := h.filesHolding(content); len(found) != 1 {
				t.Fatalf("the payload was delivered %d times: %q", len(found), found)
			}
		})

		t.Run("async MDN to a loopback URL", func(t *testing.T) {
			t.Parallel()
			h := *h
			h.t = t
			var hits atomic.Int32
			sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
			defer sink.Close()
			opts := h.options("MALLORY")
			opts.MDN = as2.MDNRequest{Mode: as2.MDNAsync, Signed: true, URL: sink.URL + "/mdn"}
			header, wire := h.pack(opts, "po.edi", []byte("ISA*00*ASYNC~\n"))
			id := header.Get(as2.HeaderMessageID)
			resp, body := h.post(header, bytes.NewReader(wire), int64(len(wire)))
			if resp.StatusCode != http.StatusOK || len(body) != 0 {
				t.Fatalf("HTTP %s: %q, want an empty 200", resp.Status, body)
			}
			m := h.inbound(id)
			if m.State != store.StateReceived || len(m.Files) != 1 || !strings.HasPrefix(m.LastError, "asynchronous MDN not sent: ") || !strings.Contains(m.LastError, "allow_private_mdn_urls") {
				t.Fatalf("received %+v, want it received with the MDN refusal recorded", m)
			}
			h.wireStored(id, wire)
			out, err := h.gw.gw.store.ListMessages(context.Background(), store.Filter{Direction: store.Outbound, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range out {
				if o.Kind == store.KindMDN {
					t.Fatalf("an MDN to %s was queued: %+v", o.URL, o)
				}
			}
			if n := hits.Load(); n != 0 {
				t.Fatalf("the loopback URL was called %d times", n)
			}
		})
	})

	// Every request has been answered: no spooled body or layer may be left behind.
	left, err := os.ReadDir(filepath.Join(h.gw.cfg.DataDir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("spool files left behind: %v", left)
	}
}

// base64Lines encodes b as MIME base64 in lines of 76 characters.
func base64Lines(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	var out strings.Builder
	for len(s) > 76 {
		out.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	out.WriteString(s + "\r\n")
	return out.String()
}
