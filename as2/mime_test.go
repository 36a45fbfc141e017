package as2

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseEntity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		fields  [][2]string // name as written, unfolded value
		raws    []string    // raw bytes of each field, when checked
		body    string
		wantErr string
	}{
		{
			name:   "crlf",
			in:     "Content-Type: application/edi-x12\r\nContent-Disposition: attachment; filename=a.edi\r\n\r\nISA*00~\r\n",
			fields: [][2]string{{"Content-Type", "application/edi-x12"}, {"Content-Disposition", "attachment; filename=a.edi"}},
			raws:   []string{"Content-Type: application/edi-x12\r\n", "Content-Disposition: attachment; filename=a.edi\r\n"},
			body:   "ISA*00~\r\n",
		},
		{
			name:   "bare LF",
			in:     "content-type: text/plain\n\nhello\n",
			fields: [][2]string{{"content-type", "text/plain"}},
			body:   "hello\n",
		},
		{
			name:   "folded value",
			in:     "Content-Type: multipart/signed;\r\n\tprotocol=\"application/pkcs7-signature\";\r\n  micalg=sha-256\r\n\r\n",
			fields: [][2]string{{"Content-Type", "multipart/signed;\tprotocol=\"application/pkcs7-signature\";  micalg=sha-256"}},
			raws:   []string{"Content-Type: multipart/signed;\r\n\tprotocol=\"application/pkcs7-signature\";\r\n  micalg=sha-256\r\n"},
		},
		{
			name:   "no header",
			in:     "\r\nbody only",
			fields: nil,
			body:   "body only",
		},
		{
			name:   "header only, no blank line",
			in:     "Content-Type: text/plain\r\n",
			fields: [][2]string{{"Content-Type", "text/plain"}},
		},
		{
			name:   "last field without line end",
			in:     "A: 1\r\nB: 2",
			fields: [][2]string{{"A", "1"}, {"B", "2"}},
			raws:   []string{"A: 1\r\n", "B: 2"},
		},
		{
			name:   "space before colon",
			in:     "Content-Type : text/plain\r\n\r\nx",
			fields: [][2]string{{"Content-Type", "text/plain"}},
			body:   "x",
		},
		{
			name:   "empty value",
			in:     "X-Empty:\r\n\r\n",
			fields: [][2]string{{"X-Empty", ""}},
		},
		{name: "continuation first", in: " folded\r\n\r\n", wantErr: "continuation"},
		{name: "no colon", in: "ISA*00*          *00~\r\n", wantErr: "no ':'"},
		{name: "bad name", in: "Bad Name: x\r\n\r\n", wantErr: "invalid MIME header field name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := ParseEntity([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseEntity error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got [][2]string
			for _, f := range e.Header.Fields {
				got = append(got, [2]string{f.Name, f.Value})
			}
			if !reflect.DeepEqual(got, tc.fields) {
				t.Errorf("fields = %q, want %q", got, tc.fields)
			}
			for i, raw := range tc.raws {
				if string(e.Header.Fields[i].Raw) != raw {
					t.Errorf("field %d Raw = %q, want %q", i, e.Header.Fields[i].Raw, raw)
				}
			}
			if string(e.Body()) != tc.body {
				t.Errorf("Body = %q, want %q", e.Body(), tc.body)
			}
			if string(e.HeaderBytes())+string(e.Body()) != tc.in {
				t.Errorf("header and body do not make up the input")
			}
		})
	}
}

func TestHeaderLookup(t *testing.T) {
	t.Parallel()
	e, err := ParseEntity([]byte("AS2-From: \"AS2 Test\"\r\nas2-to: OSSL\r\nX: 1\r\nx: 2\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := e.Header
	if got := h.Get("as2-from"); got != `"AS2 Test"` {
		t.Errorf("Get(as2-from) = %q", got)
	}
	if got := h.Get(HeaderAS2To); got != "OSSL" {
		t.Errorf("Get(AS2-To) = %q", got)
	}
	if !h.Has("AS2-TO") || h.Has("Subject") {
		t.Errorf("Has is wrong")
	}
	if got := h.Values("X"); !reflect.DeepEqual(got, []string{"1", "2"}) {
		t.Errorf("Values(X) = %q", got)
	}
	if got := h.Get("missing"); got != "" {
		t.Errorf("Get(missing) = %q", got)
	}
}

func TestHeaderAdd(t *testing.T) {
	t.Parallel()
	var h Header
	if err := h.Add("Content-Type", "application/edi-x12"); err != nil {
		t.Fatal(err)
	}
	if err := h.Add("AS2-From", QuoteID("AS2 Test")); err != nil {
		t.Fatal(err)
	}
	if err := h.Add("X-Bad", "a\r\nInjected: yes"); err == nil {
		t.Fatal("Add accepted a value with a line break")
	}
	if err := h.Add("Bad Name", "x"); err == nil {
		t.Fatal("Add accepted a field name with a space")
	}
	want := "Content-Type: application/edi-x12\r\nAS2-From: \"AS2 Test\"\r\n\r\n"
	if got := string(h.Bytes()); got != want {
		t.Fatalf("Bytes() = %q, want %q", got, want)
	}
	e, err := ParseEntity(h.Bytes())
	if err != nil || !reflect.DeepEqual(e.Header, h) {
		t.Fatalf("written header does not parse back: %+v, %v", e, err)
	}
}

func TestParseMediaType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		mt       string
		params   map[string]string
	}{
		{"quoted boundary", `multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary="----=_Part_1"`,
			"multipart/signed", map[string]string{"protocol": "application/pkcs7-signature", "micalg": "sha-256", "boundary": "----=_Part_1"}},
		{"libas2 trailing semicolon", `multipart/signed; micalg=sha-256; boundary=abc;`,
			"multipart/signed", map[string]string{"micalg": "sha-256", "boundary": "abc"}},
		{"unquoted boundary with equals", `multipart/signed; boundary=----=_Part_1; micalg=sha1`,
			"multipart/signed", map[string]string{"boundary": "----=_Part_1", "micalg": "sha1"}},
		{"empty parameter", `multipart/report; report-type=disposition-notification; ; boundary=x`,
			"multipart/report", map[string]string{"report-type": "disposition-notification", "boundary": "x"}},
		{"case", `Multipart/Report; Report-Type=disposition-notification; Boundary="B"`,
			"multipart/report", map[string]string{"report-type": "disposition-notification", "boundary": "B"}},
		{"semicolon in quotes", `application/xml; name="a;b.xml"; x=1 2`,
			"application/xml", map[string]string{"name": "a;b.xml", "x": "1 2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mt, params, err := ParseMediaType(tc.in)
			if err != nil || mt != tc.mt || !reflect.DeepEqual(params, tc.params) {
				t.Fatalf("ParseMediaType(%q) = %q, %q, %v; want %q, %q", tc.in, mt, params, err, tc.mt, tc.params)
			}
		})
	}
	for _, bad := range []string{"", "; boundary=x", `"text/plain"`} {
		if mt, _, err := ParseMediaType(bad); err == nil {
			t.Errorf("ParseMediaType(%q) = %q, want error", bad, mt)
		}
	}
}

func TestHeaderBoundaryAndDefaults(t *testing.T) {
	t.Parallel()
	var h Header
	if mt, _, err := h.ContentType(); err != nil || mt != "text/plain" {
		t.Fatalf("ContentType of empty header = %q, %v; want text/plain", mt, err)
	}
	if _, err := h.Boundary(); err == nil {
		t.Fatal("Boundary of text/plain succeeded")
	}
	_ = h.Add("Content-Type", "multipart/related")
	if _, err := h.Boundary(); err == nil || !strings.Contains(err.Error(), "without a boundary") {
		t.Fatalf("Boundary without parameter: %v", err)
	}
	h = Header{}
	_ = h.Add("Content-Type", `multipart/related; boundary="b1"; type="application/edi-x12"`)
	if b, err := h.Boundary(); err != nil || b != "b1" {
		t.Fatalf("Boundary = %q, %v", b, err)
	}
}

func TestFilename(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		headers string
		want    string
	}{
		{"plain", "Content-Disposition: attachment; filename=rfc1767.dat", "rfc1767.dat"},
		{"quoted", `Content-Disposition: attachment; filename="order 42.edi"`, "order 42.edi"},
		{"quoted with escape", `Content-Disposition: attachment; filename="a\"b.edi"`, `a"b.edi`},
		{"unquoted with space", "Content-Disposition: attachment; filename=my file.edi", "my file.edi"},
		{"rfc2231 utf-8", "Content-Disposition: attachment; filename*=UTF-8''%e2%82%ac%20rates.edi", "€ rates.edi"},
		{"rfc2231 latin-1", "Content-Disposition: attachment; filename*=iso-8859-1''caf%e9.edi", "café.edi"},
		{"rfc2047 word", `Content-Disposition: attachment; filename="=?UTF-8?B?w6TDtsO8LnhtbA==?="`, "äöü.xml"},
		{"content-type name", `Content-Type: application/edi-x12; name="po.x12"`, "po.x12"},
		{"disposition wins", "Content-Type: application/xml; name=b.xml\r\nContent-Disposition: attachment; filename=a.xml", "a.xml"},
		{"none", "Content-Type: application/xml", ""},
		{"inline without name", "Content-Disposition: inline", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, err := ParseEntity([]byte(tc.headers + "\r\n\r\n"))
			if err != nil {
				t.Fatal(err)
			}
			if got := e.Header.Filename(); got != tc.want {
				t.Fatalf("Filename() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDecodeTransferEncoding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, cte, in, want, wantErr string
	}{
		{name: "none", cte: "", in: "a\r\nb", want: "a\r\nb"},
		{name: "binary", cte: "binary", in: "\x00\xff", want: "\x00\xff"},
		{name: "7bit upper case", cte: " 7BIT ", in: "x", want: "x"},
		{name: "8bit", cte: "8bit", in: "é", want: "é"},
		{name: "base64 wrapped", cte: "base64", in: "SVNB\r\nKjAw\r\nfg==\r\n", want: "ISA*00~"},
		{name: "base64 with spaces", cte: "Base64", in: " SVNB KjAw\tfg== ", want: "ISA*00~"},
		{name: "quoted-printable", cte: "quoted-printable", in: "caf=C3=A9 =\r\nsoft", want: "café soft"},
		{name: "bad base64", cte: "base64", in: "!!!!", wantErr: "illegal base64"},
		{name: "unknown", cte: "x-uuencode", in: "x", wantErr: `unsupported Content-Transfer-Encoding "x-uuencode"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := DecodeTransferEncoding(tc.cte, strings.NewReader(tc.in))
			var got []byte
			if err == nil {
				got, err = io.ReadAll(r)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("decoded %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	e, err := ParseEntity([]byte("Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := e.DecodedBody(); err != nil || string(b) != "hello" {
		t.Fatalf("DecodedBody = %q, %v", b, err)
	}
}

// A signed AS2 message body as mendelson and OpenSSL write it, CRLF throughout.
const signedBody = "This is an S/MIME signed message\r\n" +
	"\r\n" +
	"------=_Part_1\r\n" +
	"Content-Type: application/edi-x12\r\n" +
	"Content-Disposition: attachment; filename=po.x12\r\n" +
	"\r\n" +
	"ISA*00*          *00~\r\nIEA*1*000000001~\r\n" +
	"\r\n" +
	"------=_Part_1\r\n" +
	"Content-Type: application/pkcs7-signature; name=smime.p7s\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCAMIIC\r\n" +
	"\r\n" +
	"------=_Part_1--\r\n" +
	"epilogue\r\n"

func TestSplitMultipart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		body     string
		boundary string
		want     []string
		wantErr  string
	}{
		{
			name: "signed message", body: signedBody, boundary: "----=_Part_1",
			want: []string{
				"Content-Type: application/edi-x12\r\nContent-Disposition: attachment; filename=po.x12\r\n\r\nISA*00*          *00~\r\nIEA*1*000000001~\r\n",
				"Content-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCAMIIC\r\n",
			},
		},
		{
			name: "no preamble, binary content without final line end", boundary: "b",
			body: "--b\r\n\r\n\x00\x01\r\x02\n--bx\r\n--b--",
			want: []string{"\r\n\x00\x01\r\x02\n--bx"},
		},
		{
			name: "bare LF capture", boundary: "b",
			body: "--b\nContent-Type: text/plain\n\nhello\n--b\n\nworld\n--b--\n",
			want: []string{"Content-Type: text/plain\n\nhello", "\nworld"},
		},
		{
			name: "mixed line ends", boundary: "b",
			body: "--b\r\nA: 1\n\r\nx\n--b\n\ny\r\n--b--",
			want: []string{"A: 1\n\r\nx", "\ny"},
		},
		{
			name: "transport padding", boundary: "b",
			body: "--b \t\r\n\r\none\r\n--b  \r\n\r\ntwo\r\n--b--  \r\n",
			want: []string{"\r\none", "\r\ntwo"},
		},
		{
			name: "empty part and part without line end before delimiter", boundary: "b",
			body: "--b\r\n--b\r\n\r\n--b--\r\n",
			want: []string{"", ""},
		},
		{
			name: "content line that only starts like the boundary", boundary: "b",
			body: "--b\r\n\r\n--bb\r\n--b-\r\n --b\r\n--b--x\r\n--b--\r\n",
			want: []string{"\r\n--bb\r\n--b-\r\n --b\r\n--b--x"},
		},
		{
			name: "nested boundary that extends the outer one", boundary: "outer",
			body: "--outer\r\nContent-Type: multipart/mixed; boundary=outer-inner\r\n\r\n--outer-inner\r\n\r\nx\r\n--outer-inner--\r\n--outer--\r\n",
			want: []string{"Content-Type: multipart/mixed; boundary=outer-inner\r\n\r\n--outer-inner\r\n\r\nx\r\n--outer-inner--"},
		},
		{
			name: "delimiter inside a long line is content", boundary: "b",
			body: "--b\r\n\r\nabc --b\r\n--b--\r\n",
			want: []string{"\r\nabc --b"},
		},
		{name: "missing close", boundary: "b", body: "--b\r\n\r\nx\r\n", wantErr: "without its close delimiter"},
		{name: "missing close after delimiter", boundary: "b", body: "--b\r\n\r\nx\r\n--b", wantErr: "without its close delimiter"},
		{name: "no delimiter at all", boundary: "b", body: "just text", wantErr: "without its close delimiter"},
		{name: "close only", boundary: "b", body: "--b--\r\n", wantErr: "no body part"},
		{name: "empty boundary", boundary: "", body: "--\r\n", wantErr: "without a boundary"},
		{name: "RFC 4130 example typo: single dash close", boundary: "b", body: "--b\r\n\r\nx\r\n--b-\r\n", wantErr: "without its close delimiter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			parts, err := SplitMultipart([]byte(tc.body), tc.boundary)
			streamed, serr := splitStreaming([]byte(tc.body), tc.boundary, 1)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("SplitMultipart error = %v, want %q", err, tc.wantErr)
				}
				if serr == nil || !strings.Contains(serr.Error(), tc.wantErr) {
					t.Fatalf("MultipartReader error = %v, want %q", serr, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range parts {
				got = append(got, string(p.Raw))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parts = %q, want %q", got, tc.want)
			}
			if serr != nil || !reflect.DeepEqual(streamed, tc.want) {
				t.Fatalf("MultipartReader parts = %q, %v; want %q", streamed, serr, tc.want)
			}
			checkReassembles(t, []byte(tc.body), tc.boundary, parts)
		})
	}
}

// delimiterGap matches what lies between two parts: the line end that belongs to the
// delimiter (absent after an empty part that has none), the boundary line and its line end.
func delimiterGap(boundary string, close bool) *regexp.Regexp {
	q := regexp.QuoteMeta("--" + boundary)
	if close {
		return regexp.MustCompile(`^(\r?\n)?` + q + `--[ \t]*\r?(\n[\s\S]*)?$`)
	}
	return regexp.MustCompile(`^(\r?\n)?` + q + `[ \t]*\r?\n$`)
}

// checkReassembles checks the exact-bytes property: the parts, with the delimiter bytes
// between them, make up the input byte for byte, and every gap is a delimiter.
func checkReassembles(t testing.TB, body []byte, boundary string, parts []Part) {
	t.Helper()
	var rebuilt []byte
	prev := 0
	for i, p := range parts {
		if !bytes.Equal(body[p.Offset:p.Offset+len(p.Raw)], p.Raw) {
			t.Fatalf("part %d: Raw is not the input at its Offset", i)
		}
		gap := body[prev:p.Offset]
		if i > 0 && !delimiterGap(boundary, false).Match(gap) {
			t.Fatalf("between parts %d and %d: %q is not a delimiter", i-1, i, gap)
		}
		rebuilt = append(append(rebuilt, gap...), p.Raw...)
		prev = p.Offset + len(p.Raw)
	}
	if !delimiterGap(boundary, true).Match(body[prev:]) {
		t.Fatalf("after the last part: %q does not start with the close delimiter", body[prev:])
	}
	rebuilt = append(rebuilt, body[prev:]...)
	if !bytes.Equal(rebuilt, body) {
		t.Fatal("parts and delimiters do not reassemble into the input")
	}
}

// splitStreaming splits body with a MultipartReader that reads it chunk bytes at a time.
func splitStreaming(body []byte, boundary string, chunk int) ([]string, error) {
	var r io.Reader = bytes.NewReader(body)
	if chunk > 0 {
		r = &chunkReader{r: r, n: chunk}
	}
	mr := NewMultipartReader(r, boundary)
	var parts []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return parts, nil
		}
		if err != nil {
			return parts, err
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return parts, err
		}
		parts = append(parts, string(b))
	}
}

type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(p) > c.n {
		p = p[:c.n]
	}
	return c.r.Read(p)
}

func TestMultipartReaderLongLines(t *testing.T) {
	t.Parallel()
	// Lines longer than the read buffer, with a CR at every buffer edge, and a line that looks
	// like a delimiter followed by more than a delimiter line may hold.
	long := bytes.Repeat([]byte("x"), multipartBufferSize-1)
	var content []byte
	for i := 0; i < 3; i++ {
		content = append(content, long...)
		content = append(content, '\r', '\r', '\n')
	}
	content = append(content, "--b"+strings.Repeat(" ", maxDelimiterLine)+"\r\n"...)
	content = append(content, bytes.Repeat([]byte("\r"), multipartBufferSize+3)...)
	body := append(append([]byte("--b\r\n"), content...), "\r\n--b--\r\n"...)
	parts, err := SplitMultipart(body, "b")
	if err != nil || len(parts) != 1 || !bytes.Equal(parts[0].Raw, content) {
		t.Fatalf("SplitMultipart: %d parts, %v", len(parts), err)
	}
	for _, chunk := range []int{0, 7, 4096} {
		got, err := splitStreaming(body, "b", chunk)
		if err != nil || len(got) != 1 || got[0] != string(content) {
			t.Fatalf("chunk %d: %d parts, %v", chunk, len(got), err)
		}
	}
}

func TestMultipartReaderErrors(t *testing.T) {
	t.Parallel()
	// A reading error in the middle of a part is reported, not taken for the end.
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("--b\r\n\r\nsome content"), iotest.ErrReader(boom))
	mr := NewMultipartReader(r, "b")
	p, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(p); !errors.Is(err, boom) {
		t.Fatalf("ReadAll error = %v, want %v", err, boom)
	}
	if _, err := mr.NextPart(); !errors.Is(err, boom) {
		t.Fatalf("NextPart after a broken part = %v, want %v", err, boom)
	}

	// Parts read partly or not at all are skipped by NextPart.
	mr = NewMultipartReader(strings.NewReader(signedBody), "----=_Part_1")
	if _, err := mr.NextPart(); err != nil {
		t.Fatal(err)
	}
	p, err = mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(io.LimitReader(p, 12)); string(b) != "Content-Type" {
		t.Fatalf("second part starts with %q", b)
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Fatalf("NextPart after the last part = %v, want io.EOF", err)
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Fatalf("NextPart again = %v, want io.EOF", err)
	}

	mr = NewMultipartReader(strings.NewReader("--\r\n"), "")
	if _, err := mr.NextPart(); err == nil {
		t.Fatal("empty boundary accepted")
	}
}

// A part read through ReadEntity gives the header and a body reader, as pack and unpack use it.
func TestReadEntityFromPart(t *testing.T) {
	t.Parallel()
	mr := NewMultipartReader(strings.NewReader(signedBody), "----=_Part_1")
	p, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	er, err := ReadEntity(io.TeeReader(p, h))
	if err != nil {
		t.Fatal(err)
	}
	if er.Header.Filename() != "po.x12" || er.Header.MediaType() != "application/edi-x12" {
		t.Fatalf("header = %+v", er.Header)
	}
	body, err := io.ReadAll(er.Body)
	if err != nil || string(body) != "ISA*00*          *00~\r\nIEA*1*000000001~\r\n" {
		t.Fatalf("body = %q, %v", body, err)
	}
	parts, _ := SplitMultipart([]byte(signedBody), "----=_Part_1")
	if want := sha256.Sum256(parts[0].Raw); !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("the streamed part's bytes differ from Part.Raw")
	}
	if string(er.RawHeader) != "Content-Type: application/edi-x12\r\nContent-Disposition: attachment; filename=po.x12\r\n\r\n" {
		t.Fatalf("RawHeader = %q", er.RawHeader)
	}
}

func TestReadHeaderLimit(t *testing.T) {
	t.Parallel()
	huge := "X-Big: " + strings.Repeat("a", MaxHeaderBytes) + "\r\n\r\n"
	if _, _, err := ReadHeader(bufio.NewReader(strings.NewReader(huge))); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("ReadHeader of an oversized header: %v", err)
	}
	// A header that ends at EOF without a blank line is complete.
	h, raw, err := ReadHeader(bufio.NewReader(strings.NewReader("A: 1\r\nB: 2")))
	if err != nil || h.Get("B") != "2" || string(raw) != "A: 1\r\nB: 2" {
		t.Fatalf("ReadHeader at EOF = %+v, %q, %v", h, raw, err)
	}
}

// The streaming splitter passes a 100 MB part through a fixed buffer.
func TestMultipartReaderLargeBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MB stream")
	}
	const size = 100 << 20
	payload := &patternReader{left: size}
	head := "--B\r\nContent-Type: application/octet-stream\r\n\r\n"
	tail := "\r\n--B\r\nContent-Type: application/pkcs7-signature\r\n\r\nsig\r\n--B--\r\n"
	r := io.MultiReader(strings.NewReader(head), payload, strings.NewReader(tail))

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	mr := NewMultipartReader(r, "B")
	p, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, p)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(head) - len("--B\r\n") + size); n != want {
		t.Fatalf("first part is %d bytes, want %d", n, want)
	}
	sig, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(sig); string(b) != "Content-Type: application/pkcs7-signature\r\n\r\nsig" {
		t.Fatalf("signature part = %q", b)
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Fatalf("NextPart at the end = %v", err)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// Allocations in total, not the heap at one instant: a copy of the payload anywhere would
	// show here.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Fatalf("splitting a %d MB part allocated %d MB", size>>20, alloc>>20)
	}
}

// patternReader yields left bytes of binary content with CR, LF and dashes, never a
// delimiter line.
type patternReader struct{ left int }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	b = b[:min(len(b), p.left)]
	for i := range b {
		switch i % 97 {
		case 40:
			b[i] = '\r'
		case 41:
			b[i] = '\n'
		case 42, 43:
			b[i] = '-'
		default:
			b[i] = byte(i*7 + 3)
		}
	}
	p.left -= len(b)
	return len(b), nil
}

func TestCanonicalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"already canonical", "Content-Type: text/plain\r\n\r\na\r\nb", "Content-Type: text/plain\r\n\r\na\r\nb"},
		{"text body", "Content-Type: text/plain\n\na\nb\n", "Content-Type: text/plain\r\n\r\na\r\nb\r\n"},
		{"binary body untouched", "Content-Type: application/edi-x12\n\nISA~\nIEA~\n", "Content-Type: application/edi-x12\r\n\r\nISA~\nIEA~\n"},
		{"octet-stream untouched", "Content-Type: application/octet-stream\n\n\x00\n\r\n", "Content-Type: application/octet-stream\r\n\r\n\x00\n\r\n"},
		{"base64 body", "Content-Type: application/pkcs7-signature\nContent-Transfer-Encoding: base64\n\nAAAA\nBBBB\n", "Content-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\nBBBB\r\n"},
		{"default type is text", "\nhello\n", "\r\nhello\r\n"},
		{"folded header", "Content-Type: application/xml;\n\tname=a.xml\n\n<a/>\n", "Content-Type: application/xml;\r\n\tname=a.xml\r\n\r\n<a/>\n"},
		{
			"multipart with a binary and a text part",
			"Content-Type: multipart/related; boundary=b\n\npre\n--b\nContent-Type: application/edi-x12\n\nISA~\n\n--b\nContent-Type: text/plain\n\nnote\n--b--\nepi\n",
			"Content-Type: multipart/related; boundary=b\r\n\r\npre\r\n--b\r\nContent-Type: application/edi-x12\r\n\r\nISA~\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nnote\r\n--b--\r\nepi\r\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Canonicalize([]byte(tc.in))
			if err != nil || string(got) != tc.want {
				t.Fatalf("Canonicalize = %q, %v; want %q", got, err, tc.want)
			}
			again, err := Canonicalize(got)
			if err != nil || !bytes.Equal(again, got) {
				t.Fatalf("Canonicalize is not idempotent: %q", again)
			}
		})
	}
	if _, err := Canonicalize([]byte("no header line\n\n")); err == nil {
		t.Fatal("Canonicalize accepted a broken header")
	}
}

func TestCanonicalizeHeader(t *testing.T) {
	t.Parallel()
	// The capture's first part: LF in the headers, binary body with LFs that must stay.
	in := []byte("Content-Type: application/edi-x12\nContent-Disposition: attachment; filename=a.edi\n\nISA~\nIEA~\n")
	want := "Content-Type: application/edi-x12\r\nContent-Disposition: attachment; filename=a.edi\r\n\r\nISA~\nIEA~\n"
	got, err := CanonicalizeHeader(in)
	if err != nil || string(got) != want {
		t.Fatalf("CanonicalizeHeader = %q, %v", got, err)
	}
	same := []byte(want)
	if got, _ := CanonicalizeHeader(same); &got[0] != &same[0] {
		t.Fatal("CanonicalizeHeader copied an entity that needed no change")
	}
}

func TestToCRLFAndWriter(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"\n", "\r\n"},
		{"a\nb\r\nc\n", "a\r\nb\r\nc\r\n"},
		{"\r\r\n\n", "\r\r\n\r\n"},
		{"no line end", "no line end"},
	}
	for _, tc := range tests {
		if got := string(ToCRLF([]byte(tc.in))); got != tc.want {
			t.Errorf("ToCRLF(%q) = %q, want %q", tc.in, got, tc.want)
		}
		// The writer must give the same result however the input is cut.
		for cut := 0; cut <= len(tc.in); cut++ {
			var b bytes.Buffer
			w := &CRLFWriter{W: &b}
			n1, _ := w.Write([]byte(tc.in[:cut]))
			n2, _ := w.Write([]byte(tc.in[cut:]))
			if b.String() != tc.want || n1+n2 != len(tc.in) {
				t.Errorf("CRLFWriter(%q cut at %d) = %q (n=%d), want %q", tc.in, cut, b.String(), n1+n2, tc.want)
			}
		}
	}
}

func TestNewBoundary(t *testing.T) {
	t.Parallel()
	a, b := NewBoundary(), NewBoundary()
	if a == b || validateBoundary(a) != nil || len(a) > 70 {
		t.Fatalf("NewBoundary = %q, %q", a, b)
	}
	if !strings.Contains(a, "=_") {
		t.Fatalf("boundary %q could occur in base64 text", a)
	}
}

func BenchmarkSplitMultipart(b *testing.B) {
	for _, size := range []int{1 << 10, 1 << 20} {
		body := benchMultipart(size)
		b.Run(fmt.Sprintf("bytes/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := SplitMultipart(body, "----=_Part_1"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("stream/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				mr := NewMultipartReader(bytes.NewReader(body), "----=_Part_1")
				for {
					p, err := mr.NextPart()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.Copy(io.Discard, p); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// benchMultipart returns a multipart/signed body whose first part holds size bytes of EDI
// text with CRLF segment ends.
func benchMultipart(size int) []byte {
	var b bytes.Buffer
	b.WriteString("------=_Part_1\r\nContent-Type: application/edi-x12\r\n\r\n")
	seg := "ST*850*0001~BEG*00*SA*PO-4711**20240101~N1*ST*ACME CORP~\r\n"
	for b.Len() < size {
		b.WriteString(seg)
	}
	b.WriteString("\r\n------=_Part_1\r\nContent-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	b.WriteString(strings.Repeat("MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAKCAMIIC\r\n", 20))
	b.WriteString("\r\n------=_Part_1--\r\n")
	return b.Bytes()
}

// A header line longer than the reader's buffer must not end the header block early.
func TestReadHeaderLongLine(t *testing.T) {
	t.Parallel()
	long := "X-Long: " + strings.Repeat("v", 40) + "\r\n"
	in := long + "Content-Type: text/plain\r\n\r\nbody"
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	h, raw, err := ReadHeader(br)
	if err != nil || h.Get("Content-Type") != "text/plain" || string(raw) != long+"Content-Type: text/plain\r\n\r\n" {
		t.Fatalf("ReadHeader = %+v, %q, %v", h, raw, err)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "body" {
		t.Fatalf("body = %q", rest)
	}
}
