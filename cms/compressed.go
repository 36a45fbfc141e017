package cms

import (
	"bufio"
	"compress/zlib"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"sync"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CompressedData (RFC 3274):
//
//	CompressedData ::= SEQUENCE {
//	  version CMSVersion,                          -- always 0
//	  compressionAlgorithm CompressionAlgorithmIdentifier,
//	  encapContentInfo EncapsulatedContentInfo }
//
// The only algorithm defined is id-alg-zlibCompress, a zlib stream (RFC 1950) with absent
// parameters. AS2 (RFC 5402) compresses a MIME entity, so the encapsulated type is id-data.

// maxFragment is the size of the OCTET STRING fragments Compress writes: large enough that
// the four header bytes of each cost nothing, small enough to buffer per message.
const maxFragment = 32 << 10

// compressedPrefix is everything Compress writes before the first fragment of the zlib
// stream: every constructed element up to the eContent OCTET STRING is open with an
// indefinite length.
var compressedPrefix = func() []byte {
	var b []byte
	b = append(b, tagSequence, 0x80) // ContentInfo
	b = appendOID(b, oidCompressedData)
	b = append(b, classContext|bitCompound|0, 0x80) // [0] EXPLICIT content
	b = append(b, tagSequence, 0x80)                // CompressedData
	b = append(b, tagInteger, 0x01, 0x00)           // version 0
	alg := appendOID(nil, oidZlibCompress)
	b = appendHeader(b, tagSequence, int64(len(alg))) // parameters absent (RFC 3274 §2)
	b = append(b, alg...)
	b = append(b, tagSequence, 0x80) // EncapsulatedContentInfo
	b = appendOID(b, oidData)
	b = append(b, classContext|bitCompound|0, 0x80) // eContent [0] EXPLICIT
	b = append(b, constructedOS, 0x80)              // OCTET STRING in fragments
	return b
}()

// compressionLevel trades ratio for speed. On EDI and RFC text, level 4 output is within 4%
// of level 6 (zlib's default) and three times faster with Go's compress/flate, for which
// level 6 runs at under 30 MB/s on one core: a gateway moving large files feels that.
const compressionLevel = 4

// deflaters recycles zlib writers: each holds close to a megabyte of match tables.
var deflaters = sync.Pool{New: func() any {
	zw, err := zlib.NewWriterLevel(nil, compressionLevel)
	if err != nil {
		panic(err) // compressionLevel is a valid level
	}
	return zw
}}

// compressedSuffix closes the six indefinite-length elements compressedPrefix opened.
var compressedSuffix = make([]byte, 2*6)

// appendOID appends the DER encoding of a well-formed object identifier.
func appendOID(b []byte, oid asn1.ObjectIdentifier) []byte {
	var cb cryptobyte.Builder
	cb.AddASN1ObjectIdentifier(oid)
	return append(b, cb.BytesOrPanic()...)
}

// Compress reads content and writes to w a ContentInfo holding CompressedData
// (id-ct-compressedData, RFC 3274) with algorithm id-alg-zlibCompress over id-data. The
// compressed length is not known in advance, so the output is BER: indefinite lengths, and
// the zlib stream in definite-length OCTET STRING fragments of at most 32 KiB, as mendelson
// and OpenSSL -stream produce it. Memory use does not depend on the size of content.
func Compress(w io.Writer, content io.Reader) error {
	if _, err := w.Write(compressedPrefix); err != nil {
		return fmt.Errorf("cms: writing compressed data: %w", err)
	}
	fw := &fragmentBuffer{w: w}
	zw := deflaters.Get().(*zlib.Writer)
	defer deflaters.Put(zw)
	zw.Reset(fw)
	buf := make([]byte, maxFragment)
	for {
		n, rerr := content.Read(buf)
		if n > 0 {
			if _, err := zw.Write(buf[:n]); err != nil {
				return fmt.Errorf("cms: writing compressed data: %w", err)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("cms: reading content to compress: %w", rerr)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("cms: writing compressed data: %w", err)
	}
	if err := fw.flush(); err != nil {
		return fmt.Errorf("cms: writing compressed data: %w", err)
	}
	if _, err := w.Write(compressedSuffix); err != nil {
		return fmt.Errorf("cms: writing compressed data: %w", err)
	}
	return nil
}

// fragmentBuffer cuts what is written to it into primitive OCTET STRINGs of maxFragment
// bytes, each sent to w with a single Write.
type fragmentBuffer struct {
	w   io.Writer
	buf [4 + maxFragment]byte // room for the longest header, then the fragment
	n   int                   // fragment bytes buffered after the header room
}

func (f *fragmentBuffer) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		c := copy(f.buf[4+f.n:], p)
		f.n += c
		written += c
		p = p[c:]
		if f.n == maxFragment {
			if err := f.flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// flush writes the buffered bytes, if any, as one fragment. The header is written right
// before the contents so that header and contents leave in one Write.
func (f *fragmentBuffer) flush() error {
	if f.n == 0 {
		return nil
	}
	var hdr [4]byte
	h := appendHeader(hdr[:0], tagOctetString, int64(f.n))
	start := 4 - len(h)
	copy(f.buf[start:], h)
	_, err := f.w.Write(f.buf[start : 4+f.n])
	f.n = 0
	return err
}

// Decompress reads a ContentInfo holding CompressedData (BER or DER) from r and writes the
// decompressed content to w as it is inflated, returning the number of bytes written. More
// than limit decompressed bytes fail with an error matching ErrTooLarge, so that a
// compression bomb costs no more than limit bytes of output; limit <= 0 means no limit. On
// error, what was already written to w must be discarded.
func Decompress(w io.Writer, r io.Reader, limit int64) (int64, error) {
	d := newDecoder(r, 0)
	compressed, err := d.compressedDataStart()
	if err != nil {
		return 0, err
	}
	// The inflater reads through a bufio.Reader of ours (an io.ByteReader, so flate takes
	// exactly the bytes of the zlib stream and no more) so that data left after the end of
	// the stream can be detected.
	br := bufio.NewReaderSize(compressed, maxFragment)
	inflater, err := zlib.NewReader(br)
	if err != nil {
		var se *SyntaxError
		if errors.As(err, &se) {
			return 0, err
		}
		return 0, fmt.Errorf("cms: compressed content is not a zlib stream: %w", err)
	}
	src := io.Reader(inflater)
	if limit > 0 {
		src = &inflateLimit{r: inflater, left: limit, limit: limit}
	}
	n, err := copyLabelled(w, src)
	if err != nil {
		return n, err
	}
	if err := inflater.Close(); err != nil {
		return n, fmt.Errorf("cms: compressed content: %w", err)
	}
	// A zlib stream ends with its checksum, which the inflater has verified. Anything after
	// it in the OCTET STRING is not content: no product is known to pad the stream, so extra
	// bytes point to a broken or tampered message.
	var one [1]byte
	if k, err := io.ReadFull(br, one[:]); k > 0 {
		return n, errors.New("cms: compressed content: data after the end of the zlib stream")
	} else if err != io.EOF {
		return n, err
	}
	// Close eContent [0], EncapsulatedContentInfo, CompressedData, the content [0] and the
	// ContentInfo, checking that each is complete.
	for range 5 {
		if err := d.leave(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// copyLabelled is io.Copy that tells a failure to write the output apart from a failure of
// the compressed input.
func copyLabelled(w io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, maxFragment)
	var total int64
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			k, werr := w.Write(buf[:n])
			total += int64(k)
			if werr == nil && k < n {
				werr = io.ErrShortWrite
			}
			if werr != nil {
				return total, fmt.Errorf("cms: writing decompressed content: %w", werr)
			}
		}
		switch {
		case rerr == io.EOF:
			return total, nil
		case rerr == nil:
		case errors.Is(rerr, ErrTooLarge):
			return total, rerr
		case errors.Is(rerr, io.ErrUnexpectedEOF):
			return total, fmt.Errorf("cms: compressed content: zlib stream is truncated: %w", rerr)
		default:
			var se *SyntaxError
			if errors.As(rerr, &se) {
				return total, rerr
			}
			return total, fmt.Errorf("cms: compressed content: %w", rerr)
		}
	}
}

// inflateLimit passes on at most limit bytes and then fails with ErrTooLarge if the
// inflater has more to give.
type inflateLimit struct {
	r     io.Reader
	left  int64
	limit int64
}

func (l *inflateLimit) Read(p []byte) (int, error) {
	if l.left == 0 {
		var one [1]byte
		for {
			n, err := l.r.Read(one[:])
			if n > 0 {
				return 0, fmt.Errorf("%w: decompressed content is over %d bytes", ErrTooLarge, l.limit)
			}
			if err != nil {
				return 0, err
			}
		}
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// compressedDataStart reads a ContentInfo up to the contents of the eContent OCTET STRING
// of its CompressedData and returns a reader over that (still compressed) string.
func (d *decoder) compressedDataStart() (io.Reader, error) {
	oid, err := d.contentInfoStart()
	if err != nil {
		return nil, err
	}
	if !oid.Equal(oidCompressedData) {
		return nil, fmt.Errorf("cms: content type %s (%s) is not compressed-data", contentTypeOf(oid), oid)
	}
	if err := d.enter(tagSequence); err != nil {
		return nil, err
	}

	der, tag, err := d.element(16)
	if err != nil {
		return nil, err
	}
	var version int64
	s := cryptobyte.String(der)
	if tag != tagInteger || !s.ReadASN1Integer(&version) {
		return nil, d.syntax("CompressedData version is not an INTEGER")
	}
	if version != 0 {
		return nil, fmt.Errorf("cms: CompressedData version %d, want 0", version)
	}

	der, tag, err = d.element(512)
	if err != nil {
		return nil, err
	}
	if err := checkCompressionAlgorithm(tag, der); err != nil {
		var ue *UnsupportedAlgorithmError
		if errors.As(err, &ue) {
			return nil, err
		}
		return nil, d.syntax(err.Error())
	}

	if err := d.enter(tagSequence); err != nil { // EncapsulatedContentInfo
		return nil, err
	}
	inner, err := d.oid()
	if err != nil {
		return nil, err
	}
	if !inner.Equal(oidData) {
		return nil, fmt.Errorf("cms: compressed content type %s is not id-data", inner)
	}
	if ok, err := d.more(); err != nil {
		return nil, err
	} else if !ok {
		return nil, errors.New("cms: CompressedData has no content (detached compressed content is not supported)")
	}
	if err := d.enter(classContext | bitCompound | 0); err != nil {
		return nil, err
	}
	h, err := d.header()
	if err != nil {
		return nil, err
	}
	if h.tag&^bitCompound != tagOctetString {
		return nil, d.syntax(fmt.Sprintf("eContent has tag 0x%02x, want an OCTET STRING", h.tag))
	}
	return d.octets(h)
}

// checkCompressionAlgorithm accepts the DER of an AlgorithmIdentifier naming zlib.
func checkCompressionAlgorithm(tag byte, der []byte) error {
	s := cryptobyte.String(der)
	var alg cryptobyte.String
	var oid asn1.ObjectIdentifier
	if tag != tagSequence || !s.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&oid) {
		return errors.New("compressionAlgorithm is not an AlgorithmIdentifier")
	}
	if !oid.Equal(oidZlibCompress) {
		return &UnsupportedAlgorithmError{What: "compression", OID: oid}
	}
	// QUIRK: RFC 3274 says the parameters are absent, but writers that encode every
	// AlgorithmIdentifier the same way send NULL; both mean "no parameters".
	if !alg.Empty() {
		var null cryptobyte.String
		if !alg.ReadASN1(&null, cbasn1.NULL) || !null.Empty() || !alg.Empty() {
			return errors.New("zlib compressionAlgorithm has parameters")
		}
	}
	return nil
}
