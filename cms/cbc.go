package cms

import (
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// CBC content encryption for EnvelopedData: DES-EDE3-CBC (RFC 3370 §5.1) and AES-CBC
// (RFC 3565), both with PKCS#7 padding (RFC 5652 §6.3) and the IV as the algorithm's
// parameters, an OCTET STRING.

// cbcParams returns the DER parameters of a CBC content-encryption algorithm.
func cbcParams(iv []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1OctetString(iv)
	return b.BytesOrPanic()
}

// parseCBCParams reads the IV from a CBC algorithm's parameters.
func parseCBCParams(params []byte, blockSize int) ([]byte, error) {
	s := cryptobyte.String(params)
	var iv []byte
	if !s.ReadASN1Bytes(&iv, cbasn1.OCTET_STRING) || !s.Empty() {
		return nil, errors.New("cms: CBC parameters are not an IV OCTET STRING")
	}
	if len(iv) != blockSize {
		return nil, fmt.Errorf("cms: CBC IV is %d bytes, the block is %d", len(iv), blockSize)
	}
	return iv, nil
}

// cbcSealer encrypts content chunk by chunk and pads the last one.
type cbcSealer struct{ mode cipher.BlockMode }

func (s cbcSealer) seal(buf []byte, final bool) ([]byte, error) {
	if final {
		bs := s.mode.BlockSize()
		pad := bs - len(buf)%bs
		for i := 0; i < pad; i++ {
			buf = append(buf, byte(pad))
		}
	}
	s.mode.CryptBlocks(buf, buf)
	return buf, nil
}

func (cbcSealer) trailer() []byte { return nil }

// cbcCiphertextLen is the length of the padded ciphertext of size bytes: padding always adds
// between 1 and a whole block.
func cbcCiphertextLen(size int64, blockSize int) int64 {
	return (size/int64(blockSize) + 1) * int64(blockSize)
}

// decryptCBC decrypts the ciphertext read from src to w. The last block is held back until
// src ends, so that its padding can be removed.
//
// Every failure that depends on the key or the ciphertext's contents is ErrDecryption, and
// the padding is checked in constant time: a receiver that told a padding error apart from
// other failures, or took longer on one, would be a padding oracle.
func decryptCBC(w io.Writer, src io.Reader, mode cipher.BlockMode) error {
	bs := mode.BlockSize()
	chunk := envChunk
	if p, ok := src.(*primitiveOctets); ok && p.left < envChunk {
		chunk = int(p.left) // the buffer is then larger than the ciphertext: one read
	}
	buf := make([]byte, chunk+bs)
	n := 0 // bytes buffered
	for {
		m, err := io.ReadFull(src, buf[n:])
		n += m
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return err
		}
		// The buffer is full (a whole number of blocks): decrypt all but the last block.
		k := n - bs
		mode.CryptBlocks(buf[:k], buf[:k])
		if _, err := w.Write(buf[:k]); err != nil {
			return fmt.Errorf("cms: writing plaintext: %w", err)
		}
		n = copy(buf, buf[k:n])
	}
	if n == 0 || n%bs != 0 {
		// Visible to anyone from the length alone, so it may say what is wrong.
		return fmt.Errorf("%w: CBC ciphertext ends with a partial block", ErrDecryption)
	}
	mode.CryptBlocks(buf[:n], buf[:n])
	pad, ok := checkPadding(buf[n-bs : n])
	if ok != 1 {
		return ErrDecryption
	}
	if _, err := w.Write(buf[:n-pad]); err != nil {
		return fmt.Errorf("cms: writing plaintext: %w", err)
	}
	return nil
}

// checkPadding checks PKCS#7 padding on the last plaintext block in constant time and
// returns the padding length and 1 if it is valid. It never indexes with the padding byte, so
// a block ending in, say, 0xff cannot run out of range.
func checkPadding(last []byte) (pad int, ok int) {
	bs := len(last)
	p := int(last[bs-1])
	ok = subtle.ConstantTimeLessOrEq(1, p) & subtle.ConstantTimeLessOrEq(p, bs)
	for i := 0; i < bs; i++ {
		inPad := subtle.ConstantTimeLessOrEq(bs-i, p) // i >= bs-p
		same := subtle.ConstantTimeByteEq(last[i], byte(p))
		ok &= subtle.ConstantTimeSelect(inPad, same, 1)
	}
	return p, ok
}
