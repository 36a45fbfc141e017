package interop

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/cms/cmstest"
	"github.com/as2gate/as2gate/internal/archive"
	"github.com/as2gate/as2gate/internal/payload"
	"github.com/as2gate/as2gate/internal/store"
)

// exportFixture packs a signed message from STATION to PARTNER and the signed MDN PARTNER
// returns for it, stores both with the payload in a payload folder, and returns the row an
// outbound (or, with direction store.Inbound and the roles swapped, inbound) message has.
func exportFixture(t *testing.T, direction string) (*store.Message, payload.Store, *cmstest.Identity, *cmstest.Identity) {
	t.Helper()
	ctx := context.Background()
	ps, err := payload.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	put := func(b []byte) string {
		key, _, err := ps.Put(ctx, bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	// The sender signs the message, the receiver the MDN. The station is the sender of an
	// outbound message and the receiver of an inbound one.
	station, partner := cmstest.New(t, "STATION", nil), cmstest.New(t, "PARTNER", nil)
	sender, receiver := station, partner
	if direction == store.Inbound {
		sender, receiver = partner, station
	}
	doc := []byte("UNA:+.? 'UNB+UNOC:3+SENDER+RECEIVER+260304:0506+1'UNZ+0+1'\n")
	msg, err := as2.Pack([]as2.Payload{{Filename: "orders 2026.edi", ContentType: "application/edifact", Body: bytes.NewReader(doc)}},
		&as2.PackOptions{From: sender.Name, To: receiver.Name, Sign: as2.MICAlgSHA256, Certificate: sender.Certificate, Key: sender.Key,
			MDN: as2.MDNRequest{Mode: as2.MDNSync, Signed: true, MICAlgs: []as2.MICAlg{as2.MICAlgSHA256}}})
	if err != nil {
		t.Fatal(err)
	}
	defer msg.Close()
	wire, err := io.ReadAll(msg.Body.Open())
	if err != nil {
		t.Fatal(err)
	}
	req := &as2.Request{From: sender.Name, To: receiver.Name, MessageID: msg.MessageID, MDN: msg.MDN}
	mdn := &as2.MDN{ReportingUA: "interop", OriginalRecipient: receiver.Name, FinalRecipient: receiver.Name,
		OriginalMessageID: msg.MessageID, Disposition: as2.Processed(), ReceivedMIC: &msg.MIC}
	mh, mdnBody, err := as2.EncodeMDN(mdn, req, &as2.MDNSigner{Certificate: receiver.Certificate, Key: receiver.Key}, receiver.Name)
	if err != nil {
		t.Fatal(err)
	}
	var mhText strings.Builder
	mh.Write(&mhText)
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	m := &store.Message{
		ID: 42, Direction: direction, Kind: store.KindMessage, MessageID: msg.MessageID, Station: "STATION", Partner: "PARTNER",
		State: store.StateSent, Wire: put(wire), WireHeader: msg.Header, MIC: msg.MIC.String(),
		Files: []store.File{{Name: "orders 2026.edi", ContentType: "application/edifact", Size: int64(len(doc)), SHA256: put(doc)}},
		MDN: &store.MDN{Disposition: mdn.Disposition.String(), Positive: true, MICOK: true, MIC: msg.MIC.String(), Signed: true,
			MessageID: mh.Get("Message-ID"), Header: mhText.String(), Key: put(mdnBody), At: at},
		CreatedAt: at, UpdatedAt: at,
	}
	if direction == store.Inbound {
		m.State = store.StateReceived
	}
	return m, ps, station, partner
}

// unzip writes the archive's entries under dir.
func unzip(t *testing.T, b []byte, dir string) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if !filepath.IsLocal(f.Name) {
			t.Fatalf("entry %q is not a local path", f.Name)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// shell runs one command line of README.txt in dir, as an auditor would paste it.
func shell(dir, line string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Dir = dir
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

var dgstLine = regexp.MustCompile(`^[A-Za-z0-9-]+\((.+)\)= ([0-9a-f]{64})$`)

// TestExportChecksWithOpenSSL makes the export of a signed message with a signed MDN, unpacks
// it, and runs the openssl commands its README.txt gives, exactly as written: the digests
// match the manifest, both signatures verify, and the MIC the MDN acknowledges is the signed
// part's digest. A signature checked against the other side's certificate, or a signed part
// changed by one byte, must fail.
func TestExportChecksWithOpenSSL(t *testing.T) {
	t.Parallel()
	need(t, "openssl")
	need(t, "sh")
	for _, direction := range []string{store.Outbound, store.Inbound} {
		t.Run(direction, func(t *testing.T) {
			t.Parallel()
			m, ps, station, partner := exportFixture(t, direction)
			e, err := archive.Open(context.Background(), archive.Input{Message: m, Payloads: ps,
				Station: []*x509.Certificate{station.Certificate}, Partner: []*x509.Certificate{partner.Certificate}})
			if err != nil {
				t.Fatal(err)
			}
			var zipped bytes.Buffer
			err = e.Write(&zipped)
			e.Close()
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			unzip(t, zipped.Bytes(), dir)
			manBytes, err := os.ReadFile(filepath.Join(dir, archive.ManifestName))
			if err != nil {
				t.Fatal(err)
			}
			var man archive.Manifest
			if err := json.Unmarshal(manBytes, &man); err != nil {
				t.Fatal(err)
			}
			readme, err := os.ReadFile(filepath.Join(dir, archive.ReadmeName))
			if err != nil {
				t.Fatal(err)
			}

			var digests, verifies, mics int
			for line := range strings.SplitSeq(string(readme), "\n") {
				cmd, ok := strings.CutPrefix(line, "  openssl ")
				if !ok || strings.Contains(cmd, "<") {
					continue // prose, or a command with a placeholder to fill in
				}
				cmd = "openssl " + cmd
				out, errOut, err := shell(dir, cmd)
				if err != nil {
					t.Fatalf("%s: %v\n%s", cmd, err, errOut)
				}
				switch {
				case strings.HasPrefix(cmd, "openssl dgst -sha256 -binary"):
					mics++
					if want, _, _ := strings.Cut(m.MDN.MIC, ","); strings.TrimSpace(out) != want {
						t.Errorf("%s printed %q; the MDN's Received-Content-MIC is %s", cmd, out, m.MDN.MIC)
					}
				case strings.HasPrefix(cmd, "openssl dgst -sha256 "):
					digests++
					got := map[string]string{}
					for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
						if mm := dgstLine.FindStringSubmatch(l); mm != nil {
							got[mm[1]] = mm[2]
						}
					}
					for _, f := range man.Files {
						if got[f.Name] != f.SHA256 {
							t.Errorf("openssl says %s has SHA-256 %q, the manifest %s", f.Name, got[f.Name], f.SHA256)
						}
					}
					if len(got) != len(man.Files) {
						t.Errorf("openssl digested %d files, the manifest lists %d", len(got), len(man.Files))
					}
				case strings.HasPrefix(cmd, "openssl cms -verify"):
					verifies++
					if !strings.Contains(errOut, "Verification successful") {
						t.Errorf("%s: %s", cmd, errOut)
					}
				}
			}
			if digests != 1 || verifies != 4 || mics != 1 {
				t.Fatalf("README.txt gave %d digest, %d verify and %d MIC commands, want 1, 4 (two per signature) and 1:\n%s", digests, verifies, mics, readme)
			}

			// The signer check is real: the certificate of the other side is not the signer's.
			signer, other := archive.StationCerts, archive.PartnerCerts
			if direction == store.Inbound {
				signer, other = other, signer
			}
			trusted := "openssl cms -verify -binary -inform DER -in signature.p7s -content signed-part.bin -CAfile " + signer + " -partial_chain -purpose any -no_check_time -out /dev/null"
			if !strings.Contains(string(readme), trusted) {
				t.Fatalf("README.txt lacks %q", trusted)
			}
			if _, errOut, err := shell(dir, strings.Replace(trusted, signer, other, 1)); err == nil {
				t.Errorf("the signature verified as signed by a certificate in %s: %s", other, errOut)
			}

			// The check is real: a signed part changed by one byte no longer verifies.
			part := filepath.Join(dir, archive.WireSignedPart)
			b, err := os.ReadFile(part)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)-3] ^= 1
			if err := os.WriteFile(part, b, 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := "openssl cms -verify -binary -inform DER -in signature.p7s -content signed-part.bin -certfile " + signer + " -noverify -out /dev/null"
			if !strings.Contains(string(readme), cmd) {
				t.Fatalf("README.txt lacks %q", cmd)
			}
			for _, c := range []string{cmd, trusted} {
				if _, errOut, err := shell(dir, c); err == nil {
					t.Errorf("a changed signed part verified: %s: %s", c, errOut)
				}
			}
		})
	}
}
