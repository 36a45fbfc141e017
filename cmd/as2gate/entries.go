package main

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/as2gate/as2gate/internal/api"
	"github.com/as2gate/as2gate/internal/config"
	"github.com/as2gate/as2gate/internal/store"
)

// managedEntries keeps the partners, stations and send profiles managed at run time: it
// validates a change with the file's configuration before it is stored, and puts the
// configuration in effect in the partner registry after each change, its own at once and
// another node's when the store's change counter moves.
//
// The certificate and key material of the entries is kept in the database and written
// (materialised) under DataDir/managed/<kind>s/<name>/, files 0600, before the
// configuration is validated: the file's loaders then read it as they read the files of the
// configuration file, with the same checks and the same messages, and an operator can
// look at what a node loaded. The database stays the source: the folder is rewritten from
// it at each start and each change.
type managedEntries struct {
	base  *config.Config // the file's configuration, validated
	store store.Store
	reg   *partners
	dir   string // DataDir/managed
	log   *slog.Logger
	// applied is called with each configuration put in effect.
	applied func(*config.Config)

	mu      sync.Mutex // one change or reload at a time
	version int64      // the change counter of the entries in effect
}

func newManagedEntries(base *config.Config, st store.Store, reg *partners, log *slog.Logger, applied func(*config.Config)) *managedEntries {
	if applied == nil {
		applied = func(*config.Config) {}
	}
	return &managedEntries{base: base, store: st, reg: reg, dir: filepath.Join(base.DataDir, "managed"), log: log, applied: applied}
}

// load reads the entries and puts the configuration in effect.
func (m *managedEntries) load(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.loadLocked(ctx)
}

func (m *managedEntries) loadLocked(ctx context.Context) error {
	v, err := m.store.ConfigVersion(ctx)
	if err != nil {
		return err
	}
	entries, err := m.store.ConfigEntries(ctx)
	if err != nil {
		return err
	}
	cfg, revs, err := m.effective(entries, m.dir, true)
	if err != nil {
		return fmt.Errorf("the partners, stations and profiles kept in the database: %w", err)
	}
	m.reg.swap(cfg, revs)
	m.version = v
	m.applied(cfg)
	return nil
}

// poll reloads the entries when another node changed them: at each tick it compares the
// store's change counter with the one in effect.
func (m *managedEntries) poll(ctx context.Context, ticks <-chan time.Time) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		if err := m.refresh(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("reloading the partners, stations and profiles kept in the database; the configuration in effect stays", "err", err)
		}
	}
}

// refresh reloads the entries if the change counter moved.
func (m *managedEntries) refresh(ctx context.Context) error {
	v, err := m.store.ConfigVersion(ctx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v == m.version {
		return nil
	}
	if err := m.loadLocked(ctx); err != nil {
		return err
	}
	m.log.Info("partners, stations and profiles reloaded after a change on another node", "version", v)
	return nil
}

// effective returns the file's configuration with entries, their material written under
// root. live also removes the folders of entries that are gone.
func (m *managedEntries) effective(entries []*store.ConfigEntry, root string, live bool) (*config.Config, map[string]revision, error) {
	revs := map[string]revision{}
	ces := make([]config.Entry, 0, len(entries))
	keep := map[string]bool{}
	for _, e := range entries {
		dir := filepath.Join(root, e.Kind+"s", folderName(e.Name))
		keep[dir] = true
		if err := materialise(dir, e.Material); err != nil {
			return nil, nil, err
		}
		ces = append(ces, config.Entry{Kind: e.Kind, Name: e.Name, Document: []byte(e.Document), Dir: dir})
		revs[entryID(e.Kind, e.Name)] = revision{N: e.Revision, Written: e.UpdatedAt}
	}
	if live {
		// Folders of a check a crash interrupted hold nothing in use.
		if stale, _ := filepath.Glob(filepath.Join(root, ".check-*")); len(stale) > 0 {
			for _, d := range stale {
				os.RemoveAll(d)
			}
		}
		for _, kind := range []string{store.EntryPartner, store.EntryStation, store.EntryProfile} {
			dirs, _ := filepath.Glob(filepath.Join(root, kind+"s", "*"))
			for _, d := range dirs {
				if !keep[d] {
					os.RemoveAll(d)
				}
			}
		}
	}
	if len(ces) == 0 {
		return m.base, revs, nil
	}
	cfg, err := m.base.WithEntries(ces)
	if err != nil {
		return nil, nil, err
	}
	return cfg, revs, nil
}

// folderName makes an entry's name a folder name: letters, digits, '.', '_' and '-' kept,
// the rest '_', with a short hash when anything changed so that two names never share one.
func folderName(name string) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			return r
		case r == '.':
			return r
		}
		return '_'
	}, name)
	if safe == name && !strings.HasPrefix(name, ".") {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return strings.TrimLeft(safe, ".") + "-" + hex.EncodeToString(sum[:4])
}

// materialise writes an entry's files into dir (0600, the folder 0700) and removes files
// the entry no longer has.
func materialise(dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("managed entries: %w", err)
	}
	old, _ := os.ReadDir(dir)
	for _, f := range old {
		if _, ok := files[f.Name()]; !ok {
			os.RemoveAll(filepath.Join(dir, f.Name()))
		}
	}
	for name, data := range files {
		path := filepath.Join(dir, name)
		if cur, err := os.ReadFile(path); err == nil && string(cur) == string(data) {
			continue
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			return fmt.Errorf("managed entries: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("managed entries: %w", err)
		}
	}
	return nil
}

// inFile reports whether the file's configuration defines the entry.
func (m *managedEntries) inFile(kind, name string) bool {
	switch kind {
	case store.EntryPartner:
		return m.base.Partner(name) != nil
	case store.EntryStation:
		return m.base.Station(name) != nil
	case store.EntryProfile:
		return m.base.Profile(name) != nil
	}
	return false
}

// change validates the entries with e in place of the entry of its kind and name (e nil:
// without it), writes the change with write, and puts the result in effect.
func (m *managedEntries) change(ctx context.Context, kind, name string, e *store.ConfigEntry, write func(current *store.ConfigEntry, base int64) error) error {
	// The counter is read before the entries: a change another node makes after this read
	// makes the write a conflict, since the validation below did not see it.
	base, err := m.store.ConfigVersion(ctx)
	if err != nil {
		return err
	}
	entries, err := m.store.ConfigEntries(ctx)
	if err != nil {
		return err
	}
	var current *store.ConfigEntry
	candidate := make([]*store.ConfigEntry, 0, len(entries)+1)
	for _, x := range entries {
		if x.Kind == kind && x.Name == name {
			current = x
			continue
		}
		candidate = append(candidate, x)
	}
	if e != nil {
		candidate = append(candidate, e)
	}
	staging, err := os.MkdirTemp(m.dir, ".check-")
	if err != nil {
		if err := os.MkdirAll(m.dir, 0o700); err != nil {
			return err
		}
		if staging, err = os.MkdirTemp(m.dir, ".check-"); err != nil {
			return err
		}
	}
	_, _, verr := m.effective(candidate, staging, false)
	os.RemoveAll(staging)
	if verr != nil {
		return verr
	}
	if err := write(current, base); err != nil {
		return err
	}
	if err := m.loadLocked(ctx); err != nil {
		// Stored, validated, and yet not in effect: the next change or start reports it.
		return fmt.Errorf("stored, but not in effect: %w", err)
	}
	return nil
}

// Put implements api.Entries.
func (m *managedEntries) Put(ctx context.Context, c api.EntryChange) (int64, error) {
	kind, name := c.Kind, c.Name
	if m.inFile(kind, name) {
		return 0, api.ErrManagedInFile
	}
	root, err := parseDocument(string(c.Document))
	if err != nil {
		return 0, &api.InputError{Msg: err.Error()}
	}
	added, err := uploadedCertificates(c.Certificates, c.Password)
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, err := m.store.ConfigEntry(ctx, kind, name)
	switch {
	case errors.Is(err, store.ErrNotFound) && !c.Create:
		return 0, err
	case err == nil && c.Create:
		return 0, fmt.Errorf("%s %q exists: change it with PUT: %w", kind, name, store.ErrConflict)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return 0, err
	}
	material := map[string][]byte{}
	e := &store.ConfigEntry{Kind: kind, Name: name}
	if cur != nil {
		if c.Revision != 0 && c.Revision != cur.Revision {
			return 0, fmt.Errorf("%s %q is at revision %d, not %d: read it again: %w", kind, name, cur.Revision, c.Revision, store.ErrConflict)
		}
		material = maps.Clone(cur.Material)
		e.Revision = cur.Revision
		keepUploaded(root, cur.Document, kind)
	}
	if len(added) > 0 {
		addCertificates(root, material, added, false)
	}
	for name, data := range c.Files {
		material[name] = data
	}
	if e.Document, err = encodeDocument(root); err != nil {
		return 0, err
	}
	// The files the new document still names stay; the others go with the old one.
	e.Material = referenced(e.Document, material)
	return m.write(ctx, e, cur == nil)
}

// write validates, stores and applies e.
func (m *managedEntries) write(ctx context.Context, e *store.ConfigEntry, create bool) (int64, error) {
	err := m.change(ctx, e.Kind, e.Name, e, func(_ *store.ConfigEntry, base int64) error {
		e.Base = base
		if create {
			return m.store.CreateConfigEntry(ctx, e)
		}
		return m.store.UpdateConfigEntry(ctx, e)
	})
	return e.Revision, err
}

// Delete implements api.Entries.
func (m *managedEntries) Delete(ctx context.Context, kind, name string, revision int64) error {
	if m.inFile(kind, name) {
		return api.ErrManagedInFile
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if kind == store.EntryStation {
		var users []string
		for _, p := range m.reg.current().cfg.Partners {
			if p.Station == name {
				users = append(users, p.AS2ID)
			}
		}
		if len(users) > 0 {
			return fmt.Errorf("station %q trades with partner(s) %s: move or delete them first: %w", name, strings.Join(users, ", "), store.ErrConflict)
		}
	}
	if _, err := m.store.ConfigEntry(ctx, kind, name); err != nil {
		return err
	}
	return m.change(ctx, kind, name, nil, func(_ *store.ConfigEntry, base int64) error {
		return m.store.DeleteConfigEntryAt(ctx, kind, name, revision, base)
	})
}

// keepUploaded carries the keys that name uploaded files from the current document into a
// replacement that leaves them out: a client that never saw the file names (the API does not
// show them) keeps a partner's certificates and a station's identity by not mentioning
// them. An explicit value, "certs: []" included, replaces them.
func keepUploaded(root *yaml.Node, current, kind string) {
	old, err := parseDocument(current)
	if err != nil {
		return
	}
	keys := []string{"certs"}
	if kind == store.EntryStation {
		keys = []string{"cert", "key", "key_password_file"}
	}
	for _, k := range keys {
		if findKey(root, k) >= 0 {
			continue
		}
		if i := findKey(old, k); i >= 0 {
			root.Content = append(root.Content, old.Content[i], old.Content[i+1])
		}
	}
}

// uploadedCertificates reads certificate uploads; a bad one is the client's error.
func uploadedCertificates(uploads [][]byte, password string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for i, up := range uploads {
		cs, err := config.ParseCertificates(up, password)
		if err != nil {
			return nil, &api.InputError{Msg: fmt.Sprintf("certificate upload %d: %v", i+1, err)}
		}
		certs = append(certs, cs...)
	}
	return certs, nil
}

// addCertificates writes certs into material as PEM files named by their fingerprint and
// adds them to the document's certs (replace: in place of those it had).
func addCertificates(root *yaml.Node, material map[string][]byte, certs []*x509.Certificate, replace bool) {
	var names []string
	if !replace {
		names = sequenceValues(root, "certs")
	}
	for _, c := range certs {
		sum := sha256.Sum256(c.Raw)
		name := "cert-" + hex.EncodeToString(sum[:8]) + ".pem"
		material[name] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
		names = append(names, name)
	}
	setSequence(root, "certs", dedupe(names))
}

// AddCertificates implements api.Entries.
func (m *managedEntries) AddCertificates(ctx context.Context, partner string, uploads [][]byte, password string, replace bool, revision int64) ([]*x509.Certificate, int64, error) {
	if m.inFile(store.EntryPartner, partner) {
		return nil, 0, api.ErrManagedInFile
	}
	certs, err := uploadedCertificates(uploads, password)
	if err != nil {
		return nil, 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, err := m.store.ConfigEntry(ctx, store.EntryPartner, partner)
	if err != nil {
		return nil, 0, err
	}
	if revision != 0 && revision != cur.Revision {
		return nil, 0, fmt.Errorf("partner %q is at revision %d, not %d: read it again: %w", partner, cur.Revision, revision, store.ErrConflict)
	}
	root, err := parseDocument(cur.Document)
	if err != nil {
		return nil, 0, err
	}
	material := maps.Clone(cur.Material)
	addCertificates(root, material, certs, replace)
	text, err := encodeDocument(root)
	if err != nil {
		return nil, 0, err
	}
	e := &store.ConfigEntry{Kind: store.EntryPartner, Name: partner, Document: text, Material: referenced(text, material), Revision: cur.Revision}
	rev, err := m.write(ctx, e, false)
	return certs, rev, err
}

func dedupe(names []string) []string {
	seen := map[string]bool{}
	out := names[:0:0]
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// The files a station identity is kept in.
const (
	identityP12      = "identity.p12"
	identityPassword = "identity.password"
	identityCert     = "cert.pem"
	identityKey      = "key.pem"
	identityKeyPass  = "key.password"
)

// SetIdentity implements api.Entries.
func (m *managedEntries) SetIdentity(ctx context.Context, station string, id api.IdentityUpload, revision int64) ([]*x509.Certificate, int64, bool, error) {
	if m.inFile(store.EntryStation, station) {
		return nil, 0, false, api.ErrManagedInFile
	}
	p12 := id.PKCS12 != nil
	key := id.Key
	if p12 {
		key = id.PKCS12
	}
	cert, chain, err := config.ParseIdentity(id.Cert, key, id.Password, p12)
	if err != nil {
		return nil, 0, false, &api.InputError{Msg: err.Error()}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, err := m.store.ConfigEntry(ctx, store.EntryStation, station)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, 0, false, err
	}
	doc := "as2_id: " + station + "\n"
	material := map[string][]byte{}
	if cur != nil {
		if revision != 0 && revision != cur.Revision {
			return nil, 0, false, fmt.Errorf("station %q is at revision %d, not %d: read it again: %w", station, cur.Revision, revision, store.ErrConflict)
		}
		doc, material = cur.Document, maps.Clone(cur.Material)
	}
	root, err := parseDocument(doc)
	if err != nil {
		return nil, 0, false, err
	}
	for _, f := range []string{identityP12, identityPassword, identityCert, identityKey, identityKeyPass} {
		delete(material, f)
	}
	for _, k := range []string{"cert", "key", "key_password_file"} {
		deleteKey(root, k)
	}
	passwordFile := identityKeyPass
	if p12 {
		material[identityP12] = id.PKCS12
		setScalar(root, "key", identityP12)
		passwordFile = identityPassword
	} else {
		var certPEM []byte
		for _, c := range append([]*x509.Certificate{cert}, chain...) {
			certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
		}
		material[identityCert], material[identityKey] = certPEM, id.Key
		setScalar(root, "cert", identityCert)
		setScalar(root, "key", identityKey)
	}
	if id.Password != "" {
		material[passwordFile] = []byte(id.Password)
		setScalar(root, "key_password_file", passwordFile)
	}
	text, err := encodeDocument(root)
	if err != nil {
		return nil, 0, false, err
	}
	e := &store.ConfigEntry{Kind: store.EntryStation, Name: station, Document: text, Material: referenced(text, material)}
	if cur != nil {
		e.Revision = cur.Revision
	}
	rev, err := m.write(ctx, e, cur == nil)
	return append([]*x509.Certificate{cert}, chain...), rev, cur == nil, err
}

// parseDocument reads one entry's YAML (or JSON) as a mapping node.
func parseDocument(doc string) (*yaml.Node, error) {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		return nil, fmt.Errorf("not valid JSON or YAML: %v", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(n.Content) == 0 || n.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("the entry must be an object of the configuration file's keys")
	}
	return n.Content[0], nil
}

// encodeDocument writes a mapping node in the file's block style.
func encodeDocument(root *yaml.Node) (string, error) {
	var plain func(n *yaml.Node)
	plain = func(n *yaml.Node) {
		n.Style = 0
		for _, c := range n.Content {
			plain(c)
		}
	}
	plain(root)
	out, err := yaml.Marshal(root)
	if err != nil {
		return "", fmt.Errorf("encoding the entry: %w", err)
	}
	return string(out), nil
}

func findKey(root *yaml.Node, key string) int {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == key {
			return i
		}
	}
	return -1
}

func deleteKey(root *yaml.Node, key string) {
	if i := findKey(root, key); i >= 0 {
		root.Content = append(root.Content[:i], root.Content[i+2:]...)
	}
}

func setScalar(root *yaml.Node, key, value string) {
	v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value}
	if i := findKey(root, key); i >= 0 {
		root.Content[i+1] = v
		return
	}
	root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
}

func sequenceValues(root *yaml.Node, key string) []string {
	i := findKey(root, key)
	if i < 0 || root.Content[i+1].Kind != yaml.SequenceNode {
		return nil
	}
	var out []string
	for _, c := range root.Content[i+1].Content {
		if c.Kind == yaml.ScalarNode {
			out = append(out, c.Value)
		}
	}
	return out
}

func setSequence(root *yaml.Node, key string, values []string) {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	for _, v := range values {
		seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v})
	}
	if i := findKey(root, key); i >= 0 {
		root.Content[i+1] = seq
		return
	}
	root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, seq)
}

// referenced returns the files of material that the document names.
func referenced(doc string, material map[string][]byte) map[string][]byte {
	var n yaml.Node
	if yaml.Unmarshal([]byte(doc), &n) != nil {
		return nil
	}
	named := map[string]bool{}
	var walk func(*yaml.Node)
	walk = func(x *yaml.Node) {
		if x.Kind == yaml.ScalarNode {
			named[x.Value] = true
		}
		for _, c := range x.Content {
			walk(c)
		}
	}
	walk(&n)
	out := map[string][]byte{}
	for f, data := range material {
		if named[f] {
			out[f] = data
		}
	}
	return out
}
