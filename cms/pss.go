package cms

import (
	"crypto"
	"crypto/rsa"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// RSASSA-PSS parameters (RFC 4055 §3.1, profiled for CMS by RFC 4056):
//
//	RSASSA-PSS-params ::= SEQUENCE {
//	    hashAlgorithm     [0] HashAlgorithm    DEFAULT sha1,
//	    maskGenAlgorithm  [1] MaskGenAlgorithm DEFAULT mgf1SHA1,
//	    saltLength        [2] INTEGER          DEFAULT 20,
//	    trailerField      [3] TrailerField     DEFAULT trailerFieldBC }

// pssParams are the parts of RSASSA-PSS-params that verification needs. The mask generation
// function is always MGF1 over hash: crypto/rsa implements no other combination.
type pssParams struct {
	hash       crypto.Hash
	saltLength int
}

// maxPSSSalt bounds the salt length read from a message. A salt cannot exceed the modulus
// size, and the largest RSA keys in use are 16384 bits.
const maxPSSSalt = 16384 / 8

// addPSSAlgorithm appends the AlgorithmIdentifier of RSASSA-PSS with hash for the hash
// algorithm and MGF1, and a salt as long as the hash, the parameters RFC 4056 §3 recommends
// and OpenSSL and BouncyCastle both produce. Fields equal to their DEFAULT are omitted as DER
// requires, so SHA-1 gives an empty parameter SEQUENCE.
func addPSSAlgorithm(b *cryptobyte.Builder, hash crypto.Hash) error {
	oid, err := oidForHash(hash)
	if err != nil {
		return err
	}
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidRSASSAPSS)
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			if hash == crypto.SHA1 {
				return
			}
			// Hash identifiers inside the parameters carry NULL, as OpenSSL and crypto/x509
			// write them; readers accept both forms (RFC 4055 §2.1).
			hashAlg := func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oid)
					b.AddASN1NULL()
				})
			}
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), hashAlg)
			b.AddASN1(cbasn1.Tag(1).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidMGF1)
					hashAlg(b)
				})
			})
			b.AddASN1(cbasn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
				b.AddASN1Int64(int64(hash.Size()))
			})
		})
	})
	return nil
}

// parsePSSParams reads the parameters of an RSASSA-PSS AlgorithmIdentifier; params is the
// whole parameter element, or empty when the parameters are absent. Absent fields take their
// RFC 4055 defaults: SHA-1, MGF1 with SHA-1, a 20-byte salt.
func parsePSSParams(params cryptobyte.String) (pssParams, error) {
	p := pssParams{hash: crypto.SHA1, saltLength: 20}
	if len(params) == 0 {
		return p, nil
	}
	var seq cryptobyte.String
	if !params.ReadASN1(&seq, cbasn1.SEQUENCE) || !params.Empty() {
		return p, &SyntaxError{0, "RSASSA-PSS parameters are not a SEQUENCE"}
	}
	var field cryptobyte.String
	var present bool
	if !seq.ReadOptionalASN1(&field, &present, cbasn1.Tag(0).Constructed().ContextSpecific()) {
		return p, &SyntaxError{0, "malformed RSASSA-PSS hashAlgorithm"}
	}
	if present {
		h, err := readDigestAlgorithm(&field)
		if err != nil {
			return p, err
		}
		if !field.Empty() {
			return p, &SyntaxError{0, "trailing data in RSASSA-PSS hashAlgorithm"}
		}
		p.hash = h
	}
	mgfHash := crypto.SHA1
	if !seq.ReadOptionalASN1(&field, &present, cbasn1.Tag(1).Constructed().ContextSpecific()) {
		return p, &SyntaxError{0, "malformed RSASSA-PSS maskGenAlgorithm"}
	}
	if present {
		oid, mgfParams, err := readAlgorithmIdentifier(&field)
		if err != nil {
			return p, err
		}
		if !field.Empty() {
			return p, &SyntaxError{0, "trailing data in RSASSA-PSS maskGenAlgorithm"}
		}
		if !oid.Equal(oidMGF1) {
			return p, &UnsupportedAlgorithmError{What: "mask generation", OID: oid}
		}
		h, err := readDigestAlgorithm(&mgfParams)
		if err != nil {
			return p, err
		}
		mgfHash = h
	}
	if !seq.ReadOptionalASN1(&field, &present, cbasn1.Tag(2).Constructed().ContextSpecific()) {
		return p, &SyntaxError{0, "malformed RSASSA-PSS saltLength"}
	}
	if present {
		var salt int64
		if !field.ReadASN1Integer(&salt) || !field.Empty() {
			return p, &SyntaxError{0, "malformed RSASSA-PSS saltLength"}
		}
		if salt < 0 || salt > maxPSSSalt {
			return p, &SyntaxError{0, fmt.Sprintf("RSASSA-PSS salt length %d out of range", salt)}
		}
		p.saltLength = int(salt)
	}
	if !seq.ReadOptionalASN1(&field, &present, cbasn1.Tag(3).Constructed().ContextSpecific()) {
		return p, &SyntaxError{0, "malformed RSASSA-PSS trailerField"}
	}
	if present {
		var trailer int64
		if !field.ReadASN1Integer(&trailer) || !field.Empty() || trailer != 1 {
			return p, &UnsupportedAlgorithmError{What: "signature", Name: "RSASSA-PSS with a trailer field other than 0xBC"}
		}
	}
	if !seq.Empty() {
		return p, &SyntaxError{0, "trailing data in RSASSA-PSS parameters"}
	}
	if mgfHash != p.hash {
		// crypto/rsa runs MGF1 over the message hash; no product we know sends otherwise.
		return p, &UnsupportedAlgorithmError{What: "signature",
			Name: fmt.Sprintf("RSASSA-PSS with %s and MGF1 over %s", p.hash, mgfHash)}
	}
	return p, nil
}

// options returns the crypto/rsa options that check a signature made with p.
func (p pssParams) options() *rsa.PSSOptions {
	// A salt length of zero is rsa.PSSSaltLengthAuto to crypto/rsa, which accepts a salt of
	// any length, an empty one included; it cannot ask for exactly zero.
	return &rsa.PSSOptions{SaltLength: p.saltLength, Hash: p.hash}
}
