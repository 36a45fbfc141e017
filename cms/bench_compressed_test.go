package cms

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkCompressDecompress measures Compress feeding Decompress through a pipe, as a
// gateway that compresses outbound and decompresses inbound payloads would; the bytes per
// second are those of the uncompressed EDI-like content.
func BenchmarkCompressDecompress(b *testing.B) {
	for _, bc := range []struct {
		name string
		size int64
	}{
		{"1MB", 1 << 20},
		{"100MB", 100 << 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ediBlock() // made once, outside the measurement
			b.SetBytes(bc.size)
			b.ReportAllocs()
			for b.Loop() {
				pr, pw := io.Pipe()
				go func() { pw.CloseWithError(Compress(pw, textContent(bc.size))) }()
				n, err := Decompress(io.Discard, pr, 0)
				if err != nil || n != bc.size {
					b.Fatalf("Decompress: %d bytes, %v", n, err)
				}
			}
		})
	}
}

// BenchmarkDecompress measures Decompress alone on a message held in memory.
func BenchmarkDecompress(b *testing.B) {
	const size = 10 << 20
	var in []byte
	{
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(Compress(pw, textContent(size))) }()
		var err error
		if in, err = io.ReadAll(pr); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decompress(io.Discard, bytes.NewReader(in), 0); err != nil {
			b.Fatal(err)
		}
	}
}
