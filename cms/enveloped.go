package cms

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// EnvelopedData (RFC 5652 §6) and AuthEnvelopedData (RFC 5083, with AES-GCM from RFC 5084),
// both streamed: Encrypt and Decrypt hold one chunk of content at a time whatever its size.
//
// Encrypt writes one KeyTransRecipientInfo per recipient certificate (version 0,
// issuerAndSerialNumber), so the structure version is 0 (RFC 5652 §6.1, RFC 5083 §2.1).
// Decrypt also reads subjectKeyIdentifier recipients and skips originatorInfo and
// unprotected attributes.

// Cipher is a content-encryption algorithm.
type Cipher int

// The content-encryption algorithms. CBC ciphers go in EnvelopedData, GCM ciphers in
// AuthEnvelopedData.
const (
	DES3CBC Cipher = iota + 1
	AES128CBC
	AES192CBC
	AES256CBC
	AES128GCM
	AES256GCM
)

type cipherSpec struct {
	name   string
	oid    asn1.ObjectIdentifier
	keyLen int
	gcm    bool
}

var cipherSpecs = map[Cipher]cipherSpec{
	DES3CBC:   {"3des", oidDESEDE3CBC, 24, false},
	AES128CBC: {"aes128-cbc", oidAES128CBC, 16, false},
	AES192CBC: {"aes192-cbc", oidAES192CBC, 24, false},
	AES256CBC: {"aes256-cbc", oidAES256CBC, 32, false},
	AES128GCM: {"aes128-gcm", oidAES128GCM, 16, true},
	AES256GCM: {"aes256-gcm", oidAES256GCM, 32, true},
}

// String returns the configuration spelling of c: "3des", "aes128-cbc", "aes192-cbc",
// "aes256-cbc", "aes128-gcm" or "aes256-gcm".
func (c Cipher) String() string {
	if s, ok := cipherSpecs[c]; ok {
		return s.name
	}
	return fmt.Sprintf("Cipher(%d)", int(c))
}

// ParseCipher parses the spellings Cipher.String produces, in any case.
func ParseCipher(s string) (Cipher, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for c, spec := range cipherSpecs {
		if spec.name == s {
			return c, nil
		}
	}
	return 0, fmt.Errorf("cms: unknown cipher %q", s)
}

// AEAD reports whether c is authenticated encryption, carried in AuthEnvelopedData.
func (c Cipher) AEAD() bool { return cipherSpecs[c].gcm }

func cipherForOID(oid asn1.ObjectIdentifier) (Cipher, bool) {
	for c, spec := range cipherSpecs {
		if spec.oid.Equal(oid) {
			return c, true
		}
	}
	return 0, false
}

func (c Cipher) newBlock(key []byte) (cipher.Block, error) {
	if c == DES3CBC {
		return des.NewTripleDESCipher(key)
	}
	return aes.NewCipher(key)
}

// EncryptOptions adjust encryption; nil means AES256CBC with PKCS#1 v1.5.
type EncryptOptions struct {
	Cipher       Cipher       // zero means AES256CBC
	KeyTransport KeyTransport // the zero value is RSA PKCS#1 v1.5
	Rand         io.Reader    // source of keys and IVs; nil means crypto/rand
}

// Recipient is a key that may decrypt: a station's certificate and private key.
type Recipient struct {
	Certificate *x509.Certificate
	Key         crypto.Decrypter
}

// DecryptOptions adjust decryption; nil means defaults.
type DecryptOptions struct {
	MaxSize int64 // bound on the total input read; 0 means no limit
}

// DecryptInfo reports what a message used, so that the caller can enforce an agreement.
type DecryptInfo struct {
	Type         ContentType  // TypeEnvelopedData or TypeAuthEnvelopedData
	Cipher       Cipher       // content encryption
	KeyTransport KeyTransport // in canonical form (see KeyTransport)
	Recipient    *Recipient   // the element of the recipients argument that decrypted
}

// ErrDecryption is the one error for a wrong key, bad PKCS#1 or OAEP padding, bad CBC padding
// and a bad GCM tag: telling them apart would give a sender a padding oracle.
var ErrDecryption = errors.New("cms: decryption failed")

// Encrypt reads content and writes to w a ContentInfo holding EnvelopedData (CBC ciphers) or
// AuthEnvelopedData (GCM ciphers) for the recipients (RSA certificates).
//
// size is the content length when known: the output is then DER with exact lengths, written
// as it is produced, and Encrypt fails if content is longer or shorter. With size < 0 the
// output is BER with indefinite lengths and the encrypted content in definite-length
// OCTET STRING fragments. Either way memory use does not depend on the content's size.
func Encrypt(w io.Writer, content io.Reader, size int64, recipients []*x509.Certificate, opts *EncryptOptions) error {
	var o EncryptOptions
	if opts != nil {
		o = *opts
	}
	if o.Cipher == 0 {
		o.Cipher = AES256CBC
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	spec, ok := cipherSpecs[o.Cipher]
	if !ok {
		return fmt.Errorf("cms: unknown cipher %d", int(o.Cipher))
	}
	if len(recipients) == 0 {
		return errors.New("cms: no recipient certificates to encrypt for")
	}

	cek := make([]byte, spec.keyLen)
	if _, err := io.ReadFull(o.Rand, cek); err != nil {
		return fmt.Errorf("cms: generating the content-encryption key: %w", err)
	}
	if o.Cipher == DES3CBC {
		setDESParity(cek)
	}
	block, err := o.Cipher.newBlock(cek)
	if err != nil {
		return err
	}

	var (
		algorithm []byte
		sealer    envSealer
		ctLen     int64 // ciphertext length when size is known
		outerOID  = oidEnvelopedData
	)
	if spec.gcm {
		outerOID = oidAuthEnvelopedData
		if size > gcmMaxPlaintext {
			return errGCMTooLong
		}
		nonce := make([]byte, gcmNonceLen)
		if _, err := io.ReadFull(o.Rand, nonce); err != nil {
			return fmt.Errorf("cms: generating the GCM nonce: %w", err)
		}
		g, err := newGCMStream(block, nonce)
		if err != nil {
			return err
		}
		algorithm = envAlgorithm(spec.oid, gcmParams(nonce, gcmTagLen))
		sealer = gcmSealer{g}
		ctLen = size
	} else {
		iv := make([]byte, block.BlockSize())
		if _, err := io.ReadFull(o.Rand, iv); err != nil {
			return fmt.Errorf("cms: generating the IV: %w", err)
		}
		algorithm = envAlgorithm(spec.oid, cbcParams(iv))
		sealer = cbcSealer{cipher.NewCBCEncrypter(block, iv)}
		ctLen = cbcCiphertextLen(size, block.BlockSize())
	}

	ris, err := recipientInfos(o.Rand, recipients, o.KeyTransport, cek)
	if err != nil {
		return err
	}

	// Everything but the encrypted content (and, for GCM, the tag that follows it) is known
	// now, so the DER lengths can be written before the content is read.
	version := []byte{tagInteger, 1, 0}
	typeOID := oidTLV(outerOID)
	dataOID := oidTLV(oidData)
	var macLen int64
	if spec.gcm {
		macLen = 2 + gcmTagLen
	}
	var prefix, suffix []byte
	if size >= 0 {
		eci := int64(len(dataOID)+len(algorithm)) + headerLen(ctLen) + ctLen
		ed := int64(len(version)+len(ris)) + headerLen(eci) + eci + macLen
		explicit := headerLen(ed) + ed
		ci := int64(len(typeOID)) + headerLen(explicit) + explicit
		prefix = appendHeader(prefix, tagSequence, ci)
		prefix = append(prefix, typeOID...)
		prefix = appendHeader(prefix, classContext|bitCompound|0, explicit)
		prefix = appendHeader(prefix, tagSequence, ed)
		prefix = append(prefix, version...)
		prefix = append(prefix, ris...)
		prefix = appendHeader(prefix, tagSequence, eci)
		prefix = append(prefix, dataOID...)
		prefix = append(prefix, algorithm...)
		prefix = appendHeader(prefix, classContext|0, ctLen)
	} else {
		indef := func(b []byte, tag byte) []byte { return append(b, tag, 0x80) }
		prefix = indef(prefix, tagSequence)
		prefix = append(prefix, typeOID...)
		prefix = indef(prefix, classContext|bitCompound|0)
		prefix = indef(prefix, tagSequence)
		prefix = append(prefix, version...)
		prefix = append(prefix, ris...)
		prefix = indef(prefix, tagSequence)
		prefix = append(prefix, dataOID...)
		prefix = append(prefix, algorithm...)
		prefix = indef(prefix, classContext|bitCompound|0)
	}

	bw := bufio.NewWriterSize(w, 16<<10)
	if _, err := bw.Write(prefix); err != nil {
		return err
	}
	var sink io.Writer = bw
	if size < 0 {
		sink = fragmentWriter{bw}
	}
	if err := sealStream(sink, content, size, sealer, block.BlockSize()); err != nil {
		return err
	}
	eoc := []byte{0, 0}
	if size < 0 {
		suffix = append(suffix, eoc...) // encryptedContent
		suffix = append(suffix, eoc...) // EncryptedContentInfo
	}
	if mac := sealer.trailer(); mac != nil {
		suffix = appendHeader(suffix, tagOctetString, int64(len(mac)))
		suffix = append(suffix, mac...)
	}
	if size < 0 {
		suffix = append(suffix, eoc...) // EnvelopedData or AuthEnvelopedData
		suffix = append(suffix, eoc...) // [0] EXPLICIT
		suffix = append(suffix, eoc...) // ContentInfo
	}
	if _, err := bw.Write(suffix); err != nil {
		return err
	}
	return bw.Flush()
}

// recipientInfos builds the DER RecipientInfos SET for the certificates.
func recipientInfos(random io.Reader, certs []*x509.Certificate, kt KeyTransport, cek []byte) ([]byte, error) {
	alg, err := kt.algorithmIdentifier()
	if err != nil {
		return nil, err
	}
	var infos [][]byte
	for _, cert := range certs {
		if cert == nil {
			return nil, errors.New("cms: nil recipient certificate")
		}
		pub, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("cms: recipient certificate %q has a %T key; only RSA key transport is supported",
				cert.Subject, cert.PublicKey)
		}
		ek, err := kt.encryptKey(random, pub, cek)
		if err != nil {
			return nil, fmt.Errorf("cms: encrypting the key for %q: %w", cert.Subject, err)
		}
		var b cryptobyte.Builder
		marshalKeyTransRecipientInfo(&b, cert, alg, ek)
		ri, err := b.Bytes()
		if err != nil {
			return nil, fmt.Errorf("cms: encoding the recipient info for %q: %w", cert.Subject, err)
		}
		infos = append(infos, ri)
	}
	// DER orders the elements of a SET OF by their encodings.
	slices.SortFunc(infos, bytes.Compare)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
		for _, ri := range infos {
			b.AddBytes(ri)
		}
	})
	return b.Bytes()
}

// envSealer encrypts content one chunk at a time.
type envSealer interface {
	// seal encrypts buf in place. Unless final, len(buf) is a multiple of the block size;
	// the final call may pad into buf's spare capacity (one block) and returns the
	// ciphertext.
	seal(buf []byte, final bool) ([]byte, error)
	// trailer is what follows the encrypted content: the GCM tag, or nil.
	trailer() []byte
}

// sealStream encrypts content through s into out, checking the announced size if any.
func sealStream(out io.Writer, content io.Reader, size int64, s envSealer, blockSize int) error {
	src := content
	if size >= 0 {
		src = io.LimitReader(content, size)
	}
	chunk := envChunk
	if size >= 0 && size < envChunk {
		// Small content in one chunk, longer than the content so that the first read
		// is the last: a whole envChunk would be 32 KiB allocated for a 1 KB message.
		chunk = int(size/int64(blockSize)+1) * blockSize
	}
	buf := make([]byte, chunk, chunk+blockSize)
	var total int64
	for {
		n, err := io.ReadFull(src, buf)
		total += int64(n)
		final := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !final {
			return fmt.Errorf("cms: reading the content: %w", err)
		}
		ct, serr := s.seal(buf[:n], final)
		if serr != nil {
			return serr
		}
		if _, err := out.Write(ct); err != nil {
			return err
		}
		if final {
			break
		}
	}
	if size >= 0 {
		if total < size {
			return fmt.Errorf("cms: the content ended after %d bytes; %d were announced", total, size)
		}
		var one [1]byte
		if n, _ := io.ReadFull(content, one[:]); n > 0 {
			return fmt.Errorf("cms: the content is longer than the %d bytes announced", size)
		}
	}
	return nil
}

// envChunk is how much content is encrypted or decrypted at a time. It is a multiple of
// every block size, so that only the last chunk needs padding.
const envChunk = 32 << 10

// fragmentWriter writes each non-empty Write as one primitive OCTET STRING fragment of a
// constructed, indefinite-length string.
type fragmentWriter struct{ w io.Writer }

func (f fragmentWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var hdr [10]byte
	if _, err := f.w.Write(appendHeader(hdr[:0], tagOctetString, int64(len(p)))); err != nil {
		return 0, err
	}
	return f.w.Write(p)
}

// envAlgorithm encodes an AlgorithmIdentifier with DER parameters.
func envAlgorithm(oid asn1.ObjectIdentifier, params []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		b.AddBytes(params)
	})
	return b.BytesOrPanic()
}

func oidTLV(oid asn1.ObjectIdentifier) []byte {
	var b cryptobyte.Builder
	b.AddASN1ObjectIdentifier(oid)
	return b.BytesOrPanic()
}

// setDESParity gives every byte of a DES key odd parity, as DES keys are defined and as
// OpenSSL and BouncyCastle generate them.
func setDESParity(key []byte) {
	for i, b := range key {
		b &^= 1
		if bits.OnesCount8(b)%2 == 0 {
			b |= 1
		}
		key[i] = b
	}
}
