package cms

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// BER support. CMS is specified in DER, but real senders stream BER: indefinite lengths and
// OCTET STRINGs cut into constructed fragments (OpenSSL -stream, mendelson, BouncyCastle
// streaming generators). Two tools cover it:
//
//   - normalize turns a whole BER element held in memory into DER, for the small structures
//     (signer infos, recipient infos, certificates) that are then read with cryptobyte;
//   - decoder walks a BER stream element by element and hands out the contents of an
//     OCTET STRING as an io.Reader, for the large contents that must not be held in memory.
//
// Only low tag numbers (< 31) are accepted: CMS uses no others.

// Parsing limits. They bound the work a hostile input can cause.
const (
	// MaxDepth is the deepest nesting of constructed elements accepted.
	MaxDepth = 48
	// maxFragmentDepth bounds the nesting of constructed OCTET STRING fragments.
	maxFragmentDepth = 8
)

// Tag bytes used across the package (class and constructed bits included).
const (
	tagBoolean     = 0x01
	tagInteger     = 0x02
	tagBitString   = 0x03
	tagOctetString = 0x04
	tagNull        = 0x05
	tagOID         = 0x06
	tagUTCTime     = 0x17
	tagGenTime     = 0x18
	tagSequence    = 0x30
	tagSet         = 0x31

	classContext  = 0x80
	bitPrimitive  = 0x00
	bitCompound   = 0x20
	constructedOS = tagOctetString | bitCompound
)

// ErrTooLarge is returned when an input or one of its elements exceeds a size limit.
var ErrTooLarge = errors.New("cms: input exceeds the size limit")

// SyntaxError reports malformed ASN.1 at a byte offset of the input.
type SyntaxError struct {
	Offset int64
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("cms: malformed ASN.1 at byte %d: %s", e.Offset, e.Msg)
}

// isStringTag reports whether a universal tag is a string type that BER may send in
// constructed fragments and DER requires primitive.
func isStringTag(tag byte) bool {
	switch tag &^ bitCompound {
	case tagOctetString, 0x0c /* UTF8String */, 0x13 /* PrintableString */, 0x14, /* T61String */
		0x16 /* IA5String */, 0x1a /* VisibleString */, 0x1e /* BMPString */, 0x1c /* UniversalString */ :
		return true
	}
	return false
}

// appendHeader appends a DER tag and length.
func appendHeader(b []byte, tag byte, n int64) []byte {
	b = append(b, tag)
	switch {
	case n < 0x80:
		return append(b, byte(n))
	default:
		var tmp [8]byte
		i := len(tmp)
		for v := n; v > 0; v >>= 8 {
			i--
			tmp[i] = byte(v)
		}
		b = append(b, 0x80|byte(len(tmp)-i))
		return append(b, tmp[i:]...)
	}
}

// headerLen is the length of the DER tag and length octets for a content of n bytes.
func headerLen(n int64) int64 {
	if n < 0x80 {
		return 2
	}
	l := int64(2)
	for v := n; v > 0; v >>= 8 {
		l++
	}
	return l
}

// rawHeader is one parsed identifier and length.
type rawHeader struct {
	tag         byte  // the identifier octet, class and constructed bit included
	length      int64 // -1 for the indefinite form
	headerBytes int
}

func (h rawHeader) constructed() bool { return h.tag&bitCompound != 0 }

// parseHeader reads an identifier and length from b.
func parseHeader(b []byte, off int64) (rawHeader, error) {
	if len(b) < 2 {
		return rawHeader{}, &SyntaxError{off, "truncated header"}
	}
	h := rawHeader{tag: b[0], headerBytes: 2}
	if b[0]&0x1f == 0x1f {
		return h, &SyntaxError{off, "high tag number form is not used by CMS"}
	}
	l := b[1]
	switch {
	case l < 0x80:
		h.length = int64(l)
	case l == 0x80:
		if !h.constructed() {
			return h, &SyntaxError{off, "indefinite length on a primitive element"}
		}
		h.length = -1
	case l == 0xff:
		return h, &SyntaxError{off, "reserved length octet"}
	default:
		n := int(l & 0x7f)
		if n > 7 {
			return h, &SyntaxError{off, "length does not fit 56 bits"}
		}
		if len(b) < 2+n {
			return h, &SyntaxError{off, "truncated length"}
		}
		var v int64
		for _, c := range b[2 : 2+n] {
			v = v<<8 | int64(c)
		}
		h.length = v
		h.headerBytes = 2 + n
	}
	return h, nil
}

// normalize converts one complete BER element at the start of in to DER and returns it along
// with the number of input bytes it used. Indefinite lengths become definite and constructed
// strings become primitive. SET OF elements are not re-sorted: signatures are computed over
// what the sender encoded.
func normalize(in []byte) (der []byte, used int, err error) {
	var out []byte
	out, used, err = normalizeInto(nil, in, 0, 0)
	return out, used, err
}

func normalizeInto(out, in []byte, off int64, depth int) ([]byte, int, error) {
	if depth > MaxDepth {
		return nil, 0, &SyntaxError{off, "nesting too deep"}
	}
	h, err := parseHeader(in, off)
	if err != nil {
		return nil, 0, err
	}
	body := in[h.headerBytes:]
	if !h.constructed() {
		if h.length > int64(len(body)) {
			return nil, 0, &SyntaxError{off, "element runs past the end of its container"}
		}
		out = appendHeader(out, h.tag, h.length)
		out = append(out, body[:h.length]...)
		return out, h.headerBytes + int(h.length), nil
	}
	if h.length >= 0 && h.length > int64(len(body)) {
		return nil, 0, &SyntaxError{off, "element runs past the end of its container"}
	}
	if h.length >= 0 {
		body = body[:h.length]
	}
	// Children are normalized into a scratch area and then given a definite header.
	var children []byte
	pos := 0
	flatten := h.tag&0xc0 == 0 && isStringTag(h.tag)
	for {
		if h.length >= 0 && pos == len(body) {
			break
		}
		if h.length < 0 {
			if len(body)-pos < 2 {
				return nil, 0, &SyntaxError{off + int64(h.headerBytes+pos), "missing end-of-contents"}
			}
			if body[pos] == 0 && body[pos+1] == 0 {
				pos += 2
				break
			}
		}
		child, n, err := normalizeInto(nil, body[pos:], off+int64(h.headerBytes+pos), depth+1)
		if err != nil {
			return nil, 0, err
		}
		if flatten {
			// A fragment of a constructed string: keep only its contents.
			ch, _ := parseHeader(child, 0)
			if ch.tag != h.tag&^bitCompound {
				return nil, 0, &SyntaxError{off + int64(h.headerBytes+pos), "string fragment of a different type"}
			}
			child = child[ch.headerBytes:]
		}
		children = append(children, child...)
		pos += n
	}
	tag := h.tag
	if flatten {
		tag &^= bitCompound
	}
	out = appendHeader(out, tag, int64(len(children)))
	out = append(out, children...)
	return out, h.headerBytes + pos, nil
}

// normalizeAll converts a buffer that must hold exactly one BER element to DER.
func normalizeAll(in []byte) ([]byte, error) {
	der, used, err := normalize(in)
	if err != nil {
		return nil, err
	}
	if used != len(in) {
		// Tolerate trailing zero padding and line ends, which some products append after
		// the DER of a base64 body; anything else is an error.
		for _, c := range in[used:] {
			if c != 0 && c != '\r' && c != '\n' {
				return nil, &SyntaxError{int64(used), "trailing data after the element"}
			}
		}
	}
	return der, nil
}

// decoder walks a BER stream. It keeps a stack of the constructed elements entered so that it
// knows where each ends, whether definite or indefinite.
type decoder struct {
	r     *bufio.Reader
	pos   int64 // bytes consumed so far
	limit int64 // total bytes the stream may have; <= 0 means no limit
	stack []int64
}

const indefinite = -1

func newDecoder(r io.Reader, limit int64) *decoder {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 32<<10)
	}
	return &decoder{r: br, limit: limit}
}

func (d *decoder) syntax(msg string) error { return &SyntaxError{d.pos, msg} }

func (d *decoder) readByte() (byte, error) {
	if d.limit > 0 && d.pos >= d.limit {
		return 0, ErrTooLarge
	}
	c, err := d.r.ReadByte()
	if err != nil {
		if err == io.EOF {
			return 0, d.syntax("unexpected end of input")
		}
		return 0, err
	}
	d.pos++
	return c, nil
}

// header reads the next identifier and length.
func (d *decoder) header() (rawHeader, error) {
	var buf [9]byte
	for i := 0; i < 2; i++ {
		c, err := d.readByte()
		if err != nil {
			return rawHeader{}, err
		}
		buf[i] = c
	}
	n := 2
	if buf[1] > 0x80 && buf[1] != 0xff {
		extra := int(buf[1] & 0x7f)
		if extra > 7 {
			return rawHeader{}, d.syntax("length does not fit 56 bits")
		}
		for i := 0; i < extra; i++ {
			c, err := d.readByte()
			if err != nil {
				return rawHeader{}, err
			}
			buf[n] = c
			n++
		}
	}
	h, err := parseHeader(buf[:n], d.pos-int64(n))
	if err != nil {
		return h, err
	}
	if end := d.end(); end >= 0 && d.pos > end {
		// The header itself crosses the end of the container.
		return h, d.syntax("element runs past the end of its container")
	}
	if h.length > 0 {
		if end := d.end(); end >= 0 && d.pos+h.length > end {
			return h, d.syntax("element runs past the end of its container")
		}
		if d.limit > 0 && d.pos+h.length > d.limit {
			return h, ErrTooLarge
		}
	}
	return h, nil
}

// end is the offset where the innermost entered element ends, or indefinite.
func (d *decoder) end() int64 {
	for i := len(d.stack) - 1; i >= 0; i-- {
		if d.stack[i] >= 0 {
			return d.stack[i]
		}
	}
	return indefinite
}

// more reports whether the innermost entered element has another child. For an indefinite
// element it consumes the end-of-contents octets when they come.
func (d *decoder) more() (bool, error) {
	top := d.stack[len(d.stack)-1]
	if top >= 0 {
		return d.pos < top, nil
	}
	b, err := d.r.Peek(2)
	if err != nil {
		return false, d.syntax("missing end-of-contents")
	}
	if end := d.end(); end >= 0 && d.pos+2 > end {
		// The bytes left in the enclosing definite-length element cannot hold the
		// end-of-contents octets.
		return false, d.syntax("missing end-of-contents")
	}
	if b[0] == 0 && b[1] == 0 {
		if d.limit > 0 && d.pos+2 > d.limit {
			return false, ErrTooLarge
		}
		d.r.Discard(2)
		d.pos += 2
		d.stack[len(d.stack)-1] = d.pos // mark as ended
		return false, nil
	}
	return true, nil
}

// enter reads the header of a constructed element with the given tag and descends into it.
func (d *decoder) enter(tag byte) error {
	h, err := d.header()
	if err != nil {
		return err
	}
	if h.tag != tag {
		return d.syntax(fmt.Sprintf("expected tag 0x%02x, found 0x%02x", tag, h.tag))
	}
	return d.push(h)
}

func (d *decoder) push(h rawHeader) error {
	if !h.constructed() {
		return d.syntax("expected a constructed element")
	}
	if len(d.stack) >= MaxDepth {
		return d.syntax("nesting too deep")
	}
	if h.length < 0 {
		d.stack = append(d.stack, indefinite)
	} else {
		d.stack = append(d.stack, d.pos+h.length)
	}
	return nil
}

// leave skips what is left of the innermost element and pops it.
func (d *decoder) leave() error {
	for {
		ok, err := d.more()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if _, _, err := d.element(0); err != nil {
			return err
		}
	}
	d.stack = d.stack[:len(d.stack)-1]
	return nil
}

// peekTag returns the identifier octet of the next element without consuming it.
func (d *decoder) peekTag() (byte, error) {
	b, err := d.r.Peek(1)
	if err != nil {
		return 0, d.syntax("unexpected end of input")
	}
	return b[0], nil
}

// element reads one whole element and returns it as DER. max bounds its encoded size
// (0: only skip it, returning nothing).
func (d *decoder) element(max int) (der []byte, tag byte, err error) {
	h, err := d.header()
	if err != nil {
		return nil, 0, err
	}
	raw, err := d.rawElement(h, max)
	if err != nil {
		return nil, h.tag, err
	}
	if max == 0 {
		return nil, h.tag, nil
	}
	der, err = normalizeAll(raw)
	return der, h.tag, err
}

// rawElement collects the BER encoding of an element whose header was just read.
func (d *decoder) rawElement(h rawHeader, max int) ([]byte, error) {
	var raw []byte
	keep := max != 0
	if keep {
		raw = appendHeader(nil, h.tag, h.length)
		if h.length < 0 {
			raw = append(raw[:1], 0x80)
		}
	}
	if h.length >= 0 {
		if keep && h.length > int64(max) {
			return nil, ErrTooLarge
		}
		if !keep {
			n, err := d.r.Discard(int(h.length))
			d.pos += int64(n)
			if err != nil {
				return nil, d.syntax("unexpected end of input")
			}
			return nil, nil
		}
		start := len(raw)
		raw = append(raw, make([]byte, h.length)...)
		n, err := io.ReadFull(d.r, raw[start:])
		d.pos += int64(n)
		if err != nil {
			return nil, d.syntax("unexpected end of input")
		}
		return raw, nil
	}
	// Indefinite: children until end-of-contents.
	if err := d.push(h); err != nil {
		return nil, err
	}
	for {
		ok, err := d.more()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		ch, err := d.header()
		if err != nil {
			return nil, err
		}
		sub, err := d.rawElement(ch, max)
		if err != nil {
			return nil, err
		}
		if keep {
			raw = append(raw, sub...)
			if len(raw) > max {
				return nil, ErrTooLarge
			}
		}
	}
	d.stack = d.stack[:len(d.stack)-1]
	if keep {
		raw = append(raw, 0, 0)
	}
	return raw, nil
}

// octets returns a reader over the contents of an OCTET STRING whose header h was just read,
// primitive or constructed (in fragments, definite or indefinite). tag is the identifier the
// primitive form would have (0x04, or 0x80 for an IMPLICIT [0]); fragments are OCTET STRINGs.
// The element is fully consumed once the reader returns io.EOF.
func (d *decoder) octets(h rawHeader) (io.Reader, error) {
	if !h.constructed() {
		return &primitiveOctets{d: d, left: h.length}, nil
	}
	if err := d.push(h); err != nil {
		return nil, err
	}
	return &fragmentOctets{d: d, base: len(d.stack)}, nil
}

type primitiveOctets struct {
	d    *decoder
	left int64
}

func (p *primitiveOctets) Read(b []byte) (int, error) {
	if p.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.left {
		b = b[:p.left]
	}
	n, err := p.d.r.Read(b)
	p.d.pos += int64(n)
	p.left -= int64(n)
	if err == io.EOF {
		if p.left > 0 {
			return n, p.d.syntax("unexpected end of input in OCTET STRING")
		}
		err = nil
	}
	return n, err
}

// fragmentOctets reads a constructed OCTET STRING: a sequence of primitive OCTET STRING
// fragments, possibly nested in further constructed ones.
type fragmentOctets struct {
	d    *decoder
	base int // stack depth of the outermost constructed string
	cur  primitiveOctets
	done bool
}

func (f *fragmentOctets) Read(b []byte) (int, error) {
	for {
		if f.done {
			return 0, io.EOF
		}
		if f.cur.left > 0 {
			return f.cur.Read(b)
		}
		ok, err := f.d.more()
		if err != nil {
			return 0, err
		}
		if !ok {
			f.d.stack = f.d.stack[:len(f.d.stack)-1]
			if len(f.d.stack) < f.base {
				f.done = true
			}
			continue
		}
		h, err := f.d.header()
		if err != nil {
			return 0, err
		}
		if h.tag&^bitCompound != tagOctetString {
			return 0, f.d.syntax(fmt.Sprintf("OCTET STRING fragment has tag 0x%02x", h.tag))
		}
		if h.constructed() {
			if len(f.d.stack)-f.base >= maxFragmentDepth {
				return 0, f.d.syntax("OCTET STRING fragments nested too deep")
			}
			if err := f.d.push(h); err != nil {
				return 0, err
			}
			continue
		}
		f.cur = primitiveOctets{d: f.d, left: h.length}
	}
}
