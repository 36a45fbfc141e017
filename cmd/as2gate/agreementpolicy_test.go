package main

import (
	"context"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/cms/cmstest"
)

// TestAgreementPolicies covers R-PART-4: with mdn_policy: agreement the MDN we return is
// signed because the agreement says so, though the sender asked for an unsigned one; and
// with source_address the partner sees our connections come from that address.
func TestAgreementPolicies(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	remote := make(chan string, 1)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		select {
		case remote <- host:
		default:
		}
	}))
	defer sink.Close()
	station := cmstest.New(t, "GW-P", nil)
	sender := cmstest.New(t, "SENDER-P", nil)
	cert, key := station.WriteFiles(t, dir, "station")
	senderCert, _ := sender.WriteFiles(t, dir, "sender")
	n := startGateway(t, filepath.Join(dir, "gw"), gatewaySpec{
		id: "GW-P", cert: cert, key: key,
		partners: []partnerSpec{{id: "SENDER-P", cert: senderCert, url: sink.URL, settings: map[string]string{
			"mdn_policy": "agreement", "mdn_signed": "true", "sign": "sha384",
			"encrypt": "none", "mdn": "none", "source_address": "127.0.0.2",
			"require": "{signed: true, encrypted: false}",
		}}},
	})

	// The sender asks for an unsigned synchronous MDN.
	msg, err := as2.Pack([]as2.Payload{{Filename: "a.xml", ContentType: "application/xml", Body: strings.NewReader("<a/>")}}, &as2.PackOptions{
		From: "SENDER-P", To: "GW-P", Sign: as2.MICAlgSHA256, Certificate: sender.Certificate, Key: sender.Key,
		MDN: as2.MDNRequest{Mode: as2.MDNSync},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer msg.Close()
	resp, err := (&as2.Client{}).Send(context.Background(), "http://"+n.gw.AS2Addr().String()+"/as2", msg,
		&as2.SendOptions{Trusted: []*x509.Certificate{station.Certificate}})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if s := resp.Receipt.Signer; s == nil || s.Hash != as2.MICAlgSHA384.Hash() {
		t.Fatalf("the MDN is not signed with SHA-384 as the agreement says: signer %+v", s)
	}

	// Outbound connections come from the configured source address.
	s := n.submit("SENDER-P", map[string][]byte{"b.txt": []byte("hello")})
	if m := n.await(s.ID, "sent", "failed"); m.State != "sent" {
		t.Fatalf("message %s: %+v", m.State, m.Attempts)
	}
	if got := <-remote; got != "127.0.0.2" {
		t.Fatalf("the partner saw a connection from %s, want 127.0.0.2", got)
	}
}
