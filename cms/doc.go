// Package cms implements the parts of the Cryptographic Message Syntax that AS2 and S/MIME
// need, on golang.org/x/crypto/cryptobyte and the standard library's crypto packages:
//
//   - SignedData (RFC 5652 §5), detached and encapsulated, with RSA PKCS#1 v1.5 and
//     RSASSA-PSS signatures (RFC 4056) over SHA-1 and SHA-2 digests;
//   - EnvelopedData (RFC 5652 §6) with 3DES-CBC and AES-CBC (RFC 3565) content encryption and
//     RSA PKCS#1 v1.5 or RSA-OAEP (RFC 3560) key transport;
//   - AuthEnvelopedData (RFC 5083) with AES-GCM (RFC 5084);
//   - CompressedData (RFC 3274) with zlib.
//
// Input is accepted in BER (indefinite lengths, constructed strings), as OpenSSL -stream and
// several AS2 products produce it; output is DER. Every parser is bounded in size and nesting
// depth so that hostile input fails fast, and no input makes the package panic.
//
// Large contents are streamed: a detached signature hashes its content as it is read, and
// encryption, decryption, compression and decompression read and write the content through
// io.Reader and io.Writer, so memory does not grow with the payload.
//
// The package knows nothing of AS2, MIME or HTTP. Keys are crypto.Signer and crypto.Decrypter,
// so that they may live in a hardware module.
package cms
