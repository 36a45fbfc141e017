package config

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"software.sslmate.com/src/go-pkcs12"
)

// Kinds of Entry: the list of the file the entry is an item of.
const (
	EntryPartner = "partner" // partners
	EntryStation = "station" // stations
	EntryProfile = "profile" // profiles
)

// Entry is a partners, stations or profiles item kept outside the file (in the database),
// as the YAML the file would hold.
type Entry struct {
	Kind string // EntryPartner, EntryStation or EntryProfile
	// Name is the partner's or station's as2_id, or the profile's name. The document may
	// leave the as2_id (name) out; when it sets one, it must be Name.
	Name     string
	Document []byte
	// Dir is the folder relative file names in Document are resolved against.
	Dir string
}

// EntryKey returns the key path an entry's problems are reported under:
// "partners[ACME]", "stations[GATEWAY]", "profiles[invoices]".
func EntryKey(kind, name string) string {
	return kindList(kind) + "[" + name + "]"
}

func kindList(kind string) string {
	switch kind {
	case EntryPartner:
		return "partners"
	case EntryStation:
		return "stations"
	case EntryProfile:
		return "profiles"
	}
	return kind
}

// WithEntries returns the configuration c (validated) with the entries added to its
// stations, partners and profiles, validated by the same checks as the file, as a whole:
// a partner entry may name a station of the file and the other way round, and an entry
// whose AS2 id or name is taken is refused as a duplicate item of the file would be.
// Problems of an entry name it by key ("partners[ACME].url"). c itself is not changed, so
// it may be in use while WithEntries runs.
func (c *Config) WithEntries(entries []Entry) (*Config, error) {
	n := c.clone()
	var ps problems
	renames := map[string]string{}
	for _, e := range entries {
		key := EntryKey(e.Kind, e.Name)
		// An entry names only the files kept with it, by their plain names: a path would let
		// whoever may change entries have the gateway read any file of its host (and send it
		// to a partner URL of their choosing as a password).
		abs := func(p string) string {
			if p == "" {
				return p
			}
			if p != filepath.Base(p) || p == "." || p == ".." || strings.Contains(p, `\`) {
				ps.add(key, "%q: an entry kept in the database names only files uploaded with it, by their plain file name, not a path on the gateway's host", p)
				return filepath.Join(e.Dir, filepath.Base(p))
			}
			return filepath.Join(e.Dir, p)
		}
		switch e.Kind {
		case EntryStation:
			var rs rawStation
			if !decodeEntry(e.Document, &rs, key, &ps) {
				continue
			}
			rs.AS2ID = entryName(rs.AS2ID, e.Name, key+".as2_id", &ps)
			renames[keyf("stations[%d]", len(n.Stations))] = key
			n.Stations = append(n.Stations, stationOf(&rs, abs))
		case EntryPartner:
			var rp rawPartner
			if !decodeEntry(e.Document, &rp, key, &ps) {
				continue
			}
			rp.AS2ID = entryName(rp.AS2ID, e.Name, key+".as2_id", &ps)
			renames[keyf("partners[%d]", len(n.Partners))] = key
			n.Partners = append(n.Partners, n.partnerOf(&rp, key, abs, &ps))
		case EntryProfile:
			var rp rawProfile
			if !decodeEntry(e.Document, &rp, key, &ps) {
				continue
			}
			rp.Name = entryName(rp.Name, e.Name, key+".name", &ps)
			renames[keyf("profiles[%d]", len(n.Profiles))] = key
			n.Profiles = append(n.Profiles, &Profile{Name: rp.Name, Header: headerOf(rp.Headers)})
		default:
			ps.add(key, "unknown kind %q: one of %s, %s, %s", e.Kind, EntryPartner, EntryStation, EntryProfile)
		}
	}
	n.validate(&ps)
	if len(ps) == 0 {
		return n, nil
	}
	for i := range ps {
		ps[i].Key = renameKey(ps[i].Key, renames)
		ps[i].Line = 0
	}
	return nil, &ValidationError{Problems: ps}
}

// entryName checks the name an entry's document gives itself against the entry's name.
func entryName(inDoc, name, key string, ps *problems) string {
	switch inDoc {
	case "":
		return name
	case name:
		return inDoc
	}
	ps.add(key, "%q differs from the entry's name %q", inDoc, name)
	return name
}

// renameKey replaces the index of an entry in a key path by its name.
func renameKey(key string, renames map[string]string) string {
	for from, to := range renames {
		if rest, ok := strings.CutPrefix(key, from); ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
			return to + rest
		}
	}
	return key
}

// decodeEntry decodes one list item as the file's loader does: unknown keys and values of
// the wrong type are problems under key. It reports whether the item could be decoded.
func decodeEntry(doc []byte, out any, key string, ps *problems) bool {
	var root yaml.Node
	if err := yaml.Unmarshal(doc, &root); err != nil {
		ps.add(key, "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return false
	}
	if len(root.Content) == 0 {
		ps.add(key, "empty: the entry needs its keys, as an item of the file's list")
		return false
	}
	w := &walker{lines: map[string]int{}, walked: map[walkedKey]bool{}}
	ok := w.walk(root.Content[0], reflect.TypeOf(out).Elem(), key, 0)
	*ps = append(*ps, w.problems...)
	if !ok {
		return false
	}
	clean, err := yaml.Marshal(root.Content[0])
	if err == nil {
		dec := yaml.NewDecoder(bytes.NewReader(clean))
		dec.KnownFields(true)
		err = dec.Decode(out)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		ps.add(key, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return false
	}
	// What the walker reported is out of the tree: the rest is checked as usual, so that
	// every problem is reported at once.
	return true
}

// clone copies what validate writes to, so that validating the copy does not touch a
// configuration in use.
func (c *Config) clone() *Config {
	n := *c
	n.Stations = make([]*Station, len(c.Stations))
	for i, s := range c.Stations {
		cp := *s
		cp.Previous = slices.Clone(s.Previous)
		n.Stations[i] = &cp
	}
	n.Partners = make([]*Partner, len(c.Partners))
	for i, p := range c.Partners {
		cp := *p
		if p.Auth.Basic != nil {
			b := *p.Auth.Basic
			cp.Auth.Basic = &b
		}
		n.Partners[i] = &cp
	}
	n.Profiles = make([]*Profile, len(c.Profiles))
	for i, p := range c.Profiles {
		cp := *p
		n.Profiles[i] = &cp
	}
	for _, l := range []**ListenerTLS{&n.TLS.AS2, &n.TLS.Admin} {
		if *l != nil {
			cp := **l
			*l = &cp
		}
	}
	if e := c.Notify.Email; e != nil {
		cp := *e
		n.Notify.Email = &cp
	}
	if w := c.Notify.Webhook; w != nil {
		cp := *w
		n.Notify.Webhook = &cp
	}
	n.APITokens = slices.Clone(c.APITokens)
	return &n
}

// ParseCertificates reads uploaded certificates: PEM (any number), DER, or PKCS#12 (a trust
// store, or an identity whose key is ignored); password opens a PKCS#12 file.
func ParseCertificates(data []byte, password string) ([]*x509.Certificate, error) {
	certs, err := parseCertificates(data)
	if err == nil {
		return certs, nil
	}
	if p12, p12err := parseUploadedPKCS12(data, password); p12err == nil {
		return p12, nil
	} else if errors.Is(p12err, pkcs12.ErrIncorrectPassword) {
		return nil, fmt.Errorf("PKCS#12: wrong or missing password (%w)", p12err)
	}
	return nil, fmt.Errorf("not PEM, DER or PKCS#12 certificates: %w", err)
}

func parseUploadedPKCS12(data []byte, password string) (certs []*x509.Certificate, err error) {
	defer func() {
		if r := recover(); r != nil {
			certs, err = nil, errors.New("malformed PKCS#12 file")
		}
	}()
	if certs, err := pkcs12.DecodeTrustStore(data, password); err == nil && len(certs) > 0 {
		return certs, nil
	}
	_, cert, chain, err := pkcs12.DecodeChain(data, password)
	if err != nil {
		return nil, err
	}
	return append([]*x509.Certificate{cert}, chain...), nil
}

// ParseIdentity checks an uploaded station identity: key is PEM, DER or (with p12)
// PKCS#12, opened with password; cert is PEM or DER and may be nil when the PKCS#12 file
// carries the certificate. It returns the certificate and the chain that came with it.
func ParseIdentity(cert, key []byte, password string, p12 bool) (*x509.Certificate, []*x509.Certificate, error) {
	lk, err := parseKey(key, password, password != "", p12)
	if err != nil {
		return nil, nil, fmt.Errorf("key: %w", err)
	}
	var leaf *x509.Certificate
	var chain []*x509.Certificate
	switch {
	case len(cert) > 0:
		certs, err := parseCertificates(cert)
		if err != nil {
			return nil, nil, fmt.Errorf("certificate: %w", err)
		}
		leaf, chain = certs[0], certs[1:]
	case lk.cert != nil:
		leaf, chain = lk.cert, lk.chain
	default:
		return nil, nil, errors.New("certificate: required, unless the key is a PKCS#12 file that holds it")
	}
	if _, ok := lk.key.Public().(*rsa.PublicKey); !ok {
		return nil, nil, fmt.Errorf("key: an %s key: AS2 signing and decryption need an RSA key", keyAlgorithm(lk.key.Public()))
	}
	if !publicKeysEqual(lk.key.Public(), leaf.PublicKey) {
		return nil, nil, fmt.Errorf("key: does not belong to the certificate %q (the public keys differ)", leaf.Subject.String())
	}
	return leaf, chain, nil
}
