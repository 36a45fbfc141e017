package interop

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/cms"
	"github.com/as2gate/as2gate/cms/cmstest"
)

// The tests below check the MIME layer of AS2 (RFC 1847 multipart/signed, RFC 5751
// application/pkcs7-mime) against OpenSSL's S/MIME: what we pack, OpenSSL verifies and
// decrypts; what OpenSSL writes, we unpack.

// smimePayload is an EDIFACT interchange followed by every byte value: CRLF, bare LF, NUL
// and high bytes must all cross the signature and the encryption unchanged.
func smimePayload() []byte {
	b := []byte("UNA:+.? 'UNB+UNOC:3+STATION+PARTNER+240101:1200+1'\r\nUNH+1+ORDERS:D:96A:UN'\nUNZ+1+1'\r\n")
	for i := 0; i < 256; i++ {
		b = append(b, byte(i))
	}
	return b
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// packSMIME packs smimePayload as po.edi with o, which names no MDN.
func packSMIME(t *testing.T, o *as2.PackOptions) (*as2.Message, []byte) {
	t.Helper()
	o.From, o.To = "STATION", "PARTNER"
	msg, err := as2.Pack([]as2.Payload{{Filename: "po.edi", ContentType: "application/EDIFACT", Body: bytes.NewReader(smimePayload())}}, o)
	if err != nil {
		t.Fatalf("Pack: %v", err)
	}
	t.Cleanup(func() { msg.Close() })
	body, err := io.ReadAll(msg.Body.Open())
	if err != nil {
		t.Fatal(err)
	}
	return msg, body
}

// splitSigned returns the first part of a multipart/signed exactly as it is (what the
// signature covers) and the DER of its signature part.
func splitSigned(t testing.TB, contentType string, body []byte) (signedPart, sigDER []byte) {
	t.Helper()
	mt, params, err := as2.ParseMediaType(contentType)
	if err != nil || mt != "multipart/signed" {
		t.Fatalf("Content-Type %q: %v; want multipart/signed", contentType, err)
	}
	parts, err := as2.SplitMultipart(body, params["boundary"])
	if err != nil || len(parts) != 2 {
		t.Fatalf("multipart/signed with %d parts: %v", len(parts), err)
	}
	sig, err := parts[1].Entity()
	if err != nil {
		t.Fatal(err)
	}
	der, err := sig.DecodedBody()
	if err != nil {
		t.Fatal(err)
	}
	return parts[0].Raw, der
}

// opensslVerifyDetached verifies sig over content with `openssl cms -verify`, the way the
// parts of a multipart/signed must be given to it (a whole CRLF multipart/signed verified
// with -binary keeps a stray CR in the content and fails), and returns the content OpenSSL
// says it verified.
func opensslVerifyDetached(t *testing.T, openssl, dir, certPath string, content, sig []byte) ([]byte, error) {
	t.Helper()
	contentPath := writeFile(t, dir, "part.bin", content)
	sigPath := writeFile(t, dir, "sig.der", sig)
	outPath := filepath.Join(dir, "verified.bin")
	_, err := runErr(nil, openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigPath,
		"-content", contentPath, "-CAfile", certPath, "-purpose", "any", "-out", outPath)
	if err != nil {
		return nil, err
	}
	return readFile(t, outPath), nil
}

// TestOpenSSLSMIMEVerifiesOurMultipartSigned: the multipart/signed Pack writes verifies with
// OpenSSL over its first part exactly as sent, and the MIC Pack expects is the digest of
// those bytes.
func TestOpenSSLSMIMEVerifiesOurMultipartSigned(t *testing.T) {
	t.Parallel()
	openssl := need(t, "openssl")
	station := cmstest.New(t, "smime-station", nil)
	certPath, _ := station.WriteFiles(t, t.TempDir(), "station")
	for _, h := range signedHashes {
		for _, pss := range []bool{false, true} {
			for _, comp := range []as2.Compression{as2.NoCompression, as2.CompressBeforeSign} {
				t.Run(fmt.Sprintf("%s/pss=%t/compress=%s", h.md, pss, comp), func(t *testing.T) {
					t.Parallel()
					alg, err := as2.MICAlgFor(h.hash)
					if err != nil {
						t.Fatal(err)
					}
					msg, body := packSMIME(t, &as2.PackOptions{
						Sign: alg, PSS: pss, Certificate: station.Certificate, Key: station.Key, Compression: comp,
					})
					part, sig := splitSigned(t, msg.Header.Get("Content-Type"), body)
					dir := t.TempDir()
					got, err := opensslVerifyDetached(t, openssl, dir, certPath, part, sig)
					if err != nil {
						t.Fatalf("openssl cms -verify: %v", err)
					}
					if !bytes.Equal(got, part) {
						t.Errorf("OpenSSL verified %d other bytes than the %d of the signed part", len(got), len(part))
					}
					d := h.hash.New()
					d.Write(part)
					if !bytes.Equal(msg.MIC.Digest, d.Sum(nil)) || msg.MIC.Alg != h.hash {
						t.Errorf("MIC %v is not the %s of the signed part", msg.MIC, h.md)
					}

					tampered := bytes.Clone(part)
					tampered[len(tampered)-1] ^= 0x20
					if _, err := opensslVerifyDetached(t, openssl, dir, certPath, tampered, sig); err == nil {
						t.Error("OpenSSL verified a tampered signed part")
					}
				})
			}
		}
	}
}

// smimeToHTTP moves the MIME header of an S/MIME message written by OpenSSL into an HTTP
// header, and returns it with the body, as an AS2 sender puts it on the wire.
func smimeToHTTP(t *testing.T, smime []byte) (http.Header, []byte) {
	t.Helper()
	e, err := as2.ParseEntity(smime)
	if err != nil {
		t.Fatalf("OpenSSL's S/MIME output: %v", err)
	}
	h := http.Header{}
	for _, f := range e.Header.Fields {
		h.Add(f.Name, f.Value)
	}
	return h, e.Body()
}

// TestOpenSSLSMIMEUnpacks: S/MIME written by `openssl cms -sign` and `-encrypt` (LF line
// ends in its MIME structure, base64 in pkcs7-mime) unpacks, verifies and gives the MIC of
// the entity OpenSSL protected.
func TestOpenSSLSMIMEUnpacks(t *testing.T) {
	t.Parallel()
	openssl := need(t, "openssl")
	dir := t.TempDir()
	sender := cmstest.New(t, "smime-sender", nil)
	receiver := cmstest.New(t, "smime-receiver", nil)
	senderCert, senderKey := sender.WriteFiles(t, dir, "sender")
	receiverCert, _ := receiver.WriteFiles(t, dir, "receiver")
	entity := append([]byte("Content-Type: application/EDIFACT\r\nContent-Transfer-Encoding: binary\r\n"+
		"Content-Disposition: attachment; filename=\"po.edi\"\r\n\r\n"), smimePayload()...)
	entityPath := writeFile(t, dir, "entity.bin", entity)

	sign := func(md string, args ...string) []string {
		return append([]string{"cms", "-sign", "-binary", "-md", md, "-in", entityPath, "-signer", senderCert, "-inkey", senderKey}, args...)
	}
	type step struct {
		args []string
		in   bool // the previous step's output is this step's -in
	}
	tests := []struct {
		name   string
		steps  []step
		layers []cms.ContentType
		// mic is the digest of the MIC over the entity: the signature's, or SHA-1 for an
		// unsigned message whose sender offered no algorithm (RFC 4130 §7.4.3).
		mic crypto.Hash
	}{
		{"signed sha1", []step{{args: sign("sha1")}}, []cms.ContentType{cms.TypeSignedData}, crypto.SHA1},
		{"signed sha256", []step{{args: sign("sha256")}}, []cms.ContentType{cms.TypeSignedData}, crypto.SHA256},
		{"signed sha512 without certificate", []step{{args: sign("sha512", "-nocerts")}}, []cms.ContentType{cms.TypeSignedData}, crypto.SHA512},
		{"signed sha384 RSASSA-PSS", []step{{args: sign("sha384", "-keyopt", "rsa_padding_mode:pss")}}, []cms.ContentType{cms.TypeSignedData}, crypto.SHA384},
		{"encrypted aes256", []step{{args: []string{"cms", "-encrypt", "-binary", "-aes256", "-in", entityPath, receiverCert}}},
			[]cms.ContentType{cms.TypeEnvelopedData}, crypto.SHA1},
		{"encrypted des3 with OAEP", []step{{args: []string{"cms", "-encrypt", "-binary", "-des3", "-in", entityPath, "-recip", receiverCert, "-keyopt", "rsa_padding_mode:oaep"}}},
			[]cms.ContentType{cms.TypeEnvelopedData}, crypto.SHA1},
		{"encrypted aes-128-gcm", []step{{args: []string{"cms", "-encrypt", "-binary", "-aes-128-gcm", "-in", entityPath, receiverCert}}},
			[]cms.ContentType{cms.TypeAuthEnvelopedData}, crypto.SHA1},
		{"signed sha256, then encrypted aes256", []step{
			{args: sign("sha256")},
			{args: []string{"cms", "-encrypt", "-binary", "-aes256", "-recip", receiverCert}, in: true},
		}, []cms.ContentType{cms.TypeEnvelopedData, cms.TypeSignedData}, crypto.SHA256},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out []byte
			for i, st := range tc.steps {
				args := st.args
				if st.in {
					args = append(args, "-in", writeFile(t, t.TempDir(), fmt.Sprintf("step%d.eml", i), out))
				}
				out = run(t, nil, openssl, args...)
			}
			h, body := smimeToHTTP(t, out)
			in, err := as2.Unpack(h, io.NewSectionReader(bytes.NewReader(body), 0, int64(len(body))), &as2.UnpackOptions{
				Recipients: []cms.Recipient{{Certificate: receiver.Certificate, Key: receiver.Key}},
				Trusted:    []*x509.Certificate{sender.Certificate},
			})
			if err != nil {
				t.Fatalf("Unpack: %v\nheader %v", err, h)
			}
			defer in.Close()
			var layers []cms.ContentType
			for _, l := range in.Layers {
				layers = append(layers, l.Type)
			}
			if fmt.Sprint(layers) != fmt.Sprint(tc.layers) {
				t.Errorf("layers %v, want %v", layers, tc.layers)
			}
			if s := in.Signer(); s != nil && !s.Certificate.Equal(sender.Certificate) {
				t.Errorf("signed by %v", s.Certificate.Subject)
			}
			if len(in.Attachments) != 1 {
				t.Fatalf("%d attachments, want 1", len(in.Attachments))
			}
			a := in.Attachments[0]
			got, err := io.ReadAll(a.Body.Open())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, smimePayload()) || a.Filename != "po.edi" || a.ContentType != "application/EDIFACT" {
				t.Errorf("attachment %q (%s, %q) differs from the entity OpenSSL protected", a.Filename, a.ContentType, got)
			}
			// Signed: the MIC covers the signed entity; encrypted only: the decrypted entity.
			// Both are the entity OpenSSL was given.
			d := tc.mic.New()
			d.Write(entity)
			if want := (as2.MIC{Alg: tc.mic, Digest: d.Sum(nil)}); !in.MIC.Equal(want) {
				t.Errorf("MIC %v, want %v", in.MIC, want)
			}
		})
	}
}

// TestOpenSSLSMIMEDecryptsOurMessages: the body of a message Pack encrypts decrypts with
// `openssl cms -decrypt` to the MIME entity that was packed; signed inside, that entity's
// signature verifies with OpenSSL too.
func TestOpenSSLSMIMEDecryptsOurMessages(t *testing.T) {
	t.Parallel()
	openssl := need(t, "openssl")
	dir := t.TempDir()
	station := cmstest.New(t, "smime-station", nil)
	partner := cmstest.New(t, "smime-partner", nil)
	stationCert, _ := station.WriteFiles(t, dir, "station")
	partnerCert, partnerKey := partner.WriteFiles(t, dir, "partner")
	type variant struct {
		name string
		kt   cms.KeyTransport
		sign bool
	}
	variants := []variant{
		{"pkcs1", cms.KeyTransport{}, false},
		{"oaep-sha256", cms.KeyTransport{OAEP: true, Hash: crypto.SHA256}, false},
		{"pkcs1/signed", cms.KeyTransport{}, true},
	}
	for _, c := range opensslCiphers {
		for _, v := range variants {
			t.Run(fmt.Sprintf("%s/%s", c.flag[1:], v.name), func(t *testing.T) {
				t.Parallel()
				o := &as2.PackOptions{Encrypt: c.cipher, KeyTransport: v.kt, Recipients: []*x509.Certificate{partner.Certificate}}
				if v.sign {
					o.Sign, o.Certificate, o.Key = as2.MICAlgSHA256, station.Certificate, station.Key
				}
				msg, body := packSMIME(t, o)
				tmp := t.TempDir()
				der := writeFile(t, tmp, "body.der", body)
				outPath := filepath.Join(tmp, "entity.bin")
				run(t, nil, openssl, "cms", "-decrypt", "-binary", "-inform", "DER", "-in", der,
					"-recip", partnerCert, "-inkey", partnerKey, "-out", outPath)
				plain := readFile(t, outPath)
				e, err := as2.ParseEntity(plain)
				if err != nil {
					t.Fatalf("decrypted entity: %v", err)
				}

				if !v.sign {
					if ct := e.Header.Get("Content-Type"); ct != "application/EDIFACT" || e.Header.Filename() != "po.edi" {
						t.Errorf("entity Content-Type %q, filename %q", ct, e.Header.Filename())
					}
					if got, err := e.DecodedBody(); err != nil || !bytes.Equal(got, smimePayload()) {
						t.Errorf("entity body %q (%v), want the payload", got, err)
					}
					// Encrypted only: the MIC covers exactly the entity OpenSSL decrypted.
					d := msg.MIC.Alg.New()
					d.Write(plain)
					if !bytes.Equal(d.Sum(nil), msg.MIC.Digest) {
						t.Errorf("MIC %v is not the digest of the decrypted entity", msg.MIC)
					}
					return
				}
				part, sig := splitSigned(t, e.Header.Get("Content-Type"), e.Body())
				got, err := opensslVerifyDetached(t, openssl, tmp, stationCert, part, sig)
				if err != nil {
					t.Fatalf("openssl cms -verify of the decrypted multipart/signed: %v", err)
				}
				if !strings.HasPrefix(string(got), "Content-Type: application/EDIFACT\r\n") || !bytes.HasSuffix(got, smimePayload()) {
					t.Errorf("OpenSSL verified %q, want the payload entity", got)
				}
			})
		}
	}
}
