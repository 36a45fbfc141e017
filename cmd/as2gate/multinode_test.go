//go:build unix

package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
	"github.com/as2gate/as2gate/internal/payload/payloadtest"
	"github.com/as2gate/as2gate/internal/store/postgres/pgtest"
)

// clusterMessages is how many messages are submitted across the cluster's nodes.
const clusterMessages = 2000

// TestMultiNode runs three as2gate processes as one gateway (station CLUSTER) sharing one
// PostgreSQL schema and one S3 bucket (served in-process), and a partner gateway GW-B on
// SQLite. Messages are submitted to every node in turn while one node is killed with
// SIGKILL and started again; every message must end sent, with a verified MDN, and be
// received by GW-B exactly once. Messages GW-B's identity posts to each node in turn must be
// visible, with their files, from every node's API.
func TestMultiNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs four gateway processes")
	}
	t.Parallel()
	dsn := pgtest.Schema(t)
	s3 := payloadtest.Serve(t, "as2gate-cluster")
	env := append(os.Environ(),
		"AWS_ACCESS_KEY_ID=as2gate-test", "AWS_SECRET_ACCESS_KEY=as2gate-test-secret",
		"AWS_CONFIG_FILE="+filepath.Join(t.TempDir(), "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(t.TempDir(), "none"))

	bin := buildGateway(t)
	dir := t.TempDir()
	idC, idB := cmstest.New(t, "CLUSTER", nil), cmstest.New(t, "GW-B", nil)
	certC, keyC := idC.WriteFiles(t, dir, "cluster")
	certB, keyB := idB.WriteFiles(t, dir, "b")

	B := newGatewayProcess(t, bin, filepath.Join(dir, "B"), "GW-B", certB, keyB, "CLUSTER", certC, func() string { return "http://127.0.0.1:1/as2" })
	B.start()
	// Each node is the crash test's gateway (the same agreement with GW-B) on the shared
	// database and bucket, with a data folder of its own.
	shared := fmt.Sprintf("database: '%s'\npayload_store: '%s'\n", dsn, s3.URL("prefix", "cluster"))
	nodes := make([]*gatewayProcess, 3)
	for i := range nodes {
		n := newGatewayProcess(t, bin, filepath.Join(dir, fmt.Sprintf("node%d", i+1)), "CLUSTER", certC, keyC, "GW-B", certB, B.as2URL)
		n.name, n.env = fmt.Sprintf("node%d", i+1), env
		own := n.config
		n.config = func(as2Addr, admin string) string { return own(as2Addr, admin) + shared }
		nodes[i] = n
	}
	// The first node creates the schema; the others start at once on it.
	nodes[0].start()
	var wg sync.WaitGroup
	for _, n := range nodes[1:] {
		wg.Go(n.start)
	}
	wg.Wait()
	defer func() {
		if t.Failed() {
			for _, n := range nodes {
				t.Log(n.logs())
			}
			t.Log(B.logs())
		}
	}()

	want := submitAcrossNodes(t, nodes, 1)
	awaitClusterSent(t, nodes, want)
	checkDelivered(t, B, "CLUSTER", want)
	if n := strings.Count(B.logs(), "duplicate message"); n > 0 {
		t.Logf("%s answered %d messages as duplicates (sent again after the kill) and delivered them once", B.name, n)
	}

	checkInboundEverywhere(t, nodes, idB, idC)
}

// submitAcrossNodes submits clusterMessages messages for GW-B to the nodes in turn, from
// several clients at once, and kills the node numbered victim with SIGKILL when a quarter
// has been submitted, starting it again at half. A submission the dead node cannot take goes
// to the next node, as a load balancer would send it. It returns what was submitted by
// Message-ID.
func submitAcrossNodes(t *testing.T, nodes []*gatewayProcess, victim int) map[string]sentFile {
	t.Helper()
	type result struct {
		s    submitted
		file sentFile
		err  error
	}
	var (
		down atomic.Bool
		// inFlight is held shared by each submission to the victim, so that the kill waits
		// for them: a submission cut off after its commit would leave a message the test
		// cannot account for, and resending it elsewhere would make a second one.
		inFlight sync.RWMutex
		results  = make(chan result, clusterMessages)
		next     = make(chan int)
		wg       sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				content := fmt.Appendf(nil, "UNH+%05d+ORDERS:D:96A:UN'\n%s\n", i, rand.Text())
				sum := sha256.Sum256(content)
				f := sentFile{name: fmt.Sprintf("order-%05d.edi", i), sha256: hex.EncodeToString(sum[:]), content: content}
				var (
					s   submitted
					err error
				)
				for try := range len(nodes) {
					n := nodes[(i+try)%len(nodes)]
					if n == nodes[victim] {
						inFlight.RLock()
						if down.Load() {
							inFlight.RUnlock()
							continue
						}
						s, err = n.send("GW-B", f.name, content)
						inFlight.RUnlock()
					} else {
						s, err = n.send("GW-B", f.name, content)
					}
					if err == nil {
						break
					}
				}
				results <- result{s, f, err}
			}
		})
	}
	// The kill and the start happen here, on the test's goroutine, while the clients go on
	// submitting to the other nodes.
	for i := range clusterMessages {
		switch i {
		case clusterMessages / 4:
			inFlight.Lock()
			down.Store(true)
			inFlight.Unlock()
			nodes[victim].kill()
		case clusterMessages / 2:
			nodes[victim].start()
			inFlight.Lock()
			down.Store(false)
			inFlight.Unlock()
		}
		next <- i
	}
	close(next)
	wg.Wait()
	close(results)
	want := make(map[string]sentFile, clusterMessages)
	for r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		if _, dup := want[r.s.MessageID]; dup || r.s.State != "queued" {
			t.Fatalf("submitting %s answered %+v", r.file.name, r.s)
		}
		want[r.s.MessageID] = r.file
	}
	t.Logf("submitted %d messages across %d nodes; %s was killed at %d and started again at %d",
		len(want), len(nodes), nodes[victim].name, clusterMessages/4, clusterMessages/2)
	return want
}

// awaitClusterSent waits until every submitted message is sent with a verified, signed,
// processed MDN, as every node's API shows it.
func awaitClusterSent(t *testing.T, nodes []*gatewayProcess, want map[string]sentFile) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		if failed := listAll(t, nodes[0], "failed"); len(failed) > 0 {
			t.Fatalf("%d messages failed, first %s: %+v", len(failed), failed[0].MessageID, failed[0])
		}
		sent := listAll(t, nodes[0], "sent")
		if len(sent) == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages sent after 5 minutes", len(sent), len(want))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, n := range nodes {
		sent := listAll(t, n, "sent")
		seen := make(map[string]bool, len(sent))
		for _, m := range sent {
			if _, ok := want[m.MessageID]; !ok || seen[m.MessageID] {
				t.Fatalf("%s lists %s as sent: never submitted, or twice", n.name, m.MessageID)
			}
			seen[m.MessageID] = true
			if m.MDN == nil || !m.MDN.MICOK || !m.MDN.Signed || !strings.HasSuffix(m.MDN.Disposition, "processed") {
				t.Fatalf("%s: %s is sent with MDN %+v", n.name, m.MessageID, m.MDN)
			}
		}
		if len(seen) != len(want) {
			t.Fatalf("%s lists %d sent messages, want %d", n.name, len(seen), len(want))
		}
	}
}

// checkInboundEverywhere posts messages signed and encrypted by GW-B's identity to each node
// in turn and checks that every node's API lists all of them, with their files readable.
func checkInboundEverywhere(t *testing.T, nodes []*gatewayProcess, idB, idC *cmstest.Identity) {
	t.Helper()
	client := &as2.Client{HTTP: &http.Client{Timeout: 60 * time.Second}}
	want := map[string][]byte{}
	for i := range 3 * len(nodes) {
		content := fmt.Appendf(nil, "ISA*00*inbound %d*%s~\n", i, rand.Text())
		msg, err := as2.Pack([]as2.Payload{{Filename: fmt.Sprintf("in-%d.edi", i), ContentType: "application/edi-x12", Body: bytes.NewReader(content)}},
			&as2.PackOptions{
				From: "GW-B", To: "CLUSTER", MessageIDDomain: "b.as2gate.test",
				Sign: as2.MICAlgSHA256, Certificate: idB.Certificate, Key: idB.Key,
				Encrypt: cms.AES256CBC, Recipients: []*x509.Certificate{idC.Certificate},
				MDN:      as2.MDNRequest{Mode: as2.MDNSync, Signed: true},
				SpoolDir: t.TempDir(),
			})
		if err != nil {
			t.Fatal(err)
		}
		n := nodes[i%len(nodes)]
		resp, err := client.Send(t.Context(), n.as2URL(), msg, &as2.SendOptions{Trusted: []*x509.Certificate{idC.Certificate}})
		msg.Close()
		if err != nil {
			t.Fatalf("posting %s to %s: %v", msg.MessageID, n.name, err)
		}
		if resp.Receipt == nil || resp.Receipt.Signer == nil {
			t.Fatalf("posting %s to %s: no signed MDN in %+v", msg.MessageID, n.name, resp)
		}
		want[msg.MessageID] = content
	}
	for _, n := range nodes {
		got := 0
		for _, m := range listAll(t, n, "received") {
			content, ok := want[m.MessageID]
			if !ok {
				continue
			}
			got++
			if m.State != "received" || len(m.Files) != 1 {
				t.Fatalf("%s lists %s as %s with %d files", n.name, m.MessageID, m.State, len(m.Files))
			}
			req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/api/v1/messages/%d/files/0", n.admin, m.ID), nil)
			req.Header.Set("Authorization", "Bearer "+n.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !bytes.Equal(body, content) {
				t.Fatalf("%s: file of %s: HTTP %d, %d bytes; want the %d bytes posted", n.name, m.MessageID, resp.StatusCode, len(body), len(content))
			}
		}
		if got != len(want) {
			t.Fatalf("%s lists %d of the %d messages posted to the nodes", n.name, got, len(want))
		}
	}
}
