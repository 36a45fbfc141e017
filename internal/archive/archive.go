// Package archive writes the non-repudiation export of one message: a ZIP holding the wire
// message and its MDN exactly as they crossed the network, the decoded payloads, the
// certificates involved, the detached signatures split out of any multipart/signed entity,
// and a manifest of SHA-256 digests, with a README.txt that tells an auditor how to check
// all of it with the openssl command line alone. The split follows RFC 1847 (multipart/signed)
// and RFC 5751 §3.5; README.txt relates the MDN's Received-Content-MIC to the signed part as
// RFC 4130 §7.3.1 defines it.
//
// Every blob is streamed from the payload store into the ZIP; nothing is held whole in
// memory, so an export of a large message costs a fixed buffer.
package archive

import (
	"archive/zip"
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/internal/payload"
	"github.com/as2gate/as2gate/internal/store"
)

// Names of the fixed entries of an export.
const (
	WireBody         = "wire.bin"
	WireHeaders      = "wire-headers.txt"
	WireSignedPart   = "signed-part.bin"
	WireSignature    = "signature.p7s"
	MDNBody          = "mdn.bin"
	MDNHeaders       = "mdn-headers.txt"
	MDNSignedPart    = "mdn-signed-part.bin"
	MDNSignature     = "mdn-signature.p7s"
	StationCerts     = "station.pem"
	PartnerCerts     = "partner.pem"
	ManifestName     = "manifest.json"
	ReadmeName       = "README.txt"
	PayloadDirectory = "payloads/"
)

// Input is what an export is made of.
type Input struct {
	Message  *store.Message
	Payloads payload.Store
	// Station and Partner are the certificates of both sides as the gateway knows them now:
	// the station's current and previous ones, every certificate of the partner's.
	Station, Partner []*x509.Certificate
	// CertificateError, when set, says why the certificates could not be looked up; the
	// export is still written, and the manifest notes it.
	CertificateError error
	// Now stamps the manifest; zero means time.Now.
	Now time.Time
}

// Manifest is manifest.json: what the message was and a digest of every other entry.
type Manifest struct {
	ID          int64     `json:"id"`
	MessageID   string    `json:"message_id"`
	Direction   string    `json:"direction"`
	Kind        string    `json:"kind"`
	Station     string    `json:"station"`
	Partner     string    `json:"partner"`
	Subject     string    `json:"subject,omitempty"`
	State       string    `json:"state"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	ExportedAt  time.Time `json:"exported_at"`
	MIC         string    `json:"mic,omitempty"`
	MDN         *MDNInfo  `json:"mdn,omitempty"`
	Files       []Entry   `json:"files"`
	Notes       []string  `json:"notes,omitempty"`
	Description string    `json:"description"`
}

// MDNInfo is what the gateway recorded of the message's MDN.
type MDNInfo struct {
	MessageID   string    `json:"message_id,omitempty"`
	Disposition string    `json:"disposition"`
	MIC         string    `json:"mic,omitempty"`
	MICOK       bool      `json:"mic_ok"`
	Signed      bool      `json:"signed"`
	At          time.Time `json:"at"`
}

// Entry is one file of the export.
type Entry struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// Role says what the file is, e.g. "wire message body" or "payload invoice.edi".
	Role string `json:"role"`
}

// Export is an export ready to be written: every blob it needs is open, so that a missing
// blob is reported by Open, before anything is written.
type Export struct {
	in    Input
	wire  payload.Blob
	mdn   payload.Blob
	files []payload.Blob
	notes []string
}

// Open checks in and opens the blobs of the message. The caller must Close the export.
func Open(ctx context.Context, in Input) (_ *Export, err error) {
	m := in.Message
	if m == nil || in.Payloads == nil {
		return nil, errors.New("archive: a message and a payload store are required")
	}
	e := &Export{in: in}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if m.Wire == "" {
		e.notes = append(e.notes, "the wire message was never stored (the message was not packed yet)")
	} else if e.wire, err = in.Payloads.Open(ctx, m.Wire); err != nil {
		return nil, fmt.Errorf("archive: message %d: the wire message: %w", m.ID, err)
	}
	if m.MDN != nil && m.MDN.Key != "" {
		if e.mdn, err = in.Payloads.Open(ctx, m.MDN.Key); err != nil {
			return nil, fmt.Errorf("archive: message %d: the MDN: %w", m.ID, err)
		}
	} else if m.MDN != nil {
		e.notes = append(e.notes, "the MDN was recorded but its bytes were not kept")
	}
	for i, f := range m.Files {
		b, err := in.Payloads.Open(ctx, f.SHA256)
		if err != nil {
			return nil, fmt.Errorf("archive: message %d: payload %d (%s): %w", m.ID, i, f.Name, err)
		}
		e.files = append(e.files, b)
	}
	if in.CertificateError != nil {
		e.notes = append(e.notes, "certificates not included: "+in.CertificateError.Error())
	}
	return e, nil
}

// Close releases the blobs.
func (e *Export) Close() error {
	for _, b := range append([]payload.Blob{e.wire, e.mdn}, e.files...) {
		if b != nil {
			b.Close()
		}
	}
	return nil
}

// signedItem is a multipart/signed entity split into its parts for openssl.
type signedItem struct {
	what      string // "the wire message", "the MDN"
	part, sig string // entry names
	signer    string // the PEM file holding the signer's certificate
}

// Write writes the ZIP to w.
func (e *Export) Write(w io.Writer) error {
	m := e.in.Message
	now := e.in.Now
	if now.IsZero() {
		now = time.Now()
	}
	// Entries are stamped with the export time, so the same export is the same ZIP.
	z := &zipWriter{zw: zip.NewWriter(w), modified: now.UTC()}
	man := Manifest{
		ID: m.ID, MessageID: m.MessageID, Direction: m.Direction, Kind: m.Kind, Station: m.Station,
		Partner: m.Partner, Subject: m.Subject, State: m.State, CreatedAt: m.CreatedAt,
		UpdatedAt: m.UpdatedAt, ExportedAt: now.UTC(), MIC: m.MIC, Notes: e.notes,
		Description: "SHA-256 digests of every other file of this archive; see README.txt",
	}
	if m.MDN != nil {
		man.MDN = &MDNInfo{MessageID: m.MDN.MessageID, Disposition: m.MDN.Disposition, MIC: m.MDN.MIC,
			MICOK: m.MDN.MICOK, Signed: m.MDN.Signed, At: m.MDN.At}
	}
	// Who signed what: we sign what we send, the partner what we receive. An inbound
	// message's MDN is ours, an outbound message's MDN is the partner's.
	ourSide, theirSide := StationCerts, PartnerCerts
	wireSigner, mdnSigner := theirSide, ourSide
	if m.Direction == store.Outbound {
		wireSigner, mdnSigner = ourSide, theirSide
	}
	var signed []signedItem
	if e.wire != nil {
		if err := z.copy(WireBody, "wire message body, exactly as sent or received", e.wire); err != nil {
			return err
		}
		if err := z.bytes(WireHeaders, "HTTP headers of the wire message", headerText(PublicHeader(m.WireHeader))); err != nil {
			return err
		}
		ok, note, err := z.split(e.wire, m.WireHeader.Get("Content-Type"), WireSignedPart, WireSignature, "the wire message")
		if err != nil {
			return err
		}
		if note != nil {
			man.Notes = append(man.Notes, note.Error())
		}
		if ok {
			signed = append(signed, signedItem{"the wire message", WireSignedPart, WireSignature, wireSigner})
		}
	}
	if e.mdn != nil {
		if err := z.copy(MDNBody, "MDN body, exactly as sent or received", e.mdn); err != nil {
			return err
		}
		if err := z.bytes(MDNHeaders, "HTTP headers of the MDN", []byte(m.MDN.Header)); err != nil {
			return err
		}
		ok, note, err := z.split(e.mdn, contentTypeOf(m.MDN.Header), MDNSignedPart, MDNSignature, "the MDN")
		if err != nil {
			return err
		}
		if note != nil {
			man.Notes = append(man.Notes, note.Error())
		}
		if ok {
			signed = append(signed, signedItem{"the MDN", MDNSignedPart, MDNSignature, mdnSigner})
		}
	}
	used := map[string]bool{}
	for i, f := range m.Files {
		name := PayloadDirectory + uniqueName(SafeName(f.Name, i), used)
		if err := z.copy(name, fmt.Sprintf("payload %d %q (%s)", i, f.Name, f.ContentType), e.files[i]); err != nil {
			return err
		}
	}
	if len(e.in.Station) > 0 {
		if err := z.bytes(StationCerts, "certificates of station "+m.Station, pemCerts(e.in.Station)); err != nil {
			return err
		}
	}
	if len(e.in.Partner) > 0 {
		if err := z.bytes(PartnerCerts, "certificates of partner "+m.Partner, pemCerts(e.in.Partner)); err != nil {
			return err
		}
	}
	if err := z.bytes(ReadmeName, "how to check this archive", readme(m, signed, z.entries)); err != nil {
		return err
	}
	man.Files = z.entries
	body, err := json.MarshalIndent(man, "", "  ")
	if err != nil {
		return fmt.Errorf("archive: manifest: %w", err)
	}
	if _, err := z.create(ManifestName, append(body, '\n')); err != nil {
		return err
	}
	if err := z.zw.Close(); err != nil {
		return fmt.Errorf("archive: %w", err)
	}
	return nil
}

// zipWriter adds entries and records their digests.
type zipWriter struct {
	zw       *zip.Writer
	modified time.Time
	entries  []Entry
}

func (z *zipWriter) open(name string) (io.Writer, error) {
	w, err := z.zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: z.modified})
	if err != nil {
		return nil, fmt.Errorf("archive: adding %s: %w", name, err)
	}
	return w, nil
}

// digest is a writer that hashes and counts what passes.
type digest struct {
	h hash.Hash
	n int64
}

func (d *digest) Write(p []byte) (int, error) {
	d.h.Write(p)
	d.n += int64(len(p))
	return len(p), nil
}

func (z *zipWriter) stream(name, role string, r io.Reader) error {
	w, err := z.open(name)
	if err != nil {
		return err
	}
	d := &digest{h: sha256.New()}
	if _, err := io.Copy(io.MultiWriter(w, d), r); err != nil {
		return fmt.Errorf("archive: writing %s: %w", name, err)
	}
	z.entries = append(z.entries, Entry{Name: name, Size: d.n, SHA256: hex.EncodeToString(d.h.Sum(nil)), Role: role})
	return nil
}

func (z *zipWriter) copy(name, role string, b payload.Blob) error {
	return z.stream(name, role, io.NewSectionReader(b, 0, b.Size()))
}

func (z *zipWriter) bytes(name, role string, b []byte) error {
	return z.stream(name, role, strings.NewReader(string(b)))
}

// create adds an entry that the manifest does not list (the manifest itself).
func (z *zipWriter) create(name string, b []byte) (int, error) {
	w, err := z.open(name)
	if err != nil {
		return 0, err
	}
	return w.Write(b)
}

// split writes the two parts of a multipart/signed blob: the first part exactly as signed, and
// the signature decoded to DER. It reports false, with no error, when the blob is not
// multipart/signed. An entity that is multipart/signed but does not split is reported by the
// returned note, which the export records rather than fails on, because the wire bytes are the
// evidence either way. The blob is read twice, once to check that it splits, so that no entry
// is begun that could not be finished.
func (z *zipWriter) split(b payload.Blob, contentType, partName, sigName, what string) (ok bool, note, err error) {
	mt, params, perr := as2.ParseMediaType(contentType)
	if perr != nil || mt != "multipart/signed" {
		return false, nil, nil
	}
	discard := func(r io.Reader) error { _, err := io.Copy(io.Discard, r); return err }
	if err := walkSigned(b, params["boundary"], what, discard, discard); err != nil {
		return false, err, nil
	}
	err = walkSigned(b, params["boundary"], what,
		func(r io.Reader) error {
			return z.stream(partName, "the signed part of "+what+", exact bytes (openssl cms -content)", r)
		},
		func(r io.Reader) error {
			return z.stream(sigName, "the detached CMS signature of "+what+", DER", r)
		})
	if err != nil {
		return false, nil, err
	}
	return true, nil, nil
}

// walkSigned hands the first part of a multipart/signed body, exact bytes, to part, and the
// second part's body, transfer encoding removed, to sig.
func walkSigned(b payload.Blob, boundary, what string, part, sig func(io.Reader) error) error {
	mr := as2.NewMultipartReader(io.NewSectionReader(b, 0, b.Size()), boundary)
	first, err := mr.NextPart()
	if err != nil {
		return fmt.Errorf("%s is multipart/signed but its signed part cannot be read: %w", what, err)
	}
	if err := part(first); err != nil {
		return fmt.Errorf("%s: the signed part: %w", what, err)
	}
	second, err := mr.NextPart()
	if err != nil {
		return fmt.Errorf("%s is multipart/signed but has no signature part: %w", what, err)
	}
	ent, err := as2.ReadEntity(second)
	if err != nil {
		return fmt.Errorf("%s: the signature part's header cannot be read: %w", what, err)
	}
	der, err := as2.DecodeTransferEncoding(ent.Header.TransferEncoding(), ent.Body)
	if err != nil {
		return fmt.Errorf("%s: the signature part: %w", what, err)
	}
	if err := sig(der); err != nil {
		return fmt.Errorf("%s: the signature part: %w", what, err)
	}
	return nil
}

// headerText writes h as "Name: value" lines in name order, each ending in CRLF.
func headerText(h http.Header) []byte {
	var b strings.Builder
	h.Write(&b)
	return []byte(b.String())
}

// contentTypeOf finds the Content-Type in header lines written by http.Header.Write.
func contentTypeOf(text string) string {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.EqualFold(strings.TrimSpace(name), "Content-Type") {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

func pemCerts(certs []*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

// SafeName turns a payload's file name, as the partner or the submitter gave it, into a name
// that is safe as a file name on any system and inside a ZIP: the last path element only, no
// control characters, no characters Windows refuses, no leading dots, at most 200 bytes. A
// name with nothing left becomes "file-<n>".
func SafeName(name string, n int) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case r == utf8.RuneError, unicode.IsControl(r), strings.ContainsRune(`<>:"|?*`, r):
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	s := strings.TrimLeft(strings.TrimSpace(b.String()), ".")
	for len(s) > 200 {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	if strings.Trim(s, "_ ") == "" {
		return fmt.Sprintf("file-%d", n)
	}
	return s
}

// uniqueName keeps two payloads of the same name apart: the second becomes "name (2).ext".
func uniqueName(name string, used map[string]bool) string {
	out := name
	ext := path.Ext(name)
	for i := 2; used[strings.ToLower(out)]; i++ {
		out = fmt.Sprintf("%s (%d)%s", strings.TrimSuffix(name, ext), i, ext)
	}
	used[strings.ToLower(out)] = true
	return out
}

// readme is README.txt, written for this message: the commands name its own files.
func readme(m *store.Message, signed []signedItem, entries []Entry) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Non-repudiation archive of AS2 message %s\n", m.MessageID)
	switch m.Direction {
	case store.Outbound:
		fmt.Fprintf(&b, "Sent by station %s to partner %s.\n\n", m.Station, m.Partner)
	case store.Inbound:
		fmt.Fprintf(&b, "Received by station %s from partner %s.\n\n", m.Station, m.Partner)
	default:
		fmt.Fprintf(&b, "Between station %s and partner %s.\n\n", m.Station, m.Partner)
	}
	b.WriteString(`Every check below needs only a shell and the openssl command line (OpenSSL 1.1 or 3).
Run the commands in the folder this archive was unpacked into.

1. The files are the ones the gateway kept

manifest.json lists every other file with its size and SHA-256. Compute the digests and
compare them with the "sha256" values there:

`)
	names := []string{ReadmeName}
	for _, e := range entries {
		names = append(names, quoteArg(e.Name))
	}
	sort.Strings(names)
	fmt.Fprintf(&b, "  openssl dgst -sha256 %s\n\n", strings.Join(names, " "))
	b.WriteString("(sha256sum prints the same digests.) For reference, the digests when this archive was written\n(README.txt's own digest is in manifest.json only):\n\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "  %s  %s\n", e.SHA256, e.Name)
	}
	b.WriteString(`
wire.bin is the body of the AS2 message exactly as it crossed the network, wire-headers.txt
its HTTP headers; mdn.bin and mdn-headers.txt are the same for the MDN (the receipt), when
there is one. The files under payloads/ are the documents the message carried, decoded.
`)
	if len(signed) == 0 {
		b.WriteString(`
2. Signatures

Neither the wire message nor the MDN is a multipart/signed entity that this archive could
split (an encrypted or compressed wire message carries its signature inside that layer, and
an encrypted one opens only with the receiver's private key), so there is no signature to
check here with the archive alone.
`)
		return []byte(b.String())
	}
	b.WriteString(`
2. The signatures verify

A signed AS2 message or MDN is a multipart/signed entity (RFC 1847): its first part is what was
signed, its second a detached CMS signature. Both are included already split, the first part
byte for byte as signed and the signature decoded from base64 to DER. For each, the first
command checks that the signed part is unchanged since it was signed; the second checks, in
addition, that the signer's certificate is one of those in the PEM file named, trusted as it
stands (AS2 partners exchange their certificates directly, often self-signed, so there is no
CA chain to follow; -no_check_time accepts a certificate that expired after the signature).
`)
	for _, s := range signed {
		fmt.Fprintf(&b, "\n  # %s, signed with a certificate in %s\n", s.what, s.signer)
		fmt.Fprintf(&b, "  openssl cms -verify -binary -inform DER -in %s -content %s -certfile %s -noverify -out /dev/null\n", s.sig, s.part, s.signer)
		fmt.Fprintf(&b, "  openssl cms -verify -binary -inform DER -in %s -content %s -CAfile %s -partial_chain -purpose any -no_check_time -out /dev/null\n", s.sig, s.part, s.signer)
	}
	b.WriteString(`
Both print "Verification successful". Compare the certificates with the ones exchanged with
the partner out of band:

  openssl x509 -in partner.pem -noout -subject -fingerprint -sha256
  openssl x509 -in station.pem -noout -subject -fingerprint -sha256

To see who signed and when, print a signature:

  openssl cms -cmsout -print -inform DER -in <signature file>

The split can be redone from the raw entity: the boundary is the boundary parameter of the
Content-Type in the headers file; the signed part is everything after the CRLF that ends the
first "--boundary" line, up to (not including) the CRLF before the next "--boundary" line;
the second part's body is the base64 of the signature (openssl base64 -d decodes it).
`)
	if m.MDN != nil && m.MDN.MIC != "" && signed[0].part == WireSignedPart {
		fmt.Fprintf(&b, `
3. The MDN acknowledges this message

The MDN's Received-Content-MIC (%s) is the digest, in base64, of what the receiver
unpacked: for this signed message, the signed part, signed-part.bin, headers included
(RFC 4130 section 7.3.1). Compute it in the algorithm the MIC names; for sha-256:

  openssl dgst -sha256 -binary signed-part.bin | openssl base64
`, m.MDN.MIC)
	}
	return []byte(b.String())
}

// quoteArg quotes a file name for a POSIX shell when it needs it.
func quoteArg(s string) string {
	if strings.IndexFunc(s, func(r rune) bool {
		return !(r < utf8.RuneSelf && (r == '.' || r == '-' || r == '_' || r == '/' || unicode.IsLetter(r) || unicode.IsDigit(r)))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
