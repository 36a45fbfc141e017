package as2

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// Fuzz targets for every parser of untrusted input: MIME entities and multipart bodies, MDNs
// and dispositions, AS2 header values. Run one with
//
//	go test ./as2 -run '^$' -fuzz '^FuzzSplitMultipart$' -fuzztime 30s
//
// Inputs that once failed live under testdata/fuzz and run with every go test.

func addTestdataSeeds(f *testing.F, pattern string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseEntity(f *testing.F) {
	f.Add([]byte(signedBody))
	f.Add([]byte("Content-Type: text/plain\n\nhello\n"))
	f.Add([]byte("Content-Type: multipart/related; boundary=b\r\n\r\n--b\r\n\r\nx\n--b--\r\n"))
	f.Add([]byte("Content-Disposition: attachment; filename*=iso-8859-1''caf%e9.edi\r\n\r\n"))
	addTestdataSeeds(f, "*.txt")
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEntity(data)
		if err != nil {
			if _, cerr := Canonicalize(data); cerr == nil {
				t.Fatal("Canonicalize accepted what ParseEntity refused")
			}
			return
		}
		if !bytes.Equal(append(append([]byte(nil), e.HeaderBytes()...), e.Body()...), data) {
			t.Fatal("header and body do not make up the input")
		}
		for _, fld := range e.Header.Fields {
			if !bytes.Contains(e.HeaderBytes(), fld.Raw) || !validFieldName(fld.Name) {
				t.Fatalf("field %q: Raw %q is not in the header block", fld.Name, fld.Raw)
			}
		}
		// The streaming header reader agrees, even through the smallest buffer.
		sh, raw, err := ReadHeader(bufio.NewReaderSize(bytes.NewReader(data), 16))
		if len(e.HeaderBytes()) <= MaxHeaderBytes && (err != nil || !bytes.Equal(raw, e.HeaderBytes()) || !reflect.DeepEqual(sh, e.Header)) {
			t.Fatalf("ReadHeader = %q, %v; ParseEntity header %q", raw, err, e.HeaderBytes())
		}
		_, _, _ = e.Header.ContentType()
		_ = e.Header.Filename()
		_, _ = e.DecodedBody()
		c, err := Canonicalize(data)
		if err != nil {
			return
		}
		again, err := Canonicalize(c)
		if err != nil || !bytes.Equal(again, c) {
			t.Fatalf("Canonicalize is not idempotent: %q -> %q (%v)", c, again, err)
		}
		if h, err := CanonicalizeHeader(data); err != nil || !bytes.HasSuffix(h, e.Body()) {
			t.Fatalf("CanonicalizeHeader changed the body or failed: %v", err)
		}
	})
}

func FuzzSplitMultipart(f *testing.F) {
	f.Add([]byte(signedBody), "----=_Part_1", uint16(1))
	f.Add([]byte("--b\nA: 1\n\nx\n--b\n\ny\r\n--b--"), "b", uint16(3))
	f.Add([]byte("--b\r\n--b\r\n\r\n--b--\r\n"), "b", uint16(0))
	f.Add([]byte("--b \t\r\n\r\none\r\n--b--  \r\nepilogue"), "b", uint16(2))
	f.Add([]byte("pre\r\n--b\r\n\r\n--bb\r\n--b-\r\n--b--x\r\n--b--\r\n"), "b", uint16(5))
	f.Fuzz(func(t *testing.T, body []byte, boundary string, chunk uint16) {
		parts, err := SplitMultipart(body, boundary)
		streamed, serr := splitStreaming(body, boundary, int(chunk))
		if (err == nil) != (serr == nil) {
			t.Fatalf("SplitMultipart error %v, MultipartReader error %v", err, serr)
		}
		if err != nil {
			return
		}
		got := make([]string, len(parts))
		for i, p := range parts {
			got[i] = string(p.Raw)
		}
		if !reflect.DeepEqual(got, streamed) {
			t.Fatalf("SplitMultipart %q, MultipartReader %q", got, streamed)
		}
		checkReassembles(t, body, boundary, parts)
	})
}

func FuzzParseMDN(f *testing.F) {
	addTestdataSeeds(f, "*.txt")
	addTestdataSeeds(f, "*.golden")
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseDisposition(string(data))
		m, err := ParseMDN(data)
		if err != nil {
			return
		}
		d := m.Disposition
		if d.Positive() && (d.Type != TypeProcessed || (d.Modifier != "" && d.Modifier != ModifierWarning)) {
			t.Fatalf("disposition %q read as positive: %+v", d.Raw, d)
		}
		// What is built from a parsed MDN reads back the same where it matters.
		e, err := BuildMDN(m, "")
		if err != nil {
			return
		}
		back, err := ParseMDN(e.Raw)
		if err != nil {
			t.Fatalf("a built MDN does not parse: %v\n%q", err, e.Raw)
		}
		if back.Positive() != m.Positive() || back.Disposition.Type != d.Type ||
			back.OriginalMessageID != m.OriginalMessageID || (m.ReceivedMIC == nil) != (back.ReceivedMIC == nil) ||
			(m.ReceivedMIC != nil && !m.ReceivedMIC.Equal(*back.ReceivedMIC)) {
			t.Fatalf("round trip changed the MDN:\n%+v\n%+v", m, back)
		}
		if err := Match(back, m.OriginalMessageID, m.ReceivedMIC); (err == nil) != m.Positive() {
			t.Fatalf("Match = %v for an MDN with Positive() = %v", err, m.Positive())
		}
	})
}

func FuzzParseHeaders(f *testing.F) {
	for _, s := range []string{
		`"AS2 Test"`, "PARTNERX", `"a\"b"`, `"abc\"`,
		"signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, sha-256, sha-1",
		"signed-receipt-protocol=required,pkcs7-signature;signed-receipt-micalg=required,SHA256;",
		"sha-256;", "SHA1", "md5",
		"Hes6my+vIxIYxmvsA+MNpEOTPAc=, sha1",
		"3rBdfaWkmNRtU//B3Btama/bJxw+JfBmMg6WDADzDQQ=, sha-256",
		"<abc@host>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if id, err := UnquoteID(s); err == nil {
			if ValidateID(id) != nil {
				t.Fatalf("UnquoteID(%q) = %q, which ValidateID refuses", s, id)
			}
			if back, err := UnquoteID(QuoteID(id)); err != nil || back != id {
				t.Fatalf("QuoteID(%q) = %q does not unquote back: %q, %v", id, QuoteID(id), back, err)
			}
		}
		if o, err := ParseDispositionOptions(s); err == nil {
			again, err := ParseDispositionOptions(o.String())
			if err != nil || !reflect.DeepEqual(again, o) {
				t.Fatalf("options %q -> %q -> %+v, %v; want %+v", s, o.String(), again, err, o)
			}
		}
		if a, err := ParseMICAlg(s); err == nil {
			if b, err := ParseMICAlg(a.String()); err != nil || b != a {
				t.Fatalf("MICAlg %q -> %q does not read back", s, a)
			}
		}
		_, _ = ParseMICAlgList(s)
		if m, err := ParseMIC(s); err == nil {
			back, err := ParseMIC(m.String())
			if err != nil || !back.Equal(m) {
				t.Fatalf("MIC %q -> %q does not read back: %v", s, m.String(), err)
			}
		}
		if ValidateMessageID(s) == nil && NormalizeMessageID(s) == "" {
			t.Fatalf("ValidateMessageID accepted %q", s)
		}
		_, _, _ = ParseMediaType(s)
	})
}
