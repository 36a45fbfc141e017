package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/cms"
)

// The file's shape. Every scalar that has a default is a pointer, so that "not set" (inherit
// the default) differs from a zero value; file paths are plain strings, relative to the
// file's folder. List items are pointers because the decoder drops null items from lists of
// values, which would shift the index of every later item in the key paths.
type (
	rawConfig struct {
		DataDir             *string       `yaml:"data_dir"`
		Database            *string       `yaml:"database"`
		Listen              *rawListen    `yaml:"listen"`
		TLS                 *rawServerTLS `yaml:"tls"`
		PublicURL           *string       `yaml:"public_url"`
		APITokens           []*string     `yaml:"api_tokens"`
		AllowPrivateMDNURLs *bool         `yaml:"allow_private_mdn_urls"`
		DedupWindow         *string       `yaml:"dedup_window"`
		Workers             *int          `yaml:"workers"`
		Lease               *string       `yaml:"lease"`
		InboxDir            *string       `yaml:"inbox_dir"`
		PayloadStore        *string       `yaml:"payload_store"`
		Log                 *rawLog       `yaml:"log"`
		Notify              *rawNotify    `yaml:"notify"`
		Defaults            *rawSettings  `yaml:"defaults"`
		Stations            []*rawStation `yaml:"stations"`
		Partners            []*rawPartner `yaml:"partners"`
		Profiles            []*rawProfile `yaml:"profiles"`
	}
	rawListen struct {
		AS2   *string `yaml:"as2"`
		Admin *string `yaml:"admin"`
	}
	rawServerTLS struct {
		AS2   *rawListenerTLS `yaml:"as2"`
		Admin *rawListenerTLS `yaml:"admin"`
	}
	rawListenerTLS struct {
		Cert            string `yaml:"cert"`
		Key             string `yaml:"key"`
		KeyPasswordFile string `yaml:"key_password_file"`
		ClientCA        string `yaml:"client_ca"`
	}
	rawLog struct {
		Format *string `yaml:"format"`
		Level  *string `yaml:"level"`
	}
	rawNotify struct {
		Email             *rawEmail   `yaml:"email"`
		Webhook           *rawWebhook `yaml:"webhook"`
		CertExpiryWarning *string     `yaml:"cert_expiry_warning"`
	}
	rawEmail struct {
		SMTP         string    `yaml:"smtp"`
		From         string    `yaml:"from"`
		To           []*string `yaml:"to"`
		Username     string    `yaml:"username"`
		PasswordFile string    `yaml:"password_file"`
		StartTLS     *bool     `yaml:"starttls"`
		TLS          bool      `yaml:"tls"`
	}
	rawWebhook struct {
		URL        string `yaml:"url"`
		SecretFile string `yaml:"secret_file"`
	}
	rawIdentity struct {
		Cert            string `yaml:"cert"`
		Key             string `yaml:"key"`
		KeyPasswordFile string `yaml:"key_password_file"`
	}
	rawStation struct {
		AS2ID              string `yaml:"as2_id"`
		rawIdentity        `yaml:",inline"`
		PreviousKeys       []*rawIdentity `yaml:"previous_keys"`
		TLSCert            string         `yaml:"tls_cert"`
		TLSKey             string         `yaml:"tls_key"`
		TLSKeyPasswordFile string         `yaml:"tls_key_password_file"`
	}
	rawSettings struct {
		Sign         *string      `yaml:"sign"`
		PSS          *bool        `yaml:"pss"`
		Encrypt      *string      `yaml:"encrypt"`
		KeyTransport *string      `yaml:"key_transport"`
		Compress     *string      `yaml:"compress"`
		MDN          *string      `yaml:"mdn"`
		MDNSigned    *bool        `yaml:"mdn_signed"`
		Require      *rawRequire  `yaml:"require"`
		Retry        *rawRetries  `yaml:"retry"`
		Timeouts     *rawTimeouts `yaml:"timeouts"`
		MaxSize      *string      `yaml:"max_size"`
		Concurrency  *int         `yaml:"concurrency"`
		MDNPolicy    *string      `yaml:"mdn_policy"`
		SourceAddr   *string      `yaml:"source_address"`
	}
	rawRequire struct {
		Signed     *bool `yaml:"signed"`
		Encrypted  *bool `yaml:"encrypted"`
		Compressed *bool `yaml:"compressed"`
	}
	rawRetries struct {
		Failed     *rawRetry `yaml:"failed"`
		Incomplete *rawRetry `yaml:"incomplete"`
	}
	rawRetry struct {
		Enabled  *bool   `yaml:"enabled"`
		Strategy *string `yaml:"strategy"`
		Attempts *int    `yaml:"attempts"`
		Initial  *string `yaml:"initial"`
		Interval *string `yaml:"interval"`
		Duration *string `yaml:"duration"`
	}
	rawTimeouts struct {
		Connect      *string `yaml:"connect"`
		Transmission *string `yaml:"transmission"`
		AsyncMDN     *string `yaml:"async_mdn"`
	}
	rawPartner struct {
		AS2ID       string            `yaml:"as2_id"`
		Station     string            `yaml:"station"`
		URL         string            `yaml:"url"`
		Certs       []*string         `yaml:"certs"`
		Headers     map[string]string `yaml:"headers"`
		Auth        *rawAuth          `yaml:"auth"`
		TLS         *rawPartnerTLS    `yaml:"tls"`
		rawSettings `yaml:",inline"`
	}
	rawAuth struct {
		Basic      *rawBasic `yaml:"basic"`
		BearerFile string    `yaml:"bearer_file"`
	}
	rawBasic struct {
		User         string `yaml:"user"`
		PasswordFile string `yaml:"password_file"`
	}
	rawPartnerTLS struct {
		CA string `yaml:"ca"`
	}
)

// maxConfigFile bounds the configuration file.
const maxConfigFile = 16 << 20

// Load reads the YAML file at path over Default, then validates the result and loads the
// files it names (Validate). Relative paths in the file are relative to the file's folder.
// Partner settings not set in a partner come from the top-level defaults block, and those not
// set there from DefaultSettings.
//
// Every problem is reported at once in a *ValidationError that names each key path and
// line; an unknown key is a problem, so that a misspelt setting is never silently ignored.
func Load(path string) (*Config, error) {
	data, err := readFile(path, maxConfigFile)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := parse(data, filepath.Dir(path))
	if c != nil {
		c.File = path
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		ve.File = path
	}
	return c, err
}

// parse reads a configuration from YAML text; relative paths are joined to dir.
func parse(data []byte, dir string) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &ValidationError{Problems: []Problem{{Message: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}}}
	}
	w := &walker{lines: map[string]int{}, walked: map[walkedKey]bool{}}
	var raw rawConfig
	if len(doc.Content) > 0 {
		if w.walk(doc.Content[0], reflect.TypeFor[rawConfig](), "", 0) {
			// The walker took out what it reported; what is left decodes strictly.
			clean, err := yaml.Marshal(&doc)
			if err == nil {
				dec := yaml.NewDecoder(bytes.NewReader(clean))
				dec.KnownFields(true)
				err = dec.Decode(&raw)
			}
			if err != nil && !errors.Is(err, io.EOF) {
				w.problems.add("", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			}
		}
	}
	ps := w.problems
	c := Default()
	c.apply(&raw, dir, &ps)
	c.validate(&ps)
	if len(ps) == 0 {
		return c, nil
	}
	for i := range ps {
		ps[i].Line = w.line(ps[i].Key)
	}
	// In file order, which is how the reader fixes them; problems of the file as a whole
	// (line 0) first.
	slices.SortStableFunc(ps, func(a, b Problem) int { return a.Line - b.Line })
	return nil, ps.err("")
}

// walker checks a YAML tree against the file's shape before it is decoded, so that unknown
// keys and values of the wrong type are reported with their key path and line. It also
// removes what it reports from the tree (unknown and repeated keys are dropped, values of the
// wrong type become null), so that the decoder sees only good values and the defaults stay
// in place of the bad ones.
type walker struct {
	problems problems
	lines    map[string]int // key path -> line
	// walked holds the anchored nodes already checked: an alias is checked once, however
	// often it is used, so that nested aliases cannot make the walk exponential.
	walked map[walkedKey]bool
}

type walkedKey struct {
	n *yaml.Node
	t reflect.Type
}

// maxDepth bounds the walk: the file's shape is 5 levels deep, and an alias may point back
// to its own ancestor.
const maxDepth = 16

var nullNode = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}

// walk checks n as a value of type t and reports whether it may be decoded.
func (w *walker) walk(n *yaml.Node, t reflect.Type, path string, depth int) bool {
	if depth > maxDepth {
		w.problems.add(path, "nested too deeply (an alias that refers to itself?)")
		return false
	}
	if n.Kind == yaml.AliasNode {
		k := walkedKey{n.Alias, t}
		if ok, done := w.walked[k]; done {
			return ok
		}
		ok := w.walk(n.Alias, t, path, depth+1)
		w.walked[k] = ok
		return ok
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return true // not set: the default applies
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.problems.add(path, "expected keys and values (key: value), found %s", describe(n))
			return false
		}
		fields := yamlFields(t)
		seen := map[string]int{}
		kept := n.Content[:0:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				if w.walkMerge(v, t, path, depth) {
					kept = append(kept, k, v)
				}
				continue
			}
			p := joinKey(path, k.Value)
			if _, ok := w.lines[p]; !ok {
				w.lines[p] = k.Line
			}
			if first, dup := seen[k.Value]; dup {
				w.problems.add(p, "set twice (lines %d and %d)", first, k.Line)
				continue
			}
			seen[k.Value] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				w.problems.add(p, "%s", unknownKey(k.Value, fields))
				continue
			}
			if !w.walk(v, ft, p, depth+1) {
				v = &nullNode
			}
			kept = append(kept, k, v)
		}
		n.Content = kept
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.problems.add(path, "expected names and values (name: value), found %s", describe(n))
			return false
		}
		kept := n.Content[:0:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				w.problems.add(path, "a name must be a single value, found %s", describe(k))
				continue
			}
			p := joinKey(path, k.Value)
			w.lines[p] = k.Line
			if w.walk(v, t.Elem(), p, depth+1) {
				kept = append(kept, k, v)
			}
		}
		n.Content = kept
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.problems.add(path, "expected a list ([a, b], or one \"- item\" per line), found %s", describe(n))
			return false
		}
		for i, item := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.lines[p] = item.Line
			if !w.walk(item, t.Elem(), p, depth+1) {
				// Null keeps the place, so that the items after it keep their index.
				n.Content[i] = &nullNode
			}
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			w.problems.add(path, "expected a single value, found %s", describe(n))
			return false
		}
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
			w.problems.add(path, "%s is not true or false", describe(n))
			return false
		}
	case reflect.Int:
		var i int
		if n.Kind != yaml.ScalarNode || n.Decode(&i) != nil {
			w.problems.add(path, "%s is not a whole number", describe(n))
			return false
		}
	}
	return true
}

// walkMerge checks the value of a YAML merge key ("<<: *defaults"): a mapping or a list of
// mappings merged into the one that holds it.
func (w *walker) walkMerge(v *yaml.Node, t reflect.Type, path string, depth int) bool {
	if v.Kind == yaml.SequenceNode {
		ok := true
		for _, item := range v.Content {
			ok = w.walk(item, t, path, depth+1) && ok
		}
		return ok
	}
	return w.walk(v, t, path, depth+1)
}

// line returns the line of key, or of its nearest ancestor found in the file.
func (w *walker) line(key string) int {
	for key != "" {
		if l, ok := w.lines[key]; ok {
			return l
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

func joinKey(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "keys and values"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	return strconv.Quote(n.Value)
}

// yamlFields maps the YAML key names of a struct to their types, with inline structs
// flattened.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for f := range t.Fields() {
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if opts == "inline" {
			for k, v := range yamlFields(f.Type) {
				fields[k] = v
			}
			continue
		}
		if name != "" && name != "-" {
			fields[name] = f.Type
		}
	}
	return fields
}

// unknownKey words the problem of a key the file's shape does not have, with the closest
// known key when one is a likely misspelling.
func unknownKey(key string, fields map[string]reflect.Type) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	msg := "unknown key"
	best, bestDist := "", max(1, len(key)/3)+1
	for _, name := range names {
		if d := editDistance(strings.ToLower(key), name); d < bestDist {
			best, bestDist = name, d
		}
	}
	if best != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", best)
	}
	return msg + "; the keys here are " + strings.Join(names, ", ")
}

// editDistance is the optimal string alignment distance between a and b: the Levenshtein
// distance with the swap of two neighbours counted as one edit ("sing" for "sign").
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// apply sets c from the decoded file, converting text to typed values; problems are
// recorded under their key paths and leave the default in place.
func (c *Config) apply(raw *rawConfig, dir string, ps *problems) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	setString(&c.DataDir, raw.DataDir)
	c.DataDir = abs(c.DataDir)
	setString(&c.Database, raw.Database)
	if raw.Listen != nil {
		setString(&c.Listen.AS2, raw.Listen.AS2)
		setString(&c.Listen.Admin, raw.Listen.Admin)
	}
	if raw.TLS != nil {
		c.TLS.AS2 = listenerTLS(raw.TLS.AS2, abs)
		c.TLS.Admin = listenerTLS(raw.TLS.Admin, abs)
	}
	setString(&c.PublicURL, raw.PublicURL)
	if raw.APITokens != nil {
		c.APITokens = values(raw.APITokens)
	}
	setBool(&c.AllowPrivateMDNURLs, raw.AllowPrivateMDNURLs)
	setDuration(&c.DedupWindow, raw.DedupWindow, "dedup_window", ps)
	setInt(&c.Workers, raw.Workers)
	setDuration(&c.Lease, raw.Lease, "lease", ps)
	if raw.InboxDir != nil {
		c.InboxDir = abs(*raw.InboxDir)
	}
	setString(&c.PayloadStore, raw.PayloadStore)
	if raw.Log != nil {
		if raw.Log.Format != nil {
			c.Log.Format = strings.ToLower(strings.TrimSpace(*raw.Log.Format))
		}
		if raw.Log.Level != nil {
			var l slog.Level
			if err := l.UnmarshalText([]byte(strings.TrimSpace(*raw.Log.Level))); err != nil {
				ps.add("log.level", "%q is not %s", *raw.Log.Level, oneOf("debug", "info", "warn", "error"))
			} else {
				c.Log.Level = l
			}
		}
	}
	if n := raw.Notify; n != nil {
		setDuration(&c.Notify.CertExpiryWarning, n.CertExpiryWarning, "notify.cert_expiry_warning", ps)
		if e := n.Email; e != nil {
			c.Notify.Email = &Email{
				SMTP: e.SMTP, From: e.From, To: values(e.To), Username: e.Username,
				PasswordFile: abs(e.PasswordFile), StartTLS: true, TLS: e.TLS,
			}
			setBool(&c.Notify.Email.StartTLS, e.StartTLS)
		}
		if h := n.Webhook; h != nil {
			c.Notify.Webhook = &Webhook{URL: h.URL, SecretFile: abs(h.SecretFile)}
		}
	}

	var defReq *rawRequire
	if raw.Defaults != nil {
		c.Defaults.apply(raw.Defaults, "defaults", ps)
		defReq = raw.Defaults.Require
	}
	c.Defaults.deriveRequire(defReq, nil)

	c.defaultsRequire = defReq
	for _, rs := range raw.Stations {
		c.Stations = append(c.Stations, stationOf(rs, abs))
	}
	for i, rp := range raw.Partners {
		c.Partners = append(c.Partners, c.partnerOf(rp, keyf("partners[%d]", i), abs, ps))
	}
	c.applyProfiles(raw.Profiles)
}

// stationOf turns a stations item into a Station; abs resolves its file names.
func stationOf(rs *rawStation, abs func(string) string) *Station {
	if rs == nil {
		rs = &rawStation{} // an empty item: its problems are reported under its index
	}
	s := &Station{
		AS2ID:              rs.AS2ID,
		Identity:           Identity{CertFile: abs(rs.Cert), KeyFile: abs(rs.Key), KeyPasswordFile: abs(rs.KeyPasswordFile)},
		TLSCertFile:        abs(rs.TLSCert),
		TLSKeyFile:         abs(rs.TLSKey),
		TLSKeyPasswordFile: abs(rs.TLSKeyPasswordFile),
	}
	for _, p := range rs.PreviousKeys {
		if p == nil {
			p = &rawIdentity{}
		}
		s.Previous = append(s.Previous, Identity{CertFile: abs(p.Cert), KeyFile: abs(p.Key), KeyPasswordFile: abs(p.KeyPasswordFile)})
	}
	return s
}

// partnerOf turns a partners item into a Partner over c.Defaults; problems are recorded
// under key, and abs resolves its file names.
func (c *Config) partnerOf(rp *rawPartner, key string, abs func(string) string, ps *problems) *Partner {
	if rp == nil {
		rp = &rawPartner{}
	}
	p := &Partner{
		AS2ID:    rp.AS2ID,
		Station:  rp.Station,
		URL:      rp.URL,
		Settings: c.Defaults,
	}
	for _, f := range values(rp.Certs) {
		p.CertFiles = append(p.CertFiles, abs(f))
	}
	p.Header = headerOf(rp.Headers)
	if a := rp.Auth; a != nil {
		p.Auth.BearerFile = abs(a.BearerFile)
		if a.Basic != nil {
			p.Auth.Basic = &BasicAuth{User: a.Basic.User, PasswordFile: abs(a.Basic.PasswordFile)}
		}
	}
	if rp.TLS != nil {
		p.TLS.CAFile = abs(rp.TLS.CA)
	}
	p.Settings.apply(&rp.rawSettings, key, ps)
	p.Settings.deriveRequire(rp.Require, c.defaultsRequire)
	return p
}

// values returns the strings of a list, null items as "".
func values(list []*string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		if s != nil {
			out[i] = *s
		}
	}
	return out
}

func listenerTLS(r *rawListenerTLS, abs func(string) string) *ListenerTLS {
	if r == nil {
		return nil
	}
	return &ListenerTLS{
		CertFile:        abs(r.Cert),
		KeyFile:         abs(r.Key),
		KeyPasswordFile: abs(r.KeyPasswordFile),
		ClientCAFile:    abs(r.ClientCA),
	}
}

// apply sets the settings the file sets; key is "defaults" or "partners[i]".
func (s *Settings) apply(r *rawSettings, key string, ps *problems) {
	if r.Sign != nil {
		if v, err := parseSign(*r.Sign); err != nil {
			ps.addErr(key+".sign", err)
		} else {
			s.Sign = v
		}
	}
	setBool(&s.PSS, r.PSS)
	if r.Encrypt != nil {
		if v, err := parseEncrypt(*r.Encrypt); err != nil {
			ps.addErr(key+".encrypt", err)
		} else {
			s.Encrypt = v
		}
	}
	if r.KeyTransport != nil {
		if v, err := parseKeyTransport(*r.KeyTransport); err != nil {
			ps.addErr(key+".key_transport", err)
		} else {
			s.KeyTransport = v
		}
	}
	if r.Compress != nil {
		if v, err := parseCompress(*r.Compress); err != nil {
			ps.addErr(key+".compress", err)
		} else {
			s.Compress = v
		}
	}
	if r.MDN != nil {
		if v, err := parseMDN(*r.MDN); err != nil {
			ps.addErr(key+".mdn", err)
		} else {
			s.MDN = v
		}
	}
	setBool(&s.MDNSigned, r.MDNSigned)
	if q := r.Require; q != nil {
		setBool(&s.Require.Signed, q.Signed)
		setBool(&s.Require.Encrypted, q.Encrypted)
		setBool(&s.Require.Compressed, q.Compressed)
	}
	if rr := r.Retry; rr != nil {
		s.Retry.Failed.apply(rr.Failed, key+".retry.failed", ps)
		s.Retry.Incomplete.apply(rr.Incomplete, key+".retry.incomplete", ps)
	}
	if t := r.Timeouts; t != nil {
		setDuration(&s.Timeouts.Connect, t.Connect, key+".timeouts.connect", ps)
		setDuration(&s.Timeouts.Transmission, t.Transmission, key+".timeouts.transmission", ps)
		setDuration(&s.Timeouts.AsyncMDN, t.AsyncMDN, key+".timeouts.async_mdn", ps)
	}
	if r.MaxSize != nil {
		if n, err := ParseSize(*r.MaxSize); err != nil {
			ps.addErr(key+".max_size", err)
		} else {
			s.MaxSize = n
		}
	}
	setInt(&s.Concurrency, r.Concurrency)
	if r.MDNPolicy != nil {
		switch v := strings.ToLower(strings.TrimSpace(*r.MDNPolicy)); v {
		case MDNPolicySender, MDNPolicyAgreement:
			s.MDNPolicy = v
		default:
			ps.add(key+".mdn_policy", "%q is not %s", *r.MDNPolicy, oneOf(MDNPolicySender, MDNPolicyAgreement))
		}
	}
	if r.SourceAddr != nil {
		if v := strings.TrimSpace(*r.SourceAddr); v == "" {
			s.SourceAddress = netip.Addr{}
		} else if a, err := netip.ParseAddr(v); err != nil {
			ps.add(key+".source_address", "%q is not an IP address", v)
		} else {
			s.SourceAddress = a
		}
	}
}

// deriveRequire applies the rule of Require: signed and encrypted that neither the partner
// (own) nor the defaults block (inherited) set follow what we send.
func (s *Settings) deriveRequire(own, inherited *rawRequire) {
	set := func(get func(*rawRequire) *bool) bool {
		return own != nil && get(own) != nil || inherited != nil && get(inherited) != nil
	}
	if !set(func(r *rawRequire) *bool { return r.Signed }) {
		s.Require.Signed = s.Sign != 0
	}
	if !set(func(r *rawRequire) *bool { return r.Encrypted }) {
		s.Require.Encrypted = s.Encrypt != 0
	}
}

func (r *Retry) apply(raw *rawRetry, key string, ps *problems) {
	if raw == nil {
		return
	}
	setBool(&r.Enabled, raw.Enabled)
	if raw.Strategy != nil {
		switch strings.ToLower(strings.TrimSpace(*raw.Strategy)) {
		case "exponential":
			r.Strategy = Exponential
		case "fixed":
			r.Strategy = Fixed
		default:
			ps.add(key+".strategy", "%q is not %s", *raw.Strategy, oneOf("exponential", "fixed"))
		}
	}
	setInt(&r.Attempts, raw.Attempts)
	setDuration(&r.Initial, raw.Initial, key+".initial", ps)
	setDuration(&r.Interval, raw.Interval, key+".interval", ps)
	setDuration(&r.Duration, raw.Duration, key+".duration", ps)
}

func setString(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

func setBool(dst *bool, v *bool) {
	if v != nil {
		*dst = *v
	}
}

func setInt(dst *int, v *int) {
	if v != nil {
		*dst = *v
	}
}

func setDuration(dst *time.Duration, v *string, key string, ps *problems) {
	if v == nil {
		return
	}
	d, err := parseDuration(*v)
	if err != nil {
		ps.addErr(key, err)
		return
	}
	*dst = d
}

// parseDuration reads a Go duration: 30s, 15m, 2h, 1h30m.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: write a number with a unit (ms, s, m, h), e.g. 30s, 15m, 2h, 720h", s)
	}
	return d, nil
}

// The configuration spellings of the algorithm settings.
var (
	signNames         = []string{"none", "sha1", "sha256", "sha384", "sha512"}
	encryptNames      = []string{"none", "3des", "aes128-cbc", "aes192-cbc", "aes256-cbc", "aes128-gcm", "aes256-gcm"}
	keyTransportNames = []string{"rsa-pkcs1v15", "rsa-oaep-sha1", "rsa-oaep-sha256", "rsa-oaep-sha384", "rsa-oaep-sha512"}
	compressNames     = []string{"none", "before-sign", "after-sign"}
	mdnNames          = []string{"sync", "async", "none"}
)

func isNone(s string) bool { return strings.EqualFold(strings.TrimSpace(s), "none") }

// parseSign reads sign. The spellings of as2.ParseMICAlg ("sha-256", "SHA256") are accepted
// too, since partners' documents use them.
func parseSign(s string) (as2.MICAlg, error) {
	if isNone(s) {
		return 0, nil
	}
	a, err := as2.ParseMICAlg(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not %s", s, oneOf(signNames...))
	}
	return a, nil
}

func parseEncrypt(s string) (cms.Cipher, error) {
	if isNone(s) {
		return 0, nil
	}
	c, err := cms.ParseCipher(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not %s", s, oneOf(encryptNames...))
	}
	return c, nil
}

// parseKeyTransport reads key_transport; cms.ParseKeyTransport also reads "rsa-oaep" (SHA-1)
// and the "-mgf1-<hash>" forms for a partner whose MGF1 digest differs from its OAEP digest.
func parseKeyTransport(s string) (cms.KeyTransport, error) {
	k, err := cms.ParseKeyTransport(s)
	if err != nil {
		return cms.KeyTransport{}, fmt.Errorf("%q is not %s", s, oneOf(keyTransportNames...))
	}
	return k, nil
}

func parseCompress(s string) (as2.Compression, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none":
		return as2.NoCompression, nil
	case "before-sign":
		return as2.CompressBeforeSign, nil
	case "after-sign":
		return as2.CompressAfterSign, nil
	}
	return 0, fmt.Errorf("%q is not %s", s, oneOf(compressNames...))
}

func parseMDN(s string) (as2.MDNMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "sync":
		return as2.MDNSync, nil
	case "async":
		return as2.MDNAsync, nil
	case "none":
		return as2.MDNNone, nil
	}
	return 0, fmt.Errorf("%q is not %s", s, oneOf(mdnNames...))
}
