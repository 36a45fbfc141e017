package archive

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
	"github.com/as2gate/as2gate/internal/payload"
	"github.com/as2gate/as2gate/internal/store"
)

// fixture is a message of every part kept in a real payload folder.
type fixture struct {
	store            payload.Store
	msg              *store.Message
	station, partner *cmstest.Identity
	wire, mdn        []byte
}

func put(t *testing.T, ps payload.Store, b []byte) string {
	t.Helper()
	key, _, err := ps.Put(context.Background(), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// newFixture packs an outbound message from station to partner, signed when sign is set,
// and a receipt from partner, signed when signedMDN is set.
func newFixture(t *testing.T, sign, signedMDN bool) *fixture {
	t.Helper()
	ps, err := payload.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: ps, station: cmstest.New(t, "STATION", nil), partner: cmstest.New(t, "PARTNER", nil)}
	opts := &as2.PackOptions{From: "STATION", To: "PARTNER", Subject: "invoices",
		MDN: as2.MDNRequest{Mode: as2.MDNSync, Signed: signedMDN}}
	if sign {
		opts.Sign, opts.Certificate, opts.Key = as2.MICAlgSHA256, f.station.Certificate, f.station.Key
	}
	doc := []byte("ISA*00*          *00*          *ZZ*STATION        *ZZ*PARTNER        ~\r\n")
	packed, err := as2.Pack([]as2.Payload{{Filename: "../../etc/invoice.edi", ContentType: "application/edi-x12", Body: bytes.NewReader(doc)}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer packed.Close()
	f.wire, err = io.ReadAll(packed.Body.Open())
	if err != nil {
		t.Fatal(err)
	}
	req := &as2.Request{From: "STATION", To: "PARTNER", MessageID: packed.MessageID, MDN: packed.MDN}
	mdn := &as2.MDN{ReportingUA: "test", OriginalRecipient: "PARTNER", FinalRecipient: "PARTNER",
		OriginalMessageID: packed.MessageID, Disposition: as2.Processed(), ReceivedMIC: &packed.MIC}
	mh, mdnBody, err := as2.EncodeMDN(mdn, req, &as2.MDNSigner{Certificate: f.partner.Certificate, Key: f.partner.Key}, "PARTNER")
	if err != nil {
		t.Fatal(err)
	}
	f.mdn = mdnBody
	var mhText strings.Builder
	mh.Write(&mhText)
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	f.msg = &store.Message{
		ID: 7, Direction: store.Outbound, Kind: store.KindMessage, MessageID: packed.MessageID,
		Station: "STATION", Partner: "PARTNER", Subject: "invoices", State: store.StateSent,
		Files:      []store.File{{Name: "../../etc/invoice.edi", ContentType: "application/edi-x12", Size: int64(len(doc)), SHA256: put(t, ps, doc)}},
		Wire:       put(t, ps, f.wire),
		WireHeader: packed.Header,
		MIC:        packed.MIC.String(),
		MDN: &store.MDN{Disposition: mdn.Disposition.String(), Positive: true, MICOK: true, MIC: packed.MIC.String(),
			Signed: signedMDN, MessageID: mh.Get("Message-ID"), Header: mhText.String(), Key: put(t, ps, mdnBody), At: at},
		CreatedAt: at, UpdatedAt: at,
	}
	return f
}

// export writes the fixture's export and returns its entries by name and its manifest.
func (f *fixture) export(t *testing.T) (map[string][]byte, Manifest) {
	t.Helper()
	e, err := Open(context.Background(), Input{Message: f.msg, Payloads: f.store,
		Station: []*x509.Certificate{f.station.Certificate}, Partner: []*x509.Certificate{f.partner.Certificate},
		Now: time.Date(2026, 3, 5, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var buf bytes.Buffer
	if err := e.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return readZip(t, buf.Bytes())
}

func readZip(t *testing.T, b []byte) (map[string][]byte, Manifest) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, zf := range zr.File {
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[zf.Name], err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	var man Manifest
	if err := json.Unmarshal(files[ManifestName], &man); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	// Every entry but the manifest is listed, with its digest and size.
	if len(man.Files) != len(files)-1 {
		t.Errorf("manifest lists %d files, the archive holds %d besides it", len(man.Files), len(files)-1)
	}
	for _, e := range man.Files {
		got, ok := files[e.Name]
		if !ok {
			t.Errorf("manifest lists %s, which is not in the archive", e.Name)
			continue
		}
		sum := sha256.Sum256(got)
		if hex.EncodeToString(sum[:]) != e.SHA256 || int64(len(got)) != e.Size {
			t.Errorf("%s: manifest says %s (%d bytes), content is %x (%d bytes)", e.Name, e.SHA256, e.Size, sum, len(got))
		}
	}
	return files, man
}

func verifyDetached(t *testing.T, sig, content []byte, cert *x509.Certificate) {
	t.Helper()
	sd, err := cms.ParseSignedData(sig)
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	if _, err := sd.Verify(bytes.NewReader(content), []*x509.Certificate{cert}); err != nil {
		t.Fatalf("signature does not verify over the split part: %v", err)
	}
}

func TestExportSignedMessageAndMDN(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true, true)
	files, man := f.export(t)

	if !bytes.Equal(files[WireBody], f.wire) || !bytes.Equal(files[MDNBody], f.mdn) {
		t.Error("wire.bin or mdn.bin differs from the stored bytes")
	}
	if !strings.Contains(string(files[WireHeaders]), "Content-Type: multipart/signed") {
		t.Errorf("wire-headers.txt lacks the Content-Type:\n%s", files[WireHeaders])
	}
	if !strings.Contains(string(files[MDNHeaders]), "Content-Type: multipart/signed") {
		t.Errorf("mdn-headers.txt lacks the Content-Type:\n%s", files[MDNHeaders])
	}
	verifyDetached(t, files[WireSignature], files[WireSignedPart], f.station.Certificate)
	verifyDetached(t, files[MDNSignature], files[MDNSignedPart], f.partner.Certificate)
	// The MIC the MDN acknowledges is the digest of the signed part, as README.txt says.
	sum := sha256.Sum256(files[WireSignedPart])
	if mic, _ := as2.ParseMIC(f.msg.MIC); !bytes.Equal(mic.Digest, sum[:]) {
		t.Errorf("the MIC %s is not the SHA-256 of signed-part.bin", f.msg.MIC)
	}
	for name, cert := range map[string]*x509.Certificate{StationCerts: f.station.Certificate, PartnerCerts: f.partner.Certificate} {
		blk, _ := pem.Decode(files[name])
		if blk == nil || !bytes.Equal(blk.Bytes, cert.Raw) {
			t.Errorf("%s does not hold the certificate", name)
		}
	}
	if got := files["payloads/invoice.edi"]; !bytes.HasPrefix(got, []byte("ISA*")) {
		t.Errorf("payloads/invoice.edi = %q; entries %v", got, man.Files)
	}
	if man.MessageID != f.msg.MessageID || man.Direction != "out" || man.MDN == nil || man.MDN.Disposition != f.msg.MDN.Disposition || man.MIC != f.msg.MIC {
		t.Errorf("manifest = %+v", man)
	}
	if len(man.Notes) != 0 {
		t.Errorf("notes: %q", man.Notes)
	}
	readme := string(files[ReadmeName])
	for _, want := range []string{
		"openssl cms -verify -binary -inform DER -in signature.p7s -content signed-part.bin -certfile station.pem -noverify",
		"openssl cms -verify -binary -inform DER -in mdn-signature.p7s -content mdn-signed-part.bin -certfile partner.pem -noverify",
		"openssl dgst -sha256 ",
		f.msg.MDN.MIC,
	} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.txt lacks %q:\n%s", want, readme)
		}
	}
}

func TestExportInboundSignerNames(t *testing.T) {
	t.Parallel()
	// Received: the wire message is the partner's, the MDN ours.
	f := newFixture(t, true, true)
	f.msg.Direction = store.Inbound
	files, _ := f.export(t)
	readme := string(files[ReadmeName])
	for _, want := range []string{"-in signature.p7s -content signed-part.bin -certfile partner.pem", "-in mdn-signature.p7s -content mdn-signed-part.bin -certfile station.pem"} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.txt lacks %q", want)
		}
	}
}

func TestExportUnsigned(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false, false)
	files, man := f.export(t)
	for _, name := range []string{WireSignedPart, WireSignature, MDNSignedPart, MDNSignature} {
		if _, ok := files[name]; ok {
			t.Errorf("%s written for an unsigned message", name)
		}
	}
	if !strings.Contains(string(files[ReadmeName]), "there is no signature to") {
		t.Errorf("README.txt does not say there is no signature:\n%s", files[ReadmeName])
	}
	if len(man.Files) != 8 { // wire, headers, mdn, headers, payload, 2 certificates, README
		t.Errorf("manifest lists %d files: %+v", len(man.Files), man.Files)
	}
}

func TestExportWithoutMDNOrCertificates(t *testing.T) {
	t.Parallel()
	f := newFixture(t, true, false)
	f.msg.MDN = nil
	f.msg.Files = append(f.msg.Files, f.msg.Files[0]) // the same name twice stays two files
	e, err := Open(context.Background(), Input{Message: f.msg, Payloads: f.store, CertificateError: errors.New("no partner \"PARTNER\" is configured")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var buf bytes.Buffer
	if err := e.Write(&buf); err != nil {
		t.Fatal(err)
	}
	files, man := readZip(t, buf.Bytes())
	for _, name := range []string{MDNBody, MDNHeaders, StationCerts, PartnerCerts} {
		if _, ok := files[name]; ok {
			t.Errorf("%s written", name)
		}
	}
	for _, name := range []string{"payloads/invoice.edi", "payloads/invoice (2).edi", WireSignature} {
		if _, ok := files[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
	if man.MDN != nil || len(man.Notes) != 1 || !strings.Contains(man.Notes[0], "no partner") {
		t.Errorf("manifest: mdn %+v, notes %q", man.MDN, man.Notes)
	}
}

func TestExportMalformedSignedEntity(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false, false)
	bad := []byte("no delimiter anywhere\r\n")
	f.msg.Wire = put(t, f.store, bad)
	f.msg.WireHeader = http.Header{"Content-Type": {`multipart/signed; boundary="b1"; protocol="application/pkcs7-signature"`}}
	files, man := f.export(t)
	if !bytes.Equal(files[WireBody], bad) {
		t.Error("wire.bin differs")
	}
	if _, ok := files[WireSignature]; ok {
		t.Error("a signature was split out of an entity without parts")
	}
	if len(man.Notes) != 1 || !strings.Contains(man.Notes[0], "multipart/signed") {
		t.Errorf("notes: %q", man.Notes)
	}
}

func TestOpenMissingBlob(t *testing.T) {
	t.Parallel()
	f := newFixture(t, false, false)
	f.msg.Files[0].SHA256 = strings.Repeat("ab", 32)
	_, err := Open(context.Background(), Input{Message: f.msg, Payloads: f.store})
	if !errors.Is(err, payload.ErrNotFound) || !strings.Contains(err.Error(), "payload 0") {
		t.Fatalf("err = %v, want a payload.ErrNotFound naming payload 0", err)
	}
	if _, err := Open(context.Background(), Input{Payloads: f.store}); err == nil {
		t.Fatal("no error without a message")
	}
}

func TestSafeName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "invoice.edi", "invoice.edi"},
		{"unix path", "../../etc/passwd", "passwd"},
		{"windows path", `C:\temp\order.xml`, "order.xml"},
		{"hidden", "..profile", "profile"},
		{"control and reserved", "a\x00b\r\nc<d>:e?.txt", "a_b__c_d__e_.txt"},
		{"only dots", "..", "file-3"},
		{"empty", "", "file-3"},
		{"only reserved", "???", "file-3"},
		{"unicode kept", "Rechnung-März.pdf", "Rechnung-März.pdf"},
		{"invalid utf-8", "a\xffb", "a_b"},
		{"long", strings.Repeat("é", 150), strings.Repeat("é", 100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SafeName(tc.in, 3); got != tc.want {
				t.Errorf("SafeName(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// memStore is a payload.Store in memory, for the fuzz target.
type memStore map[string][]byte

type memBlob struct{ *bytes.Reader }

func (memBlob) Close() error { return nil }

func (s memStore) Put(_ context.Context, r io.Reader) (string, int64, error) {
	b, err := io.ReadAll(r)
	sum := sha256.Sum256(b)
	s[hex.EncodeToString(sum[:])] = b
	return hex.EncodeToString(sum[:]), int64(len(b)), err
}

func (s memStore) Open(_ context.Context, key string) (payload.Blob, error) {
	b, ok := s[key]
	if !ok {
		return nil, payload.ErrNotFound
	}
	return memBlob{bytes.NewReader(b)}, nil
}

func (memStore) Ping(context.Context) error { return nil }

// FuzzExport writes exports of arbitrary wire messages and MDNs under arbitrary content
// types: nothing panics, and the ZIP always reads back with the manifest's digests right.
func FuzzExport(f *testing.F) {
	f.Add([]byte("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\nMIIB\r\n--b--\r\n"), `multipart/signed; boundary="b"`, "--b\n\n--b--", "multipart/signed; boundary=b")
	f.Add([]byte("--b\r\n\r\n--b--"), `multipart/signed; boundary=""`, "", "text/plain")
	f.Fuzz(func(t *testing.T, wire []byte, wireType string, mdn string, mdnType string) {
		ps := memStore{}
		key, _, _ := ps.Put(context.Background(), bytes.NewReader(wire))
		mdnKey, _, _ := ps.Put(context.Background(), strings.NewReader(mdn))
		m := &store.Message{ID: 1, Direction: store.Inbound, MessageID: "<f@z>", Wire: key,
			WireHeader: http.Header{"Content-Type": {wireType}},
			MDN:        &store.MDN{Key: mdnKey, Header: "Content-Type: " + mdnType + "\r\n"}}
		e, err := Open(context.Background(), Input{Message: m, Payloads: ps})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		var buf bytes.Buffer
		if err := e.Write(&buf); err != nil {
			t.Fatal(err)
		}
		files, _ := readZip(t, buf.Bytes())
		if !bytes.Equal(files[WireBody], wire) {
			t.Fatal("wire.bin differs")
		}
	})
}
