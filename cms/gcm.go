package cms

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"math/bits"
)

// Streaming AES-GCM (NIST SP 800-38D).
//
// crypto/cipher's AEAD wants the whole message in one call, but in AuthEnvelopedData the
// ciphertext may be gigabytes long and the tag (mac) and the additional authenticated data
// (authAttrs) come only after it. gcmStream therefore runs the two halves of GCM itself:
// GCTR is AES-CTR from crypto/cipher, started at inc32(J0) and restarted where the low 32 bits
// of the counter wrap (SP 800-38D §6.5 increments only those bits, cipher.NewCTR all 128), and
// GHASH (§6.4) is computed here.
//
// GHASH over A || C || len(A) || len(C) is a polynomial in H, so the ciphertext can be hashed
// as it streams and the AAD folded in at the end:
//
//	S = ((X_A · H^c) ⊕ Y_C ⊕ L) · H
//
// where X_A is GHASH of the padded AAD alone, Y_C GHASH of the padded ciphertext alone, c the
// number of ciphertext blocks and L the length block. Without AAD this is ordinary GHASH.
//
// The multiplication in GF(2^128) follows the constant-time "ctmul64" method of BearSSL
// (Thomas Pornin, src/hash/ghash_ctmul64.c): carry-less 64x64 products are computed with
// ordinary integer multiplications on operands whose bits are spread four apart, so no
// carry reaches a bit that is kept; a Karatsuba step builds the 128x128 product, bit
// reversal gives the upper halves, and the result is reduced modulo
// x^128 + x^7 + x^2 + x + 1 in GCM's reflected bit order. There are no secret-dependent
// branches or table look-ups.

// gcmBlockSize is the AES block size GCM is defined for.
const gcmBlockSize = 16

// gcmMaxPlaintext is the longest plaintext SP 800-38D allows: 2^39 - 256 bits.
const gcmMaxPlaintext = 1<<36 - 32

var errGCMTooLong = errors.New("cms: AES-GCM content exceeds 2^36-32 bytes (NIST SP 800-38D limit)")

// fieldElement is an element of GF(2^128) as GCM writes it: hi holds the first eight bytes
// of the block, lo the last eight, both big-endian.
type fieldElement struct{ hi, lo uint64 }

func loadElement(b []byte) fieldElement {
	return fieldElement{binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(b[8:])}
}

func (x fieldElement) put(b []byte) {
	binary.BigEndian.PutUint64(b, x.hi)
	binary.BigEndian.PutUint64(b[8:], x.lo)
}

func (x fieldElement) xor(y fieldElement) fieldElement {
	return fieldElement{x.hi ^ y.hi, x.lo ^ y.lo}
}

// bmul64 returns the low 64 bits of the carry-less product of x and y. Each operand is cut
// into four interleaved parts with bits four positions apart; in an integer product of two
// such parts, carries land only in bit positions that the final masks discard.
func bmul64(x, y uint64) uint64 {
	const m0, m1, m2, m3 = 0x1111111111111111, 0x2222222222222222, 0x4444444444444444, 0x8888888888888888
	x0, x1, x2, x3 := x&m0, x&m1, x&m2, x&m3
	y0, y1, y2, y3 := y&m0, y&m1, y&m2, y&m3
	z0 := (x0 * y0) ^ (x1 * y3) ^ (x2 * y2) ^ (x3 * y1)
	z1 := (x0 * y1) ^ (x1 * y0) ^ (x2 * y3) ^ (x3 * y2)
	z2 := (x0 * y2) ^ (x1 * y1) ^ (x2 * y0) ^ (x3 * y3)
	z3 := (x0 * y3) ^ (x1 * y2) ^ (x2 * y1) ^ (x3 * y0)
	return (z0 & m0) | (z1 & m1) | (z2 & m2) | (z3 & m3)
}

// gfMul returns x·y in GCM's GF(2^128).
func gfMul(x, y fieldElement) fieldElement {
	// In BearSSL's notation the "0" words are the second halves of the blocks.
	x0, x1 := x.lo, x.hi
	y0, y1 := y.lo, y.hi
	x0r, x1r := bits.Reverse64(x0), bits.Reverse64(x1)
	y0r, y1r := bits.Reverse64(y0), bits.Reverse64(y1)
	x2, x2r := x0^x1, x0r^x1r
	y2, y2r := y0^y1, y0r^y1r

	// Karatsuba: low halves of the three products directly, high halves through reversal.
	z0 := bmul64(x0, y0)
	z1 := bmul64(x1, y1)
	z2 := bmul64(x2, y2)
	z0h := bmul64(x0r, y0r)
	z1h := bmul64(x1r, y1r)
	z2h := bmul64(x2r, y2r)
	z2 ^= z0 ^ z1
	z2h ^= z0h ^ z1h
	z0h = bits.Reverse64(z0h) >> 1
	z1h = bits.Reverse64(z1h) >> 1
	z2h = bits.Reverse64(z2h) >> 1

	// The 256-bit product v3:v2:v1:v0, in reflected order, is one bit short: shift it.
	v0 := z0
	v1 := z0h ^ z2
	v2 := z1 ^ z2h
	v3 := z1h
	v3 = v3<<1 | v2>>63
	v2 = v2<<1 | v1>>63
	v1 = v1<<1 | v0>>63
	v0 <<= 1

	// Reduce modulo x^128 + x^7 + x^2 + x + 1 (reflected).
	v2 ^= v0 ^ v0>>1 ^ v0>>2 ^ v0>>7
	v1 ^= v0<<63 ^ v0<<62 ^ v0<<57
	v3 ^= v1 ^ v1>>1 ^ v1>>2 ^ v1>>7
	v2 ^= v1<<63 ^ v1<<62 ^ v1<<57
	return fieldElement{hi: v3, lo: v2}
}

// gfPow returns x^n by square-and-multiply. n is public (a length), so branching on it is
// harmless.
func gfPow(x fieldElement, n uint64) fieldElement {
	r := fieldElement{hi: 1 << 63} // the element 1: the first bit of the block
	for ; n > 0; n >>= 1 {
		if n&1 == 1 {
			r = gfMul(r, x)
		}
		x = gfMul(x, x)
	}
	return r
}

// ghash accumulates GHASH_H over a stream of bytes, padding the last partial block with
// zeros when finished.
type ghash struct {
	h       fieldElement
	y       fieldElement
	partial [gcmBlockSize]byte
	npart   int
	blocks  uint64 // complete blocks hashed
}

func (g *ghash) write(p []byte) {
	if g.npart > 0 {
		n := copy(g.partial[g.npart:], p)
		g.npart += n
		p = p[n:]
		if g.npart < gcmBlockSize {
			return
		}
		g.block(g.partial[:])
		g.npart = 0
	}
	for len(p) >= gcmBlockSize {
		g.block(p[:gcmBlockSize])
		p = p[gcmBlockSize:]
	}
	if len(p) > 0 {
		g.npart = copy(g.partial[:], p)
	}
}

func (g *ghash) block(b []byte) {
	g.y = gfMul(g.y.xor(loadElement(b)), g.h)
	g.blocks++
}

// sum pads and hashes any partial block and returns the hash and the number of blocks.
func (g *ghash) sum() (fieldElement, uint64) {
	if g.npart > 0 {
		clear(g.partial[g.npart:])
		g.block(g.partial[:])
		g.npart = 0
	}
	return g.y, g.blocks
}

// gcmStream encrypts or decrypts one message with AES-GCM piece by piece.
type gcmStream struct {
	block   cipher.Block
	j0      [gcmBlockSize]byte
	ctr     cipher.Stream
	wrapIn  uint64 // keystream bytes left before the counter's low 32 bits wrap
	counter [gcmBlockSize]byte
	hash    ghash // over the ciphertext only
	n       uint64
}

// newGCMStream prepares GCM with an AES block cipher and a nonce of any non-zero length
// (12 bytes is the normal and recommended one).
func newGCMStream(block cipher.Block, nonce []byte) (*gcmStream, error) {
	if block.BlockSize() != gcmBlockSize {
		return nil, errors.New("cms: GCM needs a 128-bit block cipher")
	}
	if len(nonce) == 0 {
		return nil, errors.New("cms: empty GCM nonce")
	}
	g := &gcmStream{block: block}
	var hb [gcmBlockSize]byte
	block.Encrypt(hb[:], hb[:])
	g.hash.h = loadElement(hb[:])
	if len(nonce) == 12 {
		copy(g.j0[:], nonce)
		g.j0[15] = 1
	} else {
		// J0 = GHASH(IV || 0^s || 0^64 || [len(IV)]_64) (SP 800-38D §7.1 step 2).
		j := ghash{h: g.hash.h}
		j.write(nonce)
		j.sum()
		var lens [gcmBlockSize]byte
		binary.BigEndian.PutUint64(lens[8:], uint64(len(nonce))*8)
		j.write(lens[:])
		y, _ := j.sum()
		y.put(g.j0[:])
	}
	g.counter = g.j0
	inc32(&g.counter)
	g.restartCTR()
	return g, nil
}

func inc32(b *[gcmBlockSize]byte) {
	binary.BigEndian.PutUint32(b[12:], binary.BigEndian.Uint32(b[12:])+1)
}

// restartCTR starts the keystream at g.counter, noting how far it may run before the low
// 32 bits of the counter wrap.
func (g *gcmStream) restartCTR() {
	g.ctr = cipher.NewCTR(g.block, g.counter[:])
	g.wrapIn = (1<<32 - uint64(binary.BigEndian.Uint32(g.counter[12:]))) * gcmBlockSize
}

// xorKeyStream applies GCTR to src.
func (g *gcmStream) xorKeyStream(dst, src []byte) {
	for len(src) > 0 {
		n := len(src)
		if uint64(n) > g.wrapIn {
			n = int(g.wrapIn)
		}
		g.ctr.XORKeyStream(dst[:n], src[:n])
		dst, src = dst[n:], src[n:]
		g.wrapIn -= uint64(n)
		if g.wrapIn == 0 {
			binary.BigEndian.PutUint32(g.counter[12:], 0)
			g.restartCTR()
		}
	}
}

func (g *gcmStream) count(n int) error {
	g.n += uint64(n)
	if g.n > gcmMaxPlaintext {
		return errGCMTooLong
	}
	return nil
}

// encrypt encrypts src into dst (which may be src) and hashes the ciphertext.
func (g *gcmStream) encrypt(dst, src []byte) error {
	if err := g.count(len(src)); err != nil {
		return err
	}
	g.xorKeyStream(dst, src)
	g.hash.write(dst[:len(src)])
	return nil
}

// decrypt hashes the ciphertext src and decrypts it into dst (which may be src).
func (g *gcmStream) decrypt(dst, src []byte) error {
	if err := g.count(len(src)); err != nil {
		return err
	}
	g.hash.write(src)
	g.xorKeyStream(dst, src)
	return nil
}

// tag returns the full 16-byte authentication tag over aad and the ciphertext seen so far.
// Callers truncate it to the ICV length in use.
func (g *gcmStream) tag(aad []byte) []byte {
	yc, c := g.hash.sum()
	s := yc
	if len(aad) > 0 {
		a := ghash{h: g.hash.h}
		a.write(aad)
		xa, _ := a.sum()
		s = s.xor(gfMul(xa, gfPow(g.hash.h, c)))
	}
	s = s.xor(fieldElement{hi: uint64(len(aad)) * 8, lo: g.n * 8})
	s = gfMul(s, g.hash.h)
	t := make([]byte, gcmBlockSize)
	g.block.Encrypt(t, g.j0[:])
	var sb [gcmBlockSize]byte
	s.put(sb[:])
	subtle.XORBytes(t, t, sb[:])
	return t
}
