package interop

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/as2gate/as2gate/cms"
)

var bcCompressedSizes = []int{0, 1, 100 << 10, 1 << 20}

// TestBCCompressedFromBC has BouncyCastle compress with both of its generators, the one
// that writes DER and the streaming one that writes BER as mendelson sends it, and reads the
// result with cms.Decompress.
func TestBCCompressedFromBC(t *testing.T) {
	t.Parallel()
	for _, gen := range []struct {
		name  string
		flags []string
		// The streaming generator opens the ContentInfo with an indefinite length; the
		// DER one with a definite one.
		lengthOctet func(byte) bool
	}{
		{"DER", nil, func(b byte) bool { return b != 0x80 }},
		{"stream", []string{"--stream"}, func(b byte) bool { return b == 0x80 }},
	} {
		for _, size := range bcCompressedSizes {
			t.Run(fmt.Sprintf("%s/%d", gen.name, size), func(t *testing.T) {
				t.Parallel()
				content := bcPayload(size)
				dir := t.TempDir()
				in, out := filepath.Join(dir, "content"), filepath.Join(dir, "compressed")
				bcWrite(t, in, content)
				bc(t, append(append([]string{"compress"}, gen.flags...), in, out)...)
				enc := bcOutput(t, out)
				if len(enc) < 2 || !gen.lengthOctet(enc[1]) {
					t.Fatalf("BouncyCastle's %s generator wrote % x...", gen.name, enc[:min(len(enc), 8)])
				}
				if typ, err := cms.Identify(enc); err != nil || typ != cms.TypeCompressedData {
					t.Fatalf("Identify = %v, %v", typ, err)
				}
				var got bytes.Buffer
				n, err := cms.Decompress(&got, bytes.NewReader(enc), int64(size))
				if err != nil {
					t.Fatalf("Decompress: %v", err)
				}
				if n != int64(size) || !bytes.Equal(got.Bytes(), content) {
					t.Fatalf("Decompress gave %d bytes, not the %d compressed", n, size)
				}
			})
		}
	}
}

// TestBCCompressedToBC compresses with cms.Compress and has BouncyCastle's streaming parser
// decompress.
func TestBCCompressedToBC(t *testing.T) {
	t.Parallel()
	for _, size := range bcCompressedSizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			t.Parallel()
			content := bcPayload(size)
			var enc bytes.Buffer
			if err := cms.Compress(&enc, bytes.NewReader(content)); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			in, out := filepath.Join(dir, "compressed"), filepath.Join(dir, "content")
			bcWrite(t, in, enc.Bytes())
			bc(t, "decompress", in, out)
			if got := bcOutput(t, out); !bytes.Equal(got, content) {
				t.Fatalf("BouncyCastle decompressed %d bytes, not the %d compressed", len(got), size)
			}
		})
	}
}
