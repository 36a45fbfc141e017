package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/as2gate/as2gate/cms/cmstest"
	"github.com/as2gate/as2gate/internal/payload"
	"github.com/as2gate/as2gate/internal/payload/payloadtest"
)

// TestEndToEndS3PayloadStore exchanges a message between two gateways that keep their
// payloads in one S3 bucket (each under its own prefix), served over HTTP on loopback, with
// credentials from the AWS environment variables; nothing goes to the local payload folder.
func TestEndToEndS3PayloadStore(t *testing.T) {
	// The AWS SDK reads its credentials from the environment, so this test is not parallel.
	t.Setenv("AWS_ACCESS_KEY_ID", "as2gate-test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "as2gate-test-secret")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	srv := payloadtest.Serve(t, "as2gate")

	a := agreement{sign: "sha256", encrypt: "aes256-cbc", keyTransport: "rsa-pkcs1v15", compress: "none", mdn: "sync", mdnSigned: true}
	dir := t.TempDir()
	idA, idB := cmstest.New(t, "GW-A", nil), cmstest.New(t, "GW-B", nil)
	certA, keyA := idA.WriteFiles(t, dir, "a")
	certB, keyB := idB.WriteFiles(t, dir, "b")
	A := startNode(t, filepath.Join(dir, "A"), "GW-A", certA, keyA, "GW-B", certB, a, "payload_store: '"+srv.URL("prefix", "a")+"'")
	B := startNode(t, filepath.Join(dir, "B"), "GW-B", certB, keyB, "GW-A", certA, a, "payload_store: '"+srv.URL("prefix", "b")+"'")
	A.cfg.Partner("GW-B").URL = "http://" + B.gw.AS2Addr().String() + "/as2"
	B.cfg.Partner("GW-A").URL = "http://" + A.gw.AS2Addr().String() + "/as2"

	content := bytes.Repeat([]byte("ISA*00*          *00*          *ZZ*GWA*ZZ*GWB~\n"), 50000) // 2.4 MB
	s := A.submit("GW-B", map[string][]byte{"big.edi": content})
	if sent := A.await(s.ID, "sent", "failed"); sent.State != "sent" || sent.MDN == nil || !sent.MDN.MICOK {
		t.Fatalf("sent: %+v", sent)
	}
	got := B.received(s.MessageID)
	sum := sha256.Sum256(content)
	key := hex.EncodeToString(sum[:])
	if got.State != "received" || len(got.Files) != 1 || got.Files[0].SHA256 != key {
		t.Fatalf("received %+v", got)
	}
	inbox, err := os.ReadFile(filepath.Join(B.cfg.Inbox("GW-A"), "big.edi"))
	if err != nil || !bytes.Equal(inbox, content) {
		t.Fatalf("inbox file: %d bytes, %v", len(inbox), err)
	}
	// Both sides hold the payload in the bucket, under their prefixes, and not on disk.
	for _, n := range []struct {
		node   *node
		prefix string
	}{{A, "a"}, {B, "b"}} {
		st, err := payload.OpenS3(context.Background(), srv.URL("prefix", n.prefix), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		b, err := st.Open(context.Background(), key)
		if err != nil {
			t.Fatalf("%s: the payload is not in the bucket: %v", n.node.id, err)
		}
		stored, _ := io.ReadAll(b)
		b.Close()
		st.Close()
		if !bytes.Equal(stored, content) {
			t.Fatalf("%s: the bucket holds other bytes", n.node.id)
		}
		if _, err := os.Stat(filepath.Join(n.node.cfg.DataDir, "payloads")); !os.IsNotExist(err) {
			t.Fatalf("%s: a local payload folder exists: %v", n.node.id, err)
		}
	}
	// The payload can be downloaded through the API, read back from the bucket.
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/api/v1/messages/%d/files/0", B.gw.AdminAddr(), got.ID), nil)
	req.Header.Set("Authorization", "Bearer "+B.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	downloaded, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(downloaded, content) {
		t.Fatalf("download: HTTP %d, %d bytes, %v", resp.StatusCode, len(downloaded), err)
	}
	// Readiness follows the bucket.
	readyz := func() int {
		resp, err := http.Get("http://" + B.gw.AdminAddr().String() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := readyz(); code != http.StatusOK {
		t.Fatalf("readyz with the bucket up: HTTP %d", code)
	}
	srv.Server.Close()
	if code := readyz(); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz with the bucket down: HTTP %d", code)
	}
}
