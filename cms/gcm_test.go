package cms

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	mrand "math/rand/v2"
	"testing"
)

// sealInPieces runs gcmStream over plaintext cut into random pieces and returns
// ciphertext || tag, the layout of cipher.AEAD.Seal.
func sealInPieces(t *testing.T, rng *mrand.Rand, key, nonce, aad, plaintext []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	g, err := newGCMStream(block, nonce)
	if err != nil {
		t.Fatal(err)
	}
	out := bytes.Clone(plaintext)
	for rest := out; len(rest) > 0; {
		n := 1 + rng.IntN(len(rest))
		if err := g.encrypt(rest[:n], rest[:n]); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	return append(out, g.tag(aad)...)
}

func TestGCMStreamMatchesStdlib(t *testing.T) {
	t.Parallel()
	rng := mrand.New(mrand.NewPCG(1, 2))
	for i := 0; i < 400; i++ {
		key := make([]byte, []int{16, 24, 32}[i%3])
		nonceLen := 12
		if i%5 == 4 {
			nonceLen = 1 + rng.IntN(40) // SP 800-38D allows any length; J0 then comes from GHASH
		}
		nonce := make([]byte, nonceLen)
		aad := make([]byte, []int{0, 0, 1, 16, 17, 100}[i%6])
		size := rng.IntN(600)
		if i%50 == 0 {
			size = 70000 + rng.IntN(5000)
		}
		plaintext := make([]byte, size)
		for _, b := range [][]byte{key, nonce, aad, plaintext} {
			fill(rng, b)
		}
		block, _ := aes.NewCipher(key)
		aead, err := cipher.NewGCMWithNonceSize(block, nonceLen)
		if err != nil {
			t.Fatal(err)
		}
		want := aead.Seal(nil, nonce, plaintext, aad)
		got := sealInPieces(t, rng, key, nonce, aad, plaintext)
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d (key %d, nonce %d, aad %d, size %d): streamed GCM differs from crypto/cipher",
				i, len(key), nonceLen, len(aad), size)
		}

		// Decryption in pieces gives the plaintext back and the same tag.
		g, _ := newGCMStream(block, nonce)
		ct := bytes.Clone(want[:size])
		for rest := ct; len(rest) > 0; {
			n := 1 + rng.IntN(len(rest))
			if err := g.decrypt(rest[:n], rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		if !bytes.Equal(ct, plaintext) {
			t.Fatalf("case %d: streamed decryption differs", i)
		}
		if tag := g.tag(aad); !bytes.Equal(tag, want[size:]) {
			t.Fatalf("case %d: decryption tag %x, want %x", i, tag, want[size:])
		}
	}
}

// TestGCMKnownAnswer checks test case 4 of the original GCM specification (McGrew and Viega),
// also used by NIST's validation suite: AES-128, 96-bit IV, AAD and a partial last block.
func TestGCMKnownAnswer(t *testing.T) {
	t.Parallel()
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	key := h("feffe9928665731c6d6a8f9467308308")
	nonce := h("cafebabefacedbaddecaf888")
	pt := h("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39")
	aad := h("feedfacedeadbeeffeedfacedeadbeefabaddad2")
	want := h("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091" +
		"5bc94fbc3221a5db94fae95ae7121a47")
	got := sealInPieces(t, mrand.New(mrand.NewPCG(3, 4)), key, nonce, aad, pt)
	if !bytes.Equal(got, want) {
		t.Fatalf("got  %x\nwant %x", got, want)
	}
}

// TestGCMCounterWrap starts the keystream just below the point where the low 32 bits of the
// counter wrap (reachable with nonces other than 12 bytes): GCM's inc32 must not carry into
// byte 11 as cipher.NewCTR would.
func TestGCMCounterWrap(t *testing.T) {
	t.Parallel()
	rng := mrand.New(mrand.NewPCG(5, 6))
	key := make([]byte, 16)
	fill(rng, key)
	block, _ := aes.NewCipher(key)
	g, err := newGCMStream(block, make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	fill(rng, g.counter[:])
	binary.BigEndian.PutUint32(g.counter[12:], 0xfffffffd)
	start := g.counter
	g.restartCTR()

	// Reference GCTR, block by block (SP 800-38D §6.5).
	const blocks = 7
	want := make([]byte, blocks*16)
	cb := start
	for i := 0; i < blocks; i++ {
		block.Encrypt(want[i*16:], cb[:])
		inc32(&cb)
	}
	got := make([]byte, blocks*16)
	for rest := got; len(rest) > 0; {
		n := 1 + rng.IntN(len(rest))
		g.xorKeyStream(rest[:n], rest[:n])
		rest = rest[n:]
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("keystream across the counter wrap:\ngot  %x\nwant %x", got, want)
	}
}

func TestGFMulProperties(t *testing.T) {
	t.Parallel()
	rng := mrand.New(mrand.NewPCG(7, 8))
	one := fieldElement{hi: 1 << 63}
	for i := 0; i < 200; i++ {
		a := fieldElement{rng.Uint64(), rng.Uint64()}
		b := fieldElement{rng.Uint64(), rng.Uint64()}
		c := fieldElement{rng.Uint64(), rng.Uint64()}
		if gfMul(a, one) != a {
			t.Fatal("a·1 != a")
		}
		if gfMul(a, b) != gfMul(b, a) {
			t.Fatal("multiplication does not commute")
		}
		if gfMul(a, b.xor(c)) != gfMul(a, b).xor(gfMul(a, c)) {
			t.Fatal("multiplication does not distribute")
		}
		n := uint64(rng.IntN(50))
		want := one
		for j := uint64(0); j < n; j++ {
			want = gfMul(want, a)
		}
		if gfPow(a, n) != want {
			t.Fatalf("a^%d differs from repeated multiplication", n)
		}
	}
}

func fill(rng *mrand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}
