package main

import (
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
)

// TestDuplicateAskingAsyncMDNGetsItAgain: a sender that resends a message because our
// asynchronous MDN never reached it gets the stored MDN again, and the payload is delivered
// once.
func TestDuplicateAskingAsyncMDNGetsItAgain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	type post struct {
		header http.Header
		body   []byte
	}
	mdns := make(chan post, 4)
	receiptURL := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mdns <- post{r.Header.Clone(), b}
	}))
	defer receiptURL.Close()
	station := cmstest.New(t, "GW-D", nil)
	sender := cmstest.New(t, "SENDER-D", nil)
	cert, key := station.WriteFiles(t, dir, "station")
	senderCert, _ := sender.WriteFiles(t, dir, "sender")
	n := startGateway(t, filepath.Join(dir, "gw"), gatewaySpec{
		id: "GW-D", cert: cert, key: key, allowPrivateMDN: true,
		partners: []partnerSpec{{id: "SENDER-D", cert: senderCert}},
	})
	msg, err := as2.Pack([]as2.Payload{{Filename: "inv.edi", ContentType: "application/edi-x12", Body: strings.NewReader("ISA*00*~")}}, &as2.PackOptions{
		From: "SENDER-D", To: "GW-D", Sign: as2.MICAlgSHA256, Certificate: sender.Certificate, Key: sender.Key,
		Recipients: []*x509.Certificate{station.Certificate}, Encrypt: cms.AES256CBC,
		MDN: as2.MDNRequest{Mode: as2.MDNAsync, Signed: true, URL: receiptURL.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer msg.Close()
	url := "http://" + n.gw.AS2Addr().String() + "/as2"
	var posts []post
	for range 2 {
		if _, err := (&as2.Client{}).Send(context.Background(), url, msg, nil); err != nil {
			t.Fatalf("Send: %v", err)
		}
		select {
		case p := <-mdns:
			posts = append(posts, p)
		case <-time.After(20 * time.Second):
			t.Fatalf("no asynchronous MDN after send %d", len(posts)+1)
		}
	}
	if string(posts[0].body) != string(posts[1].body) {
		t.Fatal("the second MDN differs from the stored one")
	}
	rc, err := as2.ReadReceipt(posts[1].header, posts[1].body, []*x509.Certificate{station.Certificate})
	if err == nil {
		err = msg.Check(rc)
	}
	if err != nil {
		t.Fatalf("the MDN does not confirm the message: %v", err)
	}
	var list struct{ Messages []messageView }
	n.api("GET", "/api/v1/messages?box=received", nil, "", &list)
	if len(list.Messages) != 1 {
		t.Fatalf("%d received messages, want 1", len(list.Messages))
	}
}
