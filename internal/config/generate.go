package config

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/as2gate/as2gate/as2"
)

// DefaultStationID is the AS2 id of the station a gateway gets when none is configured. It is
// a fixed name rather than the host name: partners enter it in their own configuration, and
// moving the gateway to another host must not change it.
const DefaultStationID = "AS2GATE"

// IdentityKeyBits is the RSA modulus size of generated identities. 3072 bits give 128-bit
// security (NIST SP 800-57 Part 1), in line with AES-128 and SHA-256, where 2048 bits give
// 112 and are scheduled for retirement after 2030 (NIST SP 800-131A); every AS2 product we
// interoperate with reads 3072-bit keys. Generation takes about a second, once per station.
const IdentityKeyBits = 3072

// IdentityValidity is the validity of a generated certificate: two years, short enough that a
// lost key does not stay trusted for long, long enough that partners are not asked to
// install a new certificate often. Expiry warnings come 30 days ahead (notify).
const IdentityValidity = 2 * 365 * 24 * time.Hour

// GenerateIdentity makes a new identity for the AS2 id in dir: an RSA key (IdentityKeyBits,
// unencrypted PKCS#8 PEM, mode 0600) and a self-signed certificate (PEM, valid from an hour
// before now for IdentityValidity, key usage digitalSignature and keyEncipherment, common
// name the AS2 id). The files are dir/<id>.key and dir/<id>.crt, the id made safe as a file
// name. Existing files are never overwritten.
func GenerateIdentity(dir, as2ID string, now time.Time) (certPath, keyPath string, err error) {
	if err := as2.ValidateID(as2ID); err != nil {
		return "", "", fmt.Errorf("config: generating an identity: %w", err)
	}
	certPath, keyPath = identityPaths(dir, as2ID)
	for _, p := range []string{keyPath, certPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("config: %s already exists: not overwritten", p)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("config: creating %s: %w", dir, err)
	}
	key, err := rsa.GenerateKey(rand.Reader, IdentityKeyBits)
	if err != nil {
		return "", "", fmt.Errorf("config: generating an RSA key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", "", fmt.Errorf("config: encoding the key: %w", err)
	}
	if err := writeNew(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	if err := writeCertificate(certPath, key, as2ID, now); err != nil {
		os.Remove(keyPath) // ours, just written: without its certificate it is of no use
		return "", "", err
	}
	return certPath, keyPath, nil
}

func identityPaths(dir, as2ID string) (certPath, keyPath string) {
	base := filepath.Join(dir, safeName(as2ID))
	return base + ".crt", base + ".key"
}

// selfSigned makes the certificate of a generated identity.
func selfSigned(key *rsa.PrivateKey, as2ID string, now time.Time) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("config: making a serial number: %w", err)
	}
	// Subject key identifier by RFC 5280 §4.2.1.2 method 1, which CMS recipients and
	// signers may be named by.
	ski := sha1.Sum(x509.MarshalPKCS1PublicKey(&key.PublicKey))
	tmpl := &x509.Certificate{
		SerialNumber: serial.Add(serial, big.NewInt(1)),
		Subject:      pkix.Name{CommonName: as2ID},
		// An hour of slack for partners whose clocks run behind.
		NotBefore:             now.Add(-time.Hour).UTC(),
		NotAfter:              now.Add(IdentityValidity).UTC(),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		SubjectKeyId:          ski[:],
	}
	return x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
}

func writeCertificate(path string, key *rsa.PrivateKey, as2ID string, now time.Time) error {
	der, err := selfSigned(key, as2ID, now)
	if err != nil {
		return fmt.Errorf("config: making the certificate: %w", err)
	}
	return writeNew(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// writeNew creates path with data, durably and only if it does not exist: the content is
// written to a temporary file, fsynced, then linked into place, so that a crash never leaves
// a half-written key under the real name.
func writeNew(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("config: creating %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(perm)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("config: writing %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("config: %s already exists: not overwritten", path)
		}
		return fmt.Errorf("config: creating %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("config: syncing %s: %w", dir, err)
		}
	}
	return nil
}

// DefaultStation returns the station a gateway without configured stations uses:
// DefaultStationID with the identity in dataDir/keys, generated by GenerateIdentity on the
// first start and loaded on later ones. A key left without its certificate (a crash between
// the two files) gets a new certificate; a certificate without its key is an error, since
// replacing the identity would break every partner's configuration. created reports whether
// anything was generated.
func DefaultStation(dataDir string, now time.Time) (st *Station, created bool, err error) {
	dir := filepath.Join(dataDir, "keys")
	certPath, keyPath := identityPaths(dir, DefaultStationID)
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		if _, _, err := GenerateIdentity(dir, DefaultStationID, now); err != nil {
			return nil, false, err
		}
		created = true
	case errors.Is(certErr, fs.ErrNotExist) && keyErr == nil:
		lk, err := loadKey(keyPath, "", false)
		if err != nil {
			return nil, false, fmt.Errorf("config: default station: %w", err)
		}
		rk, ok := lk.key.(*rsa.PrivateKey)
		if !ok {
			return nil, false, fmt.Errorf("config: default station: %s is not an RSA key", keyPath)
		}
		if err := writeCertificate(certPath, rk, DefaultStationID, now); err != nil {
			return nil, false, err
		}
		created = true
	case certErr == nil && errors.Is(keyErr, fs.ErrNotExist):
		return nil, false, fmt.Errorf("config: default station: %s exists without its key %s: restore the key, or remove the certificate to generate a new identity (partners then need the new certificate)", certPath, keyPath)
	}
	st = &Station{AS2ID: DefaultStationID, Identity: Identity{CertFile: certPath, KeyFile: keyPath}}
	var ps problems
	st.Identity.load(pairKeys{"cert", "key", "key_password_file"}, &ps)
	if len(ps) > 0 {
		return nil, false, fmt.Errorf("config: default station: %s", ps[0].Message)
	}
	return st, created, nil
}

// EnsureStation gives a configuration without stations its default station (DefaultStation
// under DataDir) and assigns it to the partners that name none. It returns the station and
// whether its identity was generated now, or nil when stations are configured.
func (c *Config) EnsureStation(now time.Time) (*Station, bool, error) {
	if len(c.Stations) > 0 {
		return nil, false, nil
	}
	st, created, err := DefaultStation(c.DataDir, now)
	if err != nil {
		return nil, false, err
	}
	c.Stations = []*Station{st}
	for _, p := range c.Partners {
		if p.Station == "" {
			p.Station = st.AS2ID
		}
	}
	return st, created, nil
}

// EnsureAPIToken gives a configuration without api_tokens one: read from KeysDir/api-token,
// or generated there (256 random bits, base64url, mode 0600) on the first start. It returns
// the token and whether it was generated now, or "" when tokens are configured.
func (c *Config) EnsureAPIToken() (token string, created bool, err error) {
	if len(c.APITokens) > 0 {
		return "", false, nil
	}
	path := filepath.Join(c.KeysDir(), "api-token")
	token, err = readSecret(path)
	if errors.Is(err, fs.ErrNotExist) {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", false, fmt.Errorf("config: generating an API token: %w", err)
		}
		token = base64.RawURLEncoding.EncodeToString(b[:])
		if err := os.MkdirAll(c.KeysDir(), 0o700); err != nil {
			return "", false, fmt.Errorf("config: creating %s: %w", c.KeysDir(), err)
		}
		if err := writeNew(path, []byte(token+"\n"), 0o600); err != nil {
			return "", false, err
		}
		created = true
	} else if err != nil {
		return "", false, fmt.Errorf("config: API token: %w", err)
	}
	c.APITokens = []string{token}
	return token, created, nil
}

// safeName makes an AS2 id usable as a file or folder name: letters, digits, '.', '_' and
// '-' are kept, anything else becomes '_'. A name that had to change gets a short hash of the
// original, so that two ids never share a folder ("A B" and "A_B" differ).
func safeName(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			b.WriteByte(c)
		case c == '.' && i > 0:
			b.WriteByte(c)
		default:
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s == id && s != "" {
		return s
	}
	sum := sha256.Sum256([]byte(id))
	return s + "-" + hex.EncodeToString(sum[:4])
}
