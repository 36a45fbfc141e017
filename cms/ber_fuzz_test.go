package cms

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// berSeeds are inputs for the BER fuzz targets: the shapes real senders produce.
func berSeeds(tb testing.TB) [][]byte {
	return [][]byte{
		{0x30, 0x80, 0x24, 0x80, 0x04, 0x02, 'a', 'b', 0x04, 0x01, 'c', 0x00, 0x00, 0x05, 0x00, 0x00, 0x00},
		{0x30, 0x0b, 0xa0, 0x07, 0x04, 0x02, 'x', 'y', 0x04, 0x01, 'z', 0x05, 0x00},
		{0x30, 0x80, 0xa0, 0x80, 0x04, 0x01, 'x', 0x24, 0x80, 0x04, 0x02, 'y', 'z', 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00},
		{0x2c, 0x80, 0x0c, 0x01, 'a', 0x2c, 0x03, 0x0c, 0x01, 'b', 0x00, 0x00},
		{0x04, 0x81, 0x01, 'a'},
		{0x02, 0x01, 0x00, 0x0d, 0x0a},
		mustCompress(tb, []byte("hello, world")),
		compressedDER{fragments: true}.build(tb),
	}
}

// FuzzNormalize checks that normalizeAll never panics, that its output is a fixed point
// (DER normalizes to itself), and that the streaming decoder, walking the same input element
// by element, agrees with it byte for byte.
func FuzzNormalize(f *testing.F) {
	for _, s := range berSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		der, err := normalizeAll(in)
		if err == nil {
			again, err := normalizeAll(der)
			if err != nil {
				t.Fatalf("normalizing the output % x again: %v", der, err)
			}
			if !bytes.Equal(again, der) {
				t.Fatalf("normalize is not idempotent:\n% x\n% x", der, again)
			}
		}

		first, used, nerr := normalize(in)
		walked, read, werr := walkBER(in)
		if werr != nil {
			return
		}
		// The decoder nests less deeply than normalize allows, and is otherwise as strict:
		// anything it reads, normalize reads the same way.
		if nerr != nil {
			t.Fatalf("the decoder read % x as % x, normalize failed: %v", in, walked, nerr)
		}
		if !bytes.Equal(walked, first) || read != int64(used) {
			t.Fatalf("decoder and normalize disagree on % x:\ndecoder   % x (%d bytes)\nnormalize % x (%d bytes)",
				in, walked, read, first, used)
		}
	})
}

// walkBER rebuilds the DER of the first element of in through the streaming decoder only
// (header, push, more, octets), an implementation independent of normalize.
func walkBER(in []byte) ([]byte, int64, error) {
	d := newDecoder(bytes.NewReader(in), 0)
	der, err := d.walk(0)
	return der, d.pos, err
}

func (d *decoder) walk(depth int) ([]byte, error) {
	h, err := d.header()
	if err != nil {
		return nil, err
	}
	if !h.constructed() || h.tag == constructedOS {
		r, err := d.octets(h)
		if err != nil {
			return nil, err
		}
		var contents bytes.Buffer
		if _, err := io.Copy(&contents, r); err != nil {
			return nil, err
		}
		return append(appendHeader(nil, h.tag&^bitCompound, int64(contents.Len())), contents.Bytes()...), nil
	}
	if err := d.push(h); err != nil {
		return nil, err
	}
	flatten := h.tag&0xc0 == 0 && isStringTag(h.tag)
	var children []byte
	for {
		ok, err := d.more()
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		child, err := d.walk(depth + 1)
		if err != nil {
			return nil, err
		}
		if flatten {
			ch, _ := parseHeader(child, 0)
			if ch.tag != h.tag&^bitCompound {
				return nil, fmt.Errorf("string fragment of a different type")
			}
			child = child[ch.headerBytes:]
		}
		children = append(children, child...)
	}
	d.stack = d.stack[:len(d.stack)-1]
	tag := h.tag
	if flatten {
		tag &^= bitCompound
	}
	return append(appendHeader(nil, tag, int64(len(children))), children...), nil
}

// FuzzDecoder walks arbitrary input the way the CMS readers do, with the skipping and
// collecting operations (enter, element, leave) as well as octets: none may panic, loop
// forever, or return more than it was allowed to.
func FuzzDecoder(f *testing.F) {
	for _, s := range berSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		d := newDecoder(bytes.NewReader(in), int64(len(in)))
		tag, err := d.peekTag()
		if err != nil || tag&bitCompound == 0 {
			return
		}
		if err := d.enter(tag); err != nil {
			return
		}
		for i := 0; ; i++ {
			ok, err := d.more()
			if err != nil || !ok {
				break
			}
			tag, err := d.peekTag()
			if err != nil {
				return
			}
			switch {
			case tag == tagOctetString || tag == constructedOS || tag == classContext:
				h, err := d.header()
				if err != nil {
					return
				}
				r, err := d.octets(h)
				if err != nil {
					return
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					return
				}
			case i%2 == 0:
				der, _, err := d.element(64)
				if err != nil {
					return
				}
				// max bounds the contents; a definite header adds at most 9 bytes.
				if len(der) > 64+9 {
					t.Fatalf("element(64) returned %d bytes", len(der))
				}
			default:
				if _, _, err := d.element(0); err != nil {
					return
				}
			}
			if d.pos > int64(len(in)) {
				t.Fatalf("decoder at offset %d of a %d-byte input", d.pos, len(in))
			}
		}
		_ = d.leave()
	})
}
