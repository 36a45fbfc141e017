package config

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/youmark/pkcs8"
	"software.sslmate.com/src/go-pkcs12"
)

// Size bounds of the files the configuration names: far above any real certificate, key or
// secret, low enough that a wrong path (a disk image, a log) fails fast.
const (
	maxCredentialFile = 4 << 20
	maxSecretFile     = 64 << 10
)

// readFile reads a file the configuration names, with an error that says which and why.
func readFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fileError(path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fileError(path, err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("%s is a folder, not a file", path)
	}
	if !st.Mode().IsRegular() {
		// A pipe or device could block the start or never end.
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fileError(path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is larger than %s: is it the right file?", path, FormatSize(limit))
	}
	return b, nil
}

func fileError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("cannot read %s: %w", path, err)
}

// readSecret reads a password or token file. One trailing line end is removed, since the
// file is usually written by an editor or `echo`; anything else is part of the secret.
func readSecret(path string) (string, error) {
	b, err := readFile(path, maxSecretFile)
	if err != nil {
		return "", err
	}
	s := string(b)
	s = strings.TrimSuffix(s, "\n")
	s = strings.TrimSuffix(s, "\r")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// loadCertificates reads one or more certificates: PEM with any number of CERTIFICATE blocks
// (other blocks are skipped), or DER (one certificate, or several concatenated).
func loadCertificates(path string) ([]*x509.Certificate, error) {
	data, err := readFile(path, maxCredentialFile)
	if err != nil {
		return nil, err
	}
	certs, err := parseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}

func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("the file is empty")
	}
	var certs []*x509.Certificate
	var other []string
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			other = append(other, block.Type)
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	switch {
	case len(certs) > 0:
		return certs, nil
	case len(other) > 0:
		return nil, fmt.Errorf("no CERTIFICATE block in the PEM file (found %s)", strings.Join(other, ", "))
	}
	certs, err := x509.ParseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("neither a PEM nor a DER certificate: %w", err)
	}
	if len(certs) == 0 {
		return nil, errors.New("the file holds no certificate")
	}
	return certs, nil
}

// isPKCS12 reports whether path names a PKCS#12 file by its extension.
func isPKCS12(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".p12" || ext == ".pfx"
}

// loadedKey is a private key file's content: the key, and the certificates of a PKCS#12 file.
type loadedKey struct {
	key   crypto.Signer
	cert  *x509.Certificate   // PKCS#12 only
	chain []*x509.Certificate // PKCS#12 only
}

// loadKey reads a private key: PEM (PKCS#1, PKCS#8, encrypted PKCS#8, SEC 1 EC), DER, or
// PKCS#12 (.p12, .pfx). password is used for encrypted PKCS#8 and PKCS#12; hasPassword
// tells an empty password from none, for the error messages.
func loadKey(path string, password string, hasPassword bool) (*loadedKey, error) {
	data, err := readFile(path, maxCredentialFile)
	if err != nil {
		return nil, err
	}
	lk, err := parseKey(data, password, hasPassword, isPKCS12(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return lk, nil
}

func parseKey(data []byte, password string, hasPassword, p12 bool) (*loadedKey, error) {
	if p12 {
		return parsePKCS12(data, password, hasPassword)
	}
	var seen []string
	rest := data
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		var key any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY", "EC PRIVATE KEY":
			if _, ok := block.Headers["DEK-Info"]; ok {
				return nil, errors.New("the key uses legacy OpenSSL PEM encryption, which is insecure and not supported: " +
					"convert it with `openssl pkcs8 -topk8 -v2 aes-256-cbc` to encrypted PKCS#8")
			}
			if block.Type == "RSA PRIVATE KEY" {
				key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
			} else {
				key, err = x509.ParseECPrivateKey(block.Bytes)
			}
		case "ENCRYPTED PRIVATE KEY":
			if !hasPassword {
				return nil, errors.New("the key is encrypted: set key_password_file to the file holding its password")
			}
			key, err = parseEncryptedPKCS8(block.Bytes, password)
		default:
			seen = append(seen, block.Type)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s block: %w", block.Type, err)
		}
		return signerOf(key)
	}
	if len(seen) > 0 {
		return nil, fmt.Errorf("no private key in the PEM file (found %s)", strings.Join(seen, ", "))
	}
	// Not PEM: DER PKCS#8, PKCS#1 or SEC 1, then encrypted PKCS#8, then PKCS#12 whatever the
	// extension.
	if key, err := x509.ParsePKCS8PrivateKey(data); err == nil {
		return signerOf(key)
	}
	if key, err := x509.ParsePKCS1PrivateKey(data); err == nil {
		return signerOf(key)
	}
	if key, err := x509.ParseECPrivateKey(data); err == nil {
		return signerOf(key)
	}
	if hasPassword {
		if key, err := parseEncryptedPKCS8(data, password); err == nil {
			return signerOf(key)
		}
	}
	if lk, err := parsePKCS12(data, password, hasPassword); err == nil {
		return lk, nil
	} else if errors.Is(err, pkcs12.ErrIncorrectPassword) {
		return nil, err
	}
	return nil, errors.New("not a private key: expected PEM (PKCS#1, PKCS#8, encrypted PKCS#8), DER, or PKCS#12 (.p12, .pfx)")
}

// parseEncryptedPKCS8 decrypts a PBES2 EncryptedPrivateKeyInfo (RFC 8018).
func parseEncryptedPKCS8(der []byte, password string) (key any, err error) {
	defer func() {
		// github.com/youmark/pkcs8 hands the ciphertext and IV to crypto/cipher without
		// checking their lengths, which panics on a malformed file.
		if r := recover(); r != nil {
			key, err = nil, errors.New("malformed encrypted PKCS#8 key")
		}
	}()
	key, err = pkcs8.ParsePKCS8PrivateKey(der, []byte(password))
	if err != nil {
		return nil, fmt.Errorf("cannot decrypt the key (is key_password_file right?): %w", err)
	}
	return key, nil
}

func parsePKCS12(data []byte, password string, hasPassword bool) (lk *loadedKey, err error) {
	defer func() {
		// A hostile PKCS#12 file must give an error, whatever the library does with it.
		if r := recover(); r != nil {
			lk, err = nil, errors.New("malformed PKCS#12 file")
		}
	}()
	key, cert, chain, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		if errors.Is(err, pkcs12.ErrIncorrectPassword) {
			if !hasPassword {
				return nil, fmt.Errorf("the PKCS#12 file needs a password: set key_password_file (%w)", err)
			}
			return nil, fmt.Errorf("wrong password in key_password_file (%w)", err)
		}
		return nil, fmt.Errorf("PKCS#12: %w", err)
	}
	lk, err = signerOf(key)
	if err != nil {
		return nil, err
	}
	lk.cert, lk.chain = cert, chain
	return lk, nil
}

func signerOf(key any) (*loadedKey, error) {
	s, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("unsupported private key type %T", key)
	}
	return &loadedKey{key: s}, nil
}

func keyAlgorithm(pub crypto.PublicKey) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

// pairKeys are the key names of a certificate, its key and the key's password.
type pairKeys struct{ cert, key, password string }

// pair is a loaded certificate and key.
type pair struct {
	cert  *x509.Certificate
	chain []*x509.Certificate
	key   crypto.Signer
}

// loadPair loads a certificate and its private key, recording every problem under the key
// names in k. certFile may be empty when keyFile is a PKCS#12 file that carries the
// certificate. It returns nil when a problem was recorded.
func loadPair(k pairKeys, certFile, keyFile, passwordFile string, ps *problems) *pair {
	var password string
	ok := true
	if passwordFile != "" {
		var err error
		if password, err = readSecret(passwordFile); err != nil {
			ps.addErr(k.password, err)
			ok = false
		}
	}
	var lk *loadedKey
	if keyFile == "" {
		ps.add(k.key, "required: the private key file (PEM, DER, or PKCS#12 .p12/.pfx)")
		ok = false
	} else if passwordFile == "" || ok {
		var err error
		if lk, err = loadKey(keyFile, password, passwordFile != ""); err != nil {
			ps.addErr(k.key, err)
			ok = false
		}
	}
	p := &pair{}
	switch {
	case certFile != "":
		certs, err := loadCertificates(certFile)
		if err != nil {
			ps.addErr(k.cert, err)
			ok = false
			break
		}
		p.cert, p.chain = certs[0], certs[1:]
	case lk != nil && lk.cert != nil:
		p.cert, p.chain = lk.cert, lk.chain
	case keyFile != "" && isPKCS12(keyFile) && lk == nil:
		// The PKCS#12 file could not be read; its problem is recorded.
	default:
		ps.add(k.cert, "required: the certificate file (PEM or DER), unless %s is a PKCS#12 file that holds it", k.key)
		ok = false
	}
	if !ok {
		return nil
	}
	p.key = lk.key
	if !publicKeysEqual(p.key.Public(), p.cert.PublicKey) {
		ps.add(k.key, "%s does not belong to the certificate %q of %s (the public keys differ)",
			keyFile, p.cert.Subject.String(), certOrigin(certFile, keyFile))
		return nil
	}
	return p
}

func certOrigin(certFile, keyFile string) string {
	if certFile != "" {
		return certFile
	}
	return keyFile
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ea, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ea.Equal(b)
}

// tlsCertificate makes a tls.Certificate of a loaded pair.
func (p *pair) tlsCertificate() *tls.Certificate {
	chain := [][]byte{p.cert.Raw}
	for _, c := range p.chain {
		chain = append(chain, c.Raw)
	}
	return &tls.Certificate{Certificate: chain, PrivateKey: p.key, Leaf: p.cert}
}

// loadPool reads a CA file into a new pool.
func loadPool(path string) (*x509.CertPool, error) {
	certs, err := loadCertificates(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}
