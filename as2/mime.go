package as2

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/url"
	"strings"
	"unicode/utf8"
)

// MIME entities with their exact bytes (RFC 2045, RFC 2046).
//
// A signature is checked over the first part of a multipart/signed exactly as it was
// received (RFC 1847 §2.1): header fields in their order and case, folding, line ends. So
// nothing here rebuilds an entity from parsed values: Field, Entity and Part keep the raw bytes
// beside the parsed view. The standard library's mime/multipart is not used on received
// data because it decodes quoted-printable behind the caller's back and drops the header.

// MaxHeaderBytes bounds the header block of one entity read from a stream.
const MaxHeaderBytes = 256 << 10

// Field is one header field.
type Field struct {
	Name  string // as written, e.g. "content-type"; compare with strings.EqualFold
	Value string // unfolded (continuation line breaks removed) and trimmed
	Raw   []byte // the exact bytes of the field: continuation lines and line end included
}

// Header is the header block of a MIME entity: its fields in the order received.
type Header struct {
	Fields []Field
}

// Get returns the value of the first field called name (case-insensitively), or "".
func (h Header) Get(name string) string {
	for _, f := range h.Fields {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// Has reports whether a field called name is present.
func (h Header) Has(name string) bool {
	for _, f := range h.Fields {
		if strings.EqualFold(f.Name, name) {
			return true
		}
	}
	return false
}

// Values returns the values of every field called name, in order.
func (h Header) Values(name string) []string {
	var vs []string
	for _, f := range h.Fields {
		if strings.EqualFold(f.Name, name) {
			vs = append(vs, f.Value)
		}
	}
	return vs
}

// Add appends a field written as "Name: value" CRLF. It refuses a name that is not a field
// name and a value holding a line break, which would inject header fields.
func (h *Header) Add(name, value string) error {
	if !validFieldName(name) {
		return fmt.Errorf("as2: invalid header field name %q", name)
	}
	if strings.ContainsAny(value, "\r\n") {
		return fmt.Errorf("as2: header field %s: value holds a line break", name)
	}
	raw := make([]byte, 0, len(name)+len(value)+4)
	raw = append(raw, name...)
	raw = append(raw, ": "...)
	raw = append(raw, value...)
	raw = append(raw, "\r\n"...)
	h.Fields = append(h.Fields, Field{Name: name, Value: strings.TrimSpace(value), Raw: raw})
	return nil
}

// Bytes returns the header block as it is written: every field's raw bytes, then the CRLF
// that ends the block.
func (h Header) Bytes() []byte {
	n := 2
	for _, f := range h.Fields {
		n += len(f.Raw)
	}
	b := make([]byte, 0, n)
	for _, f := range h.Fields {
		b = append(b, f.Raw...)
	}
	return append(b, "\r\n"...)
}

// ContentType returns the lower-cased media type of the Content-Type field and its
// parameters (names lower-cased). A missing field gives "text/plain", the RFC 2045 §5.2
// default, with no parameters.
func (h Header) ContentType() (string, map[string]string, error) {
	v := h.Get(HeaderContentType)
	if v == "" {
		return "text/plain", map[string]string{}, nil
	}
	return ParseMediaType(v)
}

// MediaType returns the lower-cased media type of the Content-Type field alone, or "" when
// it cannot be read.
func (h Header) MediaType() string {
	mt, _, err := h.ContentType()
	if err != nil {
		return ""
	}
	return mt
}

// TransferEncoding returns the Content-Transfer-Encoding, lower-cased, or "" when absent.
func (h Header) TransferEncoding() string {
	return strings.ToLower(strings.TrimSpace(h.Get(HeaderContentTransferEncoding)))
}

// ParseMediaType reads a Content-Type or Content-Disposition value. It returns the media type
// (or disposition type) lower-cased and the parameters with lower-cased names.
//
// mime.ParseMediaType is used first (it decodes RFC 2231 parameters). QUIRK: products write
// parameters it refuses, such as an unquoted boundary holding '=' (boundary=----=_Part_1),
// an unquoted file name with spaces, or an empty parameter ("; ;"); then a lenient reader
// takes each parameter as name=value up to the next ';' outside quotes.
func ParseMediaType(v string) (string, map[string]string, error) {
	mt, params, err := mime.ParseMediaType(v)
	if err == nil {
		return mt, params, nil
	}
	return parseMediaTypeLenient(v)
}

func parseMediaTypeLenient(v string) (string, map[string]string, error) {
	segs := splitOutsideQuotes(v, ';')
	mt := strings.ToLower(strings.TrimSpace(segs[0]))
	if mt == "" || strings.ContainsAny(mt, " \t\"") {
		return "", nil, fmt.Errorf("as2: unreadable media type %q", v)
	}
	params := map[string]string{}
	for _, seg := range segs[1:] {
		seg = strings.TrimSpace(seg)
		if seg == "" {
			continue
		}
		name, val, ok := strings.Cut(seg, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		if !ok || name == "" {
			continue
		}
		val = strings.TrimSpace(val)
		if strings.HasPrefix(val, `"`) {
			val = unquoteString(val)
		}
		if _, dup := params[name]; !dup {
			params[name] = val
		}
	}
	return mt, params, nil
}

// splitOutsideQuotes splits s at each sep that is not inside a quoted string.
func splitOutsideQuotes(s string, sep byte) []string {
	var out []string
	inQuote, start := false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case c == sep && !inQuote:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// unquoteString reads a quoted-string that starts s, resolving backslash escapes. A missing
// closing quote takes the rest of s.
func unquoteString(s string) string {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			i++
			c = s[i]
		} else if c == '"' {
			break
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Boundary returns the boundary parameter of a multipart Content-Type, or an error that says
// why there is none.
func (h Header) Boundary() (string, error) {
	mt, params, err := h.ContentType()
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(mt, "multipart/") {
		return "", fmt.Errorf("as2: content type %s is not multipart", mt)
	}
	b := params["boundary"]
	if err := validateBoundary(b); err != nil {
		return "", err
	}
	return b, nil
}

// Filename returns the file name an entity carries: the Content-Disposition filename
// parameter (RFC 2183), in its RFC 2231 form (filename*=utf-8'lang'%xx) when present, else
// the Content-Type name parameter; RFC 2047 encoded words are decoded. It returns "" when
// there is none. The name is returned as sent: making it safe for a file system is the
// caller's job.
//
// QUIRK: Java mail based products encode non-ASCII names as RFC 2047 words
// (=?UTF-8?B?...?=) inside the quoted parameter, and some send ISO-8859-1 RFC 2231 values,
// which mime.ParseMediaType drops; both are decoded here.
func (h Header) Filename() string {
	if v := h.Get(HeaderContentDisposition); v != "" {
		if name := filenameParam(v, "filename"); name != "" {
			return name
		}
	}
	if v := h.Get(HeaderContentType); v != "" {
		return filenameParam(v, "name")
	}
	return ""
}

func filenameParam(v, param string) string {
	_, params, err := ParseMediaType(v)
	if err == nil && params[param] != "" {
		return decodeWords(params[param])
	}
	// Look for an RFC 2231 value that mime.ParseMediaType could not decode.
	for _, seg := range splitOutsideQuotes(v, ';')[1:] {
		name, val, ok := strings.Cut(strings.TrimSpace(seg), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), param+"*") {
			continue
		}
		if s, ok := decodeRFC2231(strings.Trim(strings.TrimSpace(val), `"`)); ok {
			return s
		}
	}
	return ""
}

// decodeRFC2231 decodes charset'language'percent-encoded for UTF-8, US-ASCII and ISO-8859-1.
func decodeRFC2231(v string) (string, bool) {
	parts := strings.SplitN(v, "'", 3)
	if len(parts) != 3 {
		return "", false
	}
	raw, err := url.PathUnescape(parts[2])
	if err != nil {
		return "", false
	}
	switch strings.ToLower(parts[0]) {
	case "utf-8", "us-ascii", "":
		if !utf8.ValidString(raw) {
			return "", false
		}
		return raw, true
	case "iso-8859-1", "latin1", "windows-1252":
		r := make([]rune, len(raw))
		for i := 0; i < len(raw); i++ {
			r[i] = rune(raw[i])
		}
		return string(r), true
	}
	return "", false
}

// decodeWords decodes RFC 2047 encoded words; text that is not one is returned unchanged.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	d, err := new(mime.WordDecoder).DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}

func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= 0x20 || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// Entity is a MIME entity held in memory: the header block parsed, and the exact bytes.
type Entity struct {
	Header     Header
	Raw        []byte // the entity exactly as given: header fields, blank line, body
	BodyOffset int    // where the body starts in Raw
}

// Body returns the body of the entity exactly as received, still transfer-encoded.
func (e *Entity) Body() []byte { return e.Raw[e.BodyOffset:] }

// HeaderBytes returns the header block exactly as received, with the blank line that ends it.
func (e *Entity) HeaderBytes() []byte { return e.Raw[:e.BodyOffset] }

// DecodedBody returns the body with its Content-Transfer-Encoding removed.
func (e *Entity) DecodedBody() ([]byte, error) {
	r, err := DecodeTransferEncoding(e.Header.TransferEncoding(), bytes.NewReader(e.Body()))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

// ParseEntity parses the header block of the MIME entity b. It accepts CRLF and bare LF line
// ends (QUIRK: stored captures and some products use LF). An entity that ends inside its
// header block has an empty body. The Fields' Raw slices point into b.
func ParseEntity(b []byte) (*Entity, error) {
	h, n, err := parseHeader(b)
	if err != nil {
		return nil, err
	}
	return &Entity{Header: h, Raw: b, BodyOffset: n}, nil
}

// parseHeader parses the header block at the start of b and returns it with the number of
// bytes it takes, the blank line included.
func parseHeader(b []byte) (Header, int, error) {
	var h Header
	var value []byte // the unfolded value of the field being read
	fieldStart := -1
	flush := func(end int) {
		if fieldStart < 0 {
			return
		}
		f := &h.Fields[len(h.Fields)-1]
		f.Value = string(bytes.TrimSpace(value))
		f.Raw = b[fieldStart:end:end]
		fieldStart = -1
	}
	pos := 0
	for pos < len(b) {
		end := len(b)
		if i := bytes.IndexByte(b[pos:], '\n'); i >= 0 {
			end = pos + i + 1
		}
		line := b[pos:end]
		content := bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		switch {
		case len(content) == 0 && end > pos && line[len(line)-1] == '\n':
			flush(pos)
			return h, end, nil
		case len(content) == 0:
			// A lone CR at the very end of the input.
			flush(pos)
			return h, end, nil
		case content[0] == ' ' || content[0] == '\t':
			if fieldStart < 0 {
				return Header{}, 0, fmt.Errorf("as2: MIME header starts with a continuation line %q", truncate(content, 40))
			}
			value = append(value, content...)
		default:
			flush(pos)
			colon := bytes.IndexByte(content, ':')
			if colon < 0 {
				return Header{}, 0, fmt.Errorf("as2: MIME header line %q has no ':'", truncate(content, 40))
			}
			// QUIRK: white space before the colon ("Content-Type : ...") is obsolete
			// syntax (RFC 5322 §4.5) that some products still write.
			name := string(bytes.TrimRight(content[:colon], " \t"))
			if !validFieldName(name) {
				return Header{}, 0, fmt.Errorf("as2: invalid MIME header field name %q", truncate(content[:colon], 40))
			}
			h.Fields = append(h.Fields, Field{Name: name})
			fieldStart = pos
			value = append(value[:0], content[colon+1:]...)
		}
		pos = end
	}
	flush(len(b))
	return h, len(b), nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// ReadHeader reads a header block from r, up to and including the blank line that ends it,
// and leaves r at the first byte of the body. It returns the header and its exact bytes.
// At most MaxHeaderBytes are read.
func ReadHeader(r *bufio.Reader) (Header, []byte, error) {
	var raw []byte
	lineStart := 0 // where the current line starts in raw
	for {
		line, err := r.ReadSlice('\n')
		if len(raw)+len(line) > MaxHeaderBytes {
			return Header{}, nil, fmt.Errorf("as2: MIME header block larger than %d bytes", MaxHeaderBytes)
		}
		raw = append(raw, line...)
		if err == nil {
			if l := raw[lineStart:]; len(l) == 1 || (len(l) == 2 && l[0] == '\r') {
				break
			}
			lineStart = len(raw)
			continue
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err == io.EOF {
			break
		}
		return Header{}, nil, fmt.Errorf("as2: reading MIME header: %w", err)
	}
	h, _, err := parseHeader(raw)
	if err != nil {
		return Header{}, nil, err
	}
	return h, raw, nil
}

// EntityReader is a MIME entity read from a stream: the header parsed, and the body still to
// be read.
type EntityReader struct {
	Header    Header
	RawHeader []byte    // the header block exactly as read, blank line included
	Body      io.Reader // the body, still transfer-encoded
}

// ReadEntity reads the header block of the entity in r and returns it with a reader of the
// body, so that a large body is never held in memory.
func ReadEntity(r io.Reader) (*EntityReader, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReader(r)
	}
	h, raw, err := ReadHeader(br)
	if err != nil {
		return nil, err
	}
	return &EntityReader{Header: h, RawHeader: raw, Body: br}, nil
}

// DecodeTransferEncoding returns a reader of r with the Content-Transfer-Encoding cte
// removed: base64 (white space and line breaks ignored), quoted-printable, or nothing for
// 7bit, 8bit, binary and an absent header. Other encodings are an error: content is never
// passed on still encoded without the caller knowing.
func DecodeTransferEncoding(cte string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "", "7bit", "8bit", "binary":
		return r, nil
	case "base64":
		return base64.NewDecoder(base64.StdEncoding, &spaceStripper{r: r}), nil
	case "quoted-printable":
		return quotedprintable.NewReader(r), nil
	}
	return nil, fmt.Errorf("as2: unsupported Content-Transfer-Encoding %q", cte)
}

// spaceStripper drops the white space that line-wrapped base64 carries; base64.NewDecoder
// skips CR and LF but not spaces or tabs.
type spaceStripper struct{ r io.Reader }

func (s *spaceStripper) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		j := 0
		for _, c := range p[:n] {
			if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// NewBoundary returns a random multipart boundary that cannot occur in base64 text (it
// holds '=' followed by '_', RFC 2045 §6.8) and is 40 characters long.
func NewBoundary() string {
	return "----=_Part_" + rand.Text() + "_AS2"
}

func validateBoundary(b string) error {
	if b == "" {
		return errors.New("as2: multipart content type without a boundary")
	}
	// RFC 2046 §5.1.1 allows 70 characters; longer ones occur and do no harm.
	if len(b) > 200 {
		return fmt.Errorf("as2: multipart boundary of %d characters (at most 200 accepted)", len(b))
	}
	if strings.ContainsAny(b, "\r\n") {
		return errors.New("as2: multipart boundary holds a line break")
	}
	return nil
}

// maxDelimiterLine is the longest line that can be a delimiter line: "--", the boundary and
// transport padding. RFC 5322 bounds lines at 998 characters.
const maxDelimiterLine = 1024

type delimiterKind int

const (
	notDelimiter delimiterKind = iota
	partDelimiter
	closeDelimiter
)

// classifyDelimiter tells whether line (without its LF) is a delimiter line for dash
// ("--" + boundary): the boundary, then "--" for the close delimiter, then only transport
// padding (spaces and tabs, RFC 2046 §5.1.1) and an optional CR.
func classifyDelimiter(line, dash []byte) delimiterKind {
	if len(line) > maxDelimiterLine || !bytes.HasPrefix(line, dash) {
		return notDelimiter
	}
	rest := bytes.TrimSuffix(line[len(dash):], []byte("\r"))
	kind := partDelimiter
	if bytes.HasPrefix(rest, []byte("--")) {
		kind, rest = closeDelimiter, rest[2:]
	}
	for _, c := range rest {
		if c != ' ' && c != '\t' {
			return notDelimiter
		}
	}
	return kind
}

var (
	errNoParts      = errors.New("as2: multipart body has no body part")
	errMissingClose = fmt.Errorf("as2: multipart body ends without its close delimiter: %w", io.ErrUnexpectedEOF)
)

// Part is one body part of a multipart entity held in memory.
type Part struct {
	// Raw is the part exactly as received: from after the line end of the delimiter line
	// that opens it to before the line end that precedes the next delimiter (that line end
	// belongs to the delimiter, RFC 2046 §5.1.1). For the first part of a multipart/signed
	// these are the bytes the signature covers.
	Raw []byte
	// Offset is where Raw starts in the multipart body.
	Offset int
}

// Entity parses the part's header block.
func (p Part) Entity() (*Entity, error) { return ParseEntity(p.Raw) }

// SplitMultipart splits the body of a multipart entity into its parts, keeping their exact
// bytes (Raw slices body). The preamble and the epilogue are ignored. Delimiter lines may end
// in CRLF or, QUIRK, a bare LF (stored captures); transport padding after the boundary is
// allowed. A body without a close delimiter or without any part is an error.
func SplitMultipart(body []byte, boundary string) ([]Part, error) {
	if err := validateBoundary(boundary); err != nil {
		return nil, err
	}
	dash := []byte("--" + boundary)
	var parts []Part
	start := -1 // start of the current part; -1 in the preamble
	for pos := 0; pos < len(body); {
		next := len(body)
		line := body[pos:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line, next = line[:i], pos+i+1
		}
		if kind := classifyDelimiter(line, dash); kind != notDelimiter {
			if start >= 0 {
				end := pos
				if end > start && body[end-1] == '\n' {
					end--
					if end > start && body[end-1] == '\r' {
						end--
					}
				}
				parts = append(parts, Part{Raw: body[start:end:end], Offset: start})
			}
			if kind == closeDelimiter {
				if len(parts) == 0 {
					return nil, errNoParts
				}
				return parts, nil
			}
			start = next
		}
		pos = next
	}
	return nil, errMissingClose
}

// MultipartReader splits a multipart body read from a stream, handing out each part as a
// reader of its exact bytes, so that a part of any size passes through a fixed buffer. It
// finds the same parts as SplitMultipart.
type MultipartReader struct {
	br     *bufio.Reader
	dash   []byte
	err    error       // sticky: set once the body is done or broken
	cur    *partReader // the part (or preamble) being read
	parts  int
	closed bool // the last delimiter read was the close delimiter
}

// multipartBufferSize is the read buffer of a MultipartReader: the memory a part of any size
// passes through.
const multipartBufferSize = 64 << 10

// NewMultipartReader returns a reader of the multipart body r with the given boundary.
func NewMultipartReader(r io.Reader, boundary string) *MultipartReader {
	mr := &MultipartReader{
		br:   bufio.NewReaderSize(r, multipartBufferSize),
		dash: []byte("--" + boundary),
	}
	if err := validateBoundary(boundary); err != nil {
		mr.err = err
	}
	return mr
}

// NextPart returns a reader of the next part's exact bytes (the same bytes as Part.Raw). The
// previous part is read to its end first. It returns io.EOF after the last part, and an
// error wrapping io.ErrUnexpectedEOF when the body ends without its close delimiter.
func (mr *MultipartReader) NextPart() (io.Reader, error) {
	if mr.err != nil {
		return nil, mr.err
	}
	if mr.cur == nil {
		mr.cur = &partReader{mr: mr, atLineStart: true}
	}
	// Read the rest of the preamble or of the previous part.
	if _, err := io.Copy(io.Discard, mr.cur); err != nil {
		mr.err = err
		return nil, err
	}
	if mr.closed {
		mr.err = io.EOF
		if mr.parts == 0 {
			mr.err = errNoParts
		}
		return nil, mr.err
	}
	mr.parts++
	mr.cur = &partReader{mr: mr, atLineStart: true}
	return mr.cur, nil
}

// partReader returns the bytes of one part (or of the preamble) up to the next delimiter.
//
// It reads line by line. The line end of each line is held back until the next line is known
// not to be a delimiter, because the line end before a delimiter belongs to the delimiter.
type partReader struct {
	mr          *MultipartReader
	carry       []byte  // bytes ready to hand out
	eol         [2]byte // the held-back line end: "\r\n" or "\n"
	eolN        int
	atLineStart bool
	err         error // returned once carry is empty
}

func (pr *partReader) Read(p []byte) (int, error) {
	br := pr.mr.br
	for {
		if len(pr.carry) > 0 {
			n := copy(p, pr.carry)
			pr.carry = pr.carry[n:]
			return n, nil
		}
		if pr.err != nil {
			return 0, pr.err
		}
		if len(p) == 0 {
			return 0, nil
		}
		if pr.atLineStart {
			kind, err := pr.mr.readDelimiter()
			if err != nil {
				pr.err = err
				continue
			}
			if kind != notDelimiter {
				pr.mr.closed = kind == closeDelimiter
				pr.err = io.EOF
				continue
			}
			pr.atLineStart = false
			pr.carry = pr.eol[:pr.eolN]
			pr.eolN = 0
			continue
		}
		// carry may point into br's buffer: it is handed out before br is read again.
		frag, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			n := 1
			if len(frag) >= 2 && frag[len(frag)-2] == '\r' {
				n = 2
			}
			pr.eolN = copy(pr.eol[:], frag[len(frag)-n:])
			pr.carry = frag[:len(frag)-n]
			pr.atLineStart = true
		case errors.Is(err, bufio.ErrBufferFull):
			// A CR at the end of a full buffer may begin a CRLF line end: put it back.
			if frag[len(frag)-1] == '\r' && br.UnreadByte() == nil {
				frag = frag[:len(frag)-1]
			}
			pr.carry = frag
		case err == io.EOF:
			pr.carry = frag
			pr.err = errMissingClose
		default:
			pr.carry = frag
			pr.err = fmt.Errorf("as2: reading multipart body: %w", err)
		}
	}
}

// readDelimiter looks at the line that starts at the reader's position. If it is a delimiter
// line it is consumed, line end included.
func (mr *MultipartReader) readDelimiter() (delimiterKind, error) {
	buf, err := mr.br.Peek(len(mr.dash))
	if !bytes.Equal(buf, mr.dash) {
		if err != nil && err != io.EOF {
			return notDelimiter, fmt.Errorf("as2: reading multipart body: %w", err)
		}
		return notDelimiter, nil
	}
	// Look in what is buffered first: waiting for more input than the line needs would
	// stall on a slow sender.
	buf, _ = mr.br.Peek(min(mr.br.Buffered(), maxDelimiterLine+1))
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		buf, err = mr.br.Peek(maxDelimiterLine + 1)
		i = bytes.IndexByte(buf, '\n')
		if i < 0 && err != nil && err != io.EOF {
			return notDelimiter, fmt.Errorf("as2: reading multipart body: %w", err)
		}
	}
	line, consume := buf, len(buf)
	if i >= 0 {
		line, consume = buf[:i], i+1
	}
	kind := classifyDelimiter(line, mr.dash)
	if kind != notDelimiter {
		if _, err := mr.br.Discard(consume); err != nil {
			return notDelimiter, fmt.Errorf("as2: reading multipart body: %w", err)
		}
	}
	return kind, nil
}

// hasBareLF reports whether b holds an LF not preceded by CR.
func hasBareLF(b []byte) bool {
	for i := bytes.IndexByte(b, '\n'); i >= 0; {
		if i == 0 || b[i-1] != '\r' {
			return true
		}
		j := bytes.IndexByte(b[i+1:], '\n')
		if j < 0 {
			return false
		}
		i += j + 1
	}
	return false
}

// ToCRLF returns b with every bare LF turned into CRLF; b itself when it has none.
func ToCRLF(b []byte) []byte {
	if !hasBareLF(b) {
		return b
	}
	bare := 0
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			bare++
		}
	}
	out := make([]byte, 0, len(b)+bare)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// CanonicalizeHeader returns entity with bare LF line ends turned into CRLF in its header
// block only, the body untouched; entity itself when there is nothing to change.
//
// QUIRK: a real capture stored the first part of a multipart/signed with LF line ends in its
// headers and the (binary) body intact; its signature verifies only over these bytes.
func CanonicalizeHeader(entity []byte) ([]byte, error) {
	_, n, err := parseHeader(entity)
	if err != nil {
		return nil, err
	}
	h := ToCRLF(entity[:n])
	if len(h) == n {
		return entity, nil
	}
	out := make([]byte, 0, len(h)+len(entity)-n)
	return append(append(out, h...), entity[n:]...), nil
}

// Canonicalize returns the canonical form of a MIME entity (RFC 5751 §3.1.1) over which
// signatures and MICs are computed: CRLF line ends in the header block always, and in the
// body when it is text (a text/* type, or a base64 or quoted-printable encoding, which are
// line-oriented). Other bodies are binary and left untouched: EDI and XML payloads keep their
// bytes. The parts of a multipart body are canonicalized one by one. It returns entity
// itself when it is already canonical.
func Canonicalize(entity []byte) ([]byte, error) {
	e, err := ParseEntity(entity)
	if err != nil {
		return nil, err
	}
	head := ToCRLF(e.HeaderBytes())
	body := e.Body()
	mt := e.Header.MediaType()
	switch cte := e.Header.TransferEncoding(); {
	case strings.HasPrefix(mt, "text/"), cte == "base64", cte == "quoted-printable":
		body = ToCRLF(body)
	case strings.HasPrefix(mt, "multipart/"):
		if body, err = canonicalizeMultipart(e.Header, body); err != nil {
			return nil, err
		}
	}
	if len(head) == e.BodyOffset && len(body) == len(e.Body()) {
		return entity, nil
	}
	out := make([]byte, 0, len(head)+len(body))
	return append(append(out, head...), body...), nil
}

func canonicalizeMultipart(h Header, body []byte) ([]byte, error) {
	if !hasBareLF(body) {
		return body, nil
	}
	boundary, err := h.Boundary()
	if err != nil {
		return nil, err
	}
	parts, err := SplitMultipart(body, boundary)
	if err != nil {
		return nil, err
	}
	// Delimiters, preamble and epilogue are text; each part follows its own type.
	out := make([]byte, 0, len(body)+len(body)/32)
	prev := 0
	for _, p := range parts {
		c, err := Canonicalize(p.Raw)
		if err != nil {
			return nil, err
		}
		out = append(out, ToCRLF(body[prev:p.Offset])...)
		out = append(out, c...)
		prev = p.Offset + len(p.Raw)
	}
	return append(out, ToCRLF(body[prev:])...), nil
}

// CRLFWriter writes to W what is written to it with every bare LF turned into CRLF, for
// canonicalizing a text body as it streams.
type CRLFWriter struct {
	W      io.Writer
	lastCR bool
}

func (w *CRLFWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			n, err := w.W.Write(p)
			written += n
			if n > 0 {
				w.lastCR = p[n-1] == '\r'
			}
			return written, err
		}
		prevCR := w.lastCR
		if i > 0 {
			prevCR = p[i-1] == '\r'
		}
		if i > 0 {
			n, err := w.W.Write(p[:i])
			written += n
			if err != nil {
				return written, err
			}
		}
		eol := []byte("\n")
		if !prevCR {
			eol = []byte("\r\n")
		}
		if _, err := w.W.Write(eol); err != nil {
			return written, err
		}
		written++
		w.lastCR = false
		p = p[i+1:]
	}
	return written, nil
}
