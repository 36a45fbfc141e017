package cms

import (
	"bytes"
	"testing"
)

// FuzzDecompress feeds arbitrary input to Decompress. It must never panic nor write past its
// limit, and whatever it accepts must survive a round trip through Compress.
func FuzzDecompress(f *testing.F) {
	for _, content := range [][]byte{nil, []byte("x"), []byte("hello, world"), bytes.Repeat([]byte("EDI'"), 5000)} {
		f.Add(mustCompress(f, content))
	}
	f.Add(compressedDER{}.build(f))
	// Fragments of three bytes, so that mutations meet fragment boundaries without the
	// fuzzer having to minimize a 32 KiB seed.
	f.Add(compressedDER{fragments: true}.build(f))

	const limit = 1 << 20
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		n, err := Decompress(&out, bytes.NewReader(in), limit)
		if n != int64(out.Len()) {
			t.Fatalf("Decompress reported %d bytes and wrote %d", n, out.Len())
		}
		if n > limit {
			t.Fatalf("Decompress wrote %d bytes past its limit of %d", n, limit)
		}
		if err != nil {
			return
		}
		var again bytes.Buffer
		if _, err := Decompress(&again, bytes.NewReader(mustCompress(t, out.Bytes())), limit); err != nil {
			t.Fatalf("Decompress of our own Compress output: %v", err)
		}
		if !bytes.Equal(again.Bytes(), out.Bytes()) {
			t.Fatal("round trip through Compress changed the content")
		}
	})
}
