//go:build unix

package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
)

// crashMessages is how many messages are in the queue when the sender is killed.
const crashMessages = 200

// TestCrash kills gateways with SIGKILL where a message is most at risk and checks that every
// message still ends up delivered exactly once:
//
//  1. the sending gateway A dies with its queue full and messages in flight to B. Restarted
//     on the same data folder, A sends what it had not finished; a message whose request
//     reached B but whose MDN never reached A goes again with the same Message-ID, and B
//     answers it with the stored MDN without delivering it twice.
//  2. the receiving gateway B dies halfway through reading a message body. Restarted, it
//     holds nothing of that message; the same message sent again is received once.
//
// Both gateways are the real binary in processes of their own, talking over loopback.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs two gateway processes")
	}
	t.Parallel()
	bin := buildGateway(t)
	dir := t.TempDir()
	idA, idB := cmstest.New(t, "GW-A", nil), cmstest.New(t, "GW-B", nil)
	certA, keyA := idA.WriteFiles(t, dir, "a")
	certB, keyB := idB.WriteFiles(t, dir, "b")

	B := newGatewayProcess(t, bin, filepath.Join(dir, "B"), "GW-B", certB, keyB, "GW-A", certA, func() string { return "http://127.0.0.1:1/as2" })
	B.start()
	A := newGatewayProcess(t, bin, filepath.Join(dir, "A"), "GW-A", certA, keyA, "GW-B", certB, B.as2URL)
	A.start()
	defer func() {
		if t.Failed() {
			t.Log(A.logs())
			t.Log(B.logs())
		}
	}()

	want := sendAndKillSender(t, A, B)
	checkDelivered(t, B, "GW-A", want)

	msg, half := killReceiverMidRead(t, B, idA, idB)
	checkDelivered(t, B, "GW-A", want) // the same 200, nothing of the half-read one
	client := &as2.Client{HTTP: &http.Client{Timeout: 60 * time.Second}}
	resp, err := client.Send(t.Context(), B.as2URL(), msg, &as2.SendOptions{Trusted: []*x509.Certificate{idB.Certificate}})
	if err != nil {
		t.Fatalf("sending %s again in full: %v", msg.MessageID, err)
	}
	if resp.Receipt == nil || resp.Receipt.Signer == nil {
		t.Fatalf("sending %s again in full: no signed MDN in %+v", msg.MessageID, resp)
	}
	want[msg.MessageID] = half
	checkDelivered(t, B, "GW-A", want)
}

// sentFile is what was submitted: the file name and its SHA-256 in hex.
type sentFile struct {
	name, sha256 string
	content      []byte
}

// newGatewayProcess prepares (without starting) a gateway with one station, id, and one
// partner whose URL partnerURL returns when the configuration is written. The agreement
// signs, encrypts and asks for signed synchronous MDNs: every message costs both sides real
// work, so that the sender is killed with messages in flight.
func newGatewayProcess(t *testing.T, bin, dir, id, cert, key, partner, partnerCert string, partnerURL func() string) *gatewayProcess {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	p := &gatewayProcess{t: t, name: id, bin: bin, dir: dir, token: rand.Text()}
	p.config = func(as2Addr, admin string) string {
		return fmt.Sprintf(`data_dir: %s
listen: {as2: %q, admin: %q}
public_url: http://%s/as2
api_tokens: [%s]
log: {format: json, level: info}
stations:
  - as2_id: %s
    key: %s
    cert: %s
partners:
  - as2_id: %s
    station: %s
    url: %s
    certs: [%s]
    sign: sha256
    encrypt: aes256-cbc
    compress: none
    mdn: sync
    mdn_signed: true
    retry:
      failed: {strategy: exponential, attempts: 10, initial: 1s}
`, p.dataDir(), as2Addr, admin, as2Addr, p.token, id, key, cert, partner, id, partnerURL(), partnerCert)
	}
	return p
}

// sendAndKillSender submits crashMessages messages to A, kills A while they are being sent,
// restarts it and waits until A reports every one sent with a verified MDN. It returns what
// was submitted by Message-ID.
func sendAndKillSender(t *testing.T, A, B *gatewayProcess) map[string]sentFile {
	t.Helper()
	// Submitting from several clients at once keeps ahead of the sending, so that most of the
	// messages are still in the queue when A dies.
	type result struct {
		s    submitted
		file sentFile
		err  error
	}
	results := make(chan result, crashMessages)
	next := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range next {
				content := fmt.Appendf(nil, "UNH+%04d+ORDERS:D:96A:UN'\n%s\n", i, rand.Text())
				sum := sha256.Sum256(content)
				f := sentFile{name: fmt.Sprintf("order-%03d.edi", i), sha256: hex.EncodeToString(sum[:]), content: content}
				s, err := A.send("GW-B", f.name, content)
				results <- result{s, f, err}
			}
		})
	}
	for i := range crashMessages {
		next <- i
	}
	close(next)
	wg.Wait()
	close(results)
	want := make(map[string]sentFile, crashMessages)
	for r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		if _, dup := want[r.s.MessageID]; dup || r.s.State != "queued" {
			t.Fatalf("submitting %s answered %+v", r.file.name, r.s)
		}
		want[r.s.MessageID] = r.file
	}
	// The kill must find work in flight, or the test proves nothing about a crash.
	pending := len(A.box("outbox"))
	if pending == 0 {
		t.Fatalf("all %d messages were sent before the kill", crashMessages)
	}
	A.kill()
	t.Logf("killed %s with %d of %d messages not yet sent; %s had received %d",
		A.name, pending, crashMessages, B.name, len(B.box("received")))

	A.start()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if failed := A.box("failed"); len(failed) > 0 {
			t.Fatalf("%s: %d messages failed after the restart, first %s: %+v", A.name, len(failed), failed[0].MessageID, failed[0])
		}
		sent := A.box("sent")
		if len(sent) == crashMessages {
			for _, m := range sent {
				if _, ok := want[m.MessageID]; !ok {
					t.Fatalf("%s sent %s, which was never submitted", A.name, m.MessageID)
				}
				if m.MDN == nil || !m.MDN.MICOK || !m.MDN.Signed || !strings.HasSuffix(m.MDN.Disposition, "processed") {
					t.Fatalf("%s: %s is sent with MDN %+v", A.name, m.MessageID, m.MDN)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d messages sent after 60s; outbox %d, queued %d",
				A.name, len(sent), crashMessages, len(A.box("outbox")), len(A.box("queued")))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := strings.Count(B.logs(), "duplicate message"); n > 0 {
		t.Logf("%s answered as duplicates %d messages it had received before the crash", B.name, n)
	}
	return want
}

// checkDelivered checks the receiver against what was submitted: one received message per
// Message-ID with the submitted bytes, and exactly one file per message in the partner's
// inbox folder.
func checkDelivered(t *testing.T, B *gatewayProcess, partner string, want map[string]sentFile) {
	t.Helper()
	received := listAll(t, B, "received")
	seen := make(map[string]bool, len(received))
	for _, m := range received {
		w, ok := want[m.MessageID]
		switch {
		case !ok:
			t.Errorf("%s received %s, which was never sent", B.name, m.MessageID)
			continue
		case seen[m.MessageID]:
			t.Errorf("%s received %s twice", B.name, m.MessageID)
			continue
		case m.State != "received" || m.Partner != partner || len(m.Files) != 1 ||
			m.Files[0].Name != w.name || m.Files[0].SHA256 != w.sha256:
			t.Errorf("%s holds %s as %s from %s with files %+v; want %s, sha256 %s", B.name, m.MessageID, m.State, m.Partner, m.Files, w.name, w.sha256)
		}
		seen[m.MessageID] = true
	}
	if len(received) != len(want) || len(seen) != len(want) {
		t.Errorf("%s lists %d received messages (%d distinct), want %d", B.name, len(received), len(seen), len(want))
	}

	inbox := filepath.Join(B.dataDir(), "inbox", partner)
	entries, err := os.ReadDir(inbox)
	if err != nil {
		t.Fatal(err)
	}
	byName := make(map[string]sentFile, len(want))
	for _, w := range want {
		byName[w.name] = w
	}
	for _, e := range entries {
		w, ok := byName[e.Name()]
		if !ok {
			t.Errorf("inbox %s holds %s, which is no submitted file", inbox, e.Name())
			continue
		}
		got, err := os.ReadFile(filepath.Join(inbox, e.Name()))
		if err != nil || !bytes.Equal(got, w.content) {
			t.Errorf("inbox file %s: %d bytes, %v; want the %d bytes submitted", e.Name(), len(got), err, len(w.content))
		}
	}
	if len(entries) != len(want) {
		t.Errorf("inbox %s holds %d files, want %d", inbox, len(entries), len(want))
	}
}

// killReceiverMidRead sends B the first half of a large message from A, kills B while its
// handler reads it, restarts B and checks that the message is not there. It returns the
// message, to be sent again in full, and its payload.
func killReceiverMidRead(t *testing.T, B *gatewayProcess, idA, idB *cmstest.Identity) (*as2.Message, sentFile) {
	t.Helper()
	content := make([]byte, 8<<20)
	rand.Read(content)
	sum := sha256.Sum256(content)
	file := sentFile{name: "half-read.bin", sha256: hex.EncodeToString(sum[:]), content: content}
	msg, err := as2.Pack([]as2.Payload{{Filename: file.name, ContentType: "application/octet-stream", Body: bytes.NewReader(content)}},
		&as2.PackOptions{
			From: "GW-A", To: "GW-B", MessageIDDomain: "crash.as2gate.test",
			Sign: as2.MICAlgSHA256, Certificate: idA.Certificate, Key: idA.Key,
			Encrypt: cms.AES256CBC, Recipients: []*x509.Certificate{idB.Certificate},
			MDN:      as2.MDNRequest{Mode: as2.MDNSync, Signed: true},
			SpoolDir: t.TempDir(),
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { msg.Close() })

	// Expect: 100-continue makes B say when its handler has accepted the headers (known
	// partner, size within bounds) and starts reading the body: the moment to cut in.
	conn, err := net.Dial("tcp", B.as2)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	size := msg.Body.Size()
	var head bytes.Buffer
	fmt.Fprintf(&head, "POST /as2 HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n", B.as2, size)
	msg.Header.Write(&head)
	head.WriteString("\r\n")
	if _, err := conn.Write(head.Bytes()); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	answer := bufio.NewReader(conn)
	if status, err := answer.ReadString('\n'); err != nil || !strings.HasPrefix(status, "HTTP/1.1 100 ") {
		t.Fatalf("%s answered the headers of %s with %q, %v; want 100 Continue", B.name, msg.MessageID, status, err)
	}
	if blank, err := answer.ReadString('\n'); err != nil || blank != "\r\n" {
		t.Fatalf("after 100 Continue: %q, %v", blank, err)
	}
	if _, err := io.Copy(conn, msg.Body.Section(0, size/2)); err != nil {
		t.Fatalf("sending the first half of %s: %v", msg.MessageID, err)
	}
	B.kill()
	t.Logf("killed %s while it read %s (%d of %d bytes sent)", B.name, msg.MessageID, size/2, size)
	if rest, _ := io.ReadAll(answer); len(rest) > 0 {
		t.Fatalf("%s answered a half-sent message: %q", B.name, rest)
	}

	B.start()
	for _, m := range B.box("received") {
		if m.MessageID == msg.MessageID {
			t.Fatalf("%s kept the half-read message %s: %+v", B.name, msg.MessageID, m)
		}
	}
	return msg, file
}
