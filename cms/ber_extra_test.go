package cms

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestNormalizeForms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in, der []byte
	}{
		{"long-form length", []byte{0x04, 0x81, 0x01, 'a'}, []byte{0x04, 0x01, 'a'}},
		{"nested string fragments",
			[]byte{0x24, 0x80, 0x24, 0x80, 0x04, 0x01, 'a', 0x00, 0x00, 0x24, 0x03, 0x04, 0x01, 'b', 0x00, 0x00},
			[]byte{0x04, 0x02, 'a', 'b'}},
		{"UTF8String fragments",
			[]byte{0x2c, 0x80, 0x0c, 0x01, 'a', 0x0c, 0x01, 'b', 0x00, 0x00},
			[]byte{0x0c, 0x02, 'a', 'b'}},
		{"implicit tag stays constructed",
			[]byte{0xa0, 0x80, 0x04, 0x01, 'a', 0x00, 0x00},
			[]byte{0xa0, 0x03, 0x04, 0x01, 'a'}},
		{"indefinite inside definite",
			[]byte{0x30, 0x06, 0x30, 0x80, 0x05, 0x00, 0x00, 0x00},
			[]byte{0x30, 0x04, 0x30, 0x02, 0x05, 0x00}},
		{"trailing CRLF and zeros", []byte{0x05, 0x00, '\r', '\n', 0x00}, []byte{0x05, 0x00}},
		{"two-byte length that fits one",
			append([]byte{0x04, 0x82, 0x00, 0x80}, make([]byte, 128)...),
			append([]byte{0x04, 0x81, 0x80}, make([]byte, 128)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := normalizeAll(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.der) {
				t.Fatalf("normalize = % x, want % x", got, tc.der)
			}
		})
	}
}

// TestDecoderContainerBounds checks that nothing the decoder reads straddles the end of a
// definite-length container: not a child's header, not its contents, not the end-of-contents
// octets of an indefinite child. Reading across would let a hostile sender make two parsers
// see different structures in the same bytes.
func TestDecoderContainerBounds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"header crosses the end", []byte{0x30, 0x01, 0x30, 0x00}},
		{"contents cross the end", []byte{0x30, 0x03, 0x04, 0x02, 'a', 'b'}},
		{"end-of-contents crosses the end", []byte{0x30, 0x05, 0x30, 0x80, 0x05, 0x00, 0x00, 0x00}},
		{"end-of-contents missing", []byte{0x30, 0x04, 0x30, 0x80, 0x05, 0x00, 0x05, 0x00}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := normalizeAll(tc.in); err == nil {
				t.Errorf("normalize accepted % x", tc.in)
			}
			if _, _, err := walkBER(tc.in); err == nil {
				t.Errorf("the decoder walked % x", tc.in)
			}
			d := newDecoder(bytes.NewReader(tc.in), 0)
			if _, _, err := d.element(64); err == nil {
				t.Errorf("element accepted % x", tc.in)
			}
			d = newDecoder(bytes.NewReader(tc.in), 0)
			if err := d.enter(tagSequence); err == nil {
				if err := d.leave(); err == nil {
					t.Errorf("enter and leave accepted % x", tc.in)
				}
			}
		})
	}
}

func TestDecoderHeaderRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"reserved length octet", []byte{0x04, 0xff}},
		{"length over 56 bits", []byte{0x04, 0x88, 1, 0, 0, 0, 0, 0, 0, 0}},
		{"indefinite primitive", []byte{0x04, 0x80}},
		{"high tag number", []byte{0x1f, 0x01, 0x00}},
		{"truncated length", []byte{0x04, 0x82, 0x01}},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := newDecoder(bytes.NewReader(tc.in), 0).header()
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a SyntaxError", err)
			}
		})
	}
}

func TestDecoderOctetsImplicitFragments(t *testing.T) {
	t.Parallel()
	// [0] IMPLICIT OCTET STRING in constructed form, as EnvelopedData's encryptedContent
	// arrives from streaming senders.
	in := []byte{0xa0, 0x80, 0x04, 0x02, 'a', 'b', 0x04, 0x00, 0x04, 0x01, 'c', 0x00, 0x00, 0x05, 0x00}
	d := newDecoder(bytes.NewReader(in), 0)
	d.stack = append(d.stack, int64(len(in))) // as if inside a definite container
	h, err := d.header()
	if err != nil {
		t.Fatal(err)
	}
	r, err := d.octets(h)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil || string(got) != "abc" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, tag, err := d.element(8); err != nil || tag != tagNull {
		t.Fatalf("after the string: tag 0x%02x, %v", tag, err)
	}
}

func TestDecoderOctetsRejects(t *testing.T) {
	t.Parallel()
	// The outer string and maxFragmentDepth+1 levels of constructed fragments inside it.
	deep := []byte{}
	for range maxFragmentDepth + 2 {
		deep = append(deep, 0x24, 0x80)
	}
	deep = append(deep, 0x04, 0x01, 'x')
	for range maxFragmentDepth + 2 {
		deep = append(deep, 0x00, 0x00)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"fragment of another type", []byte{0x24, 0x80, 0x02, 0x01, 0x00, 0x00, 0x00}},
		{"fragments nested too deep", deep},
		{"no end-of-contents", []byte{0x24, 0x80, 0x04, 0x01, 'x'}},
		{"primitive cut short", []byte{0x04, 0x05, 'a', 'b'}},
		{"fragment cut short", []byte{0x24, 0x80, 0x04, 0x05, 'a', 'b'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newDecoder(bytes.NewReader(tc.in), 0)
			h, err := d.header()
			if err != nil {
				t.Fatal(err)
			}
			r, err := d.octets(h)
			if err != nil {
				return
			}
			if _, err := io.ReadAll(r); err == nil {
				t.Fatalf("read % x without an error", tc.in)
			}
		})
	}
}

func TestDecoderElementLimit(t *testing.T) {
	t.Parallel()
	// An indefinite SEQUENCE of many small elements: each is under the bound, the whole is
	// not, so the collector must stop as the total grows.
	in := []byte{0x30, 0x80}
	for range 100 {
		in = append(in, 0x04, 0x04, 'a', 'b', 'c', 'd')
	}
	in = append(in, 0x00, 0x00)
	d := newDecoder(bytes.NewReader(in), 0)
	if _, _, err := d.element(256); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	d = newDecoder(bytes.NewReader(in), 0)
	der, _, err := d.element(1024)
	if err != nil || len(der) != 4+600 {
		t.Fatalf("element(1024): %d bytes, %v", len(der), err)
	}
}
