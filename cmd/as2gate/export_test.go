package main

import (
	"archive/zip"
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/as2gate/as2gate/cms"
)

// export downloads the non-repudiation export of message id and returns its entries.
func (n *node) export(id int64) map[string][]byte {
	n.t.Helper()
	req, _ := http.NewRequest("GET", fmt.Sprintf("http://%s/api/v1/messages/%d/export", n.gw.AdminAddr(), id), nil)
	req.Header.Set("Authorization", "Bearer "+n.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		n.t.Fatalf("%s: export of message %d: HTTP %d: %s", n.id, id, resp.StatusCode, b)
	}
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		n.t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			n.t.Fatal(err)
		}
		out[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	return out
}

// verifyExported checks that the split signature sig verifies over part with the first
// certificate of the PEM entry certs.
func verifyExported(t *testing.T, files map[string][]byte, sig, part, certs string) {
	t.Helper()
	blk, _ := pem.Decode(files[certs])
	if blk == nil {
		t.Fatalf("%s holds no certificate", certs)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := cms.ParseSignedData(files[sig])
	if err != nil {
		t.Fatalf("%s: %v", sig, err)
	}
	if _, err := sd.Verify(bytes.NewReader(files[part]), []*x509.Certificate{cert}); err != nil {
		t.Errorf("%s over %s with %s: %v", sig, part, certs, err)
	}
}

// TestExportBothSides sends a signed message with a signed synchronous MDN and exports it on
// both gateways: the sender's export holds the MDN it received (its bytes were once not
// kept) and each side's signatures verify with the certificates the export carries.
func TestExportBothSides(t *testing.T) {
	t.Parallel()
	A, B := startPair(t, agreement{sign: "sha256", encrypt: "none", keyTransport: "rsa-pkcs1v15", compress: "none", mdn: "sync", mdnSigned: true})
	s := A.submit(B.id, map[string][]byte{"po.edi": []byte("ISA*00*~IEA*1*000000001~\n")})
	if m := A.await(s.ID, "sent", "failed"); m.State != "sent" {
		t.Fatalf("A -> B: %s, attempts %+v", m.State, m.Attempts)
	}
	if code := A.api("GET", fmt.Sprintf("/api/v1/messages/%d/mdn", s.ID), nil, "", nil); code != http.StatusOK {
		t.Errorf("the sender's MDN download answered HTTP %d", code)
	}
	sent := A.export(s.ID)
	for _, name := range []string{"wire.bin", "mdn.bin", "payloads/po.edi", "station.pem", "partner.pem", "signature.p7s", "mdn-signature.p7s"} {
		if len(sent[name]) == 0 {
			t.Errorf("sender's export: %s missing", name)
		}
	}
	verifyExported(t, sent, "signature.p7s", "signed-part.bin", "station.pem")
	verifyExported(t, sent, "mdn-signature.p7s", "mdn-signed-part.bin", "partner.pem")

	in := B.received(s.MessageID)
	got := B.export(in.ID)
	if !bytes.Equal(got["wire.bin"], sent["wire.bin"]) {
		t.Error("the receiver's wire.bin differs from the sender's")
	}
	if !bytes.Equal(got["mdn.bin"], sent["mdn.bin"]) {
		t.Error("the receiver's mdn.bin differs from the MDN the sender received")
	}
	verifyExported(t, got, "signature.p7s", "signed-part.bin", "partner.pem")
	verifyExported(t, got, "mdn-signature.p7s", "mdn-signed-part.bin", "station.pem")
}
