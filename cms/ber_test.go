package cms

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestNormalizeIndefiniteAndFragments(t *testing.T) {
	t.Parallel()
	// SEQUENCE (indefinite) { OCTET STRING constructed (indefinite) { "ab", "c" }, NULL }
	ber := []byte{0x30, 0x80, 0x24, 0x80, 0x04, 0x02, 'a', 'b', 0x04, 0x01, 'c', 0x00, 0x00, 0x05, 0x00, 0x00, 0x00}
	want := []byte{0x30, 0x07, 0x04, 0x03, 'a', 'b', 'c', 0x05, 0x00}
	got, err := normalizeAll(ber)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("normalize = % x, want % x", got, want)
	}
}

func TestNormalizeRejects(t *testing.T) {
	t.Parallel()
	cases := map[string][]byte{
		"truncated":          {0x30, 0x05, 0x04, 0x01},
		"no end-of-contents": {0x30, 0x80, 0x05, 0x00},
		"indefinite prim":    {0x04, 0x80, 0x00, 0x00},
		"high tag":           {0x1f, 0x81, 0x00},
		"trailing":           {0x05, 0x00, 0x05},
		"fragment type":      {0x24, 0x80, 0x02, 0x01, 0x00, 0x00, 0x00},
	}
	deep := []byte{}
	for i := 0; i < MaxDepth+2; i++ {
		deep = append(deep, 0x30, 0x80)
	}
	cases["too deep"] = deep
	for name, in := range cases {
		if _, err := normalizeAll(in); err == nil {
			t.Errorf("%s: accepted % x", name, in)
		}
	}
}

func TestDecoderOctetStreams(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		in   []byte
		want string
	}{
		"primitive":         {[]byte{0x30, 0x80, 0x80, 0x03, 'x', 'y', 'z', 0x05, 0x00, 0x00, 0x00}, "xyz"},
		"constructed def":   {[]byte{0x30, 0x0b, 0xa0, 0x07, 0x04, 0x02, 'x', 'y', 0x04, 0x01, 'z', 0x05, 0x00}, "xyz"},
		"constructed indef": {[]byte{0x30, 0x80, 0xa0, 0x80, 0x04, 0x01, 'x', 0x24, 0x80, 0x04, 0x02, 'y', 'z', 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00}, "xyz"},
		"empty constructed": {[]byte{0x30, 0x80, 0xa0, 0x80, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00}, ""},
		"empty primitive":   {[]byte{0x30, 0x04, 0x80, 0x00, 0x05, 0x00}, ""},
	} {
		d := newDecoder(bytes.NewReader(tc.in), 0)
		if err := d.enter(tagSequence); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		h, err := d.header()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r, err := d.octets(h)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := io.ReadAll(r)
		if err != nil || string(got) != tc.want {
			t.Fatalf("%s: got %q, %v", name, got, err)
		}
		// The NULL after the string must be next, then the end of the SEQUENCE.
		if _, tag, err := d.element(16); err != nil || tag != tagNull {
			t.Fatalf("%s: after octets: tag %x, %v", name, tag, err)
		}
		if err := d.leave(); err != nil {
			t.Fatalf("%s: leave: %v", name, err)
		}
	}
}

func TestDecoderLimit(t *testing.T) {
	t.Parallel()
	in := []byte{0x30, 0x82, 0x10, 0x00}
	in = append(in, make([]byte, 0x1000)...)
	d := newDecoder(bytes.NewReader(in), 100)
	if _, _, err := d.element(1 << 20); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}
