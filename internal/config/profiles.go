package config

import (
	"net/http"
	"strings"
)

// Profile is a send profile (profiles): a named set of extra HTTP headers a submission may
// ask for. When a message is packed its headers are the AS2 headers, then the partner's
// headers, then the profile's, the profile winning where both set the same header.
type Profile struct {
	Name string // name: what a submission names (the profile form field, send --profile)
	// Header holds the HTTP headers the profile adds (headers).
	Header http.Header
}

// rawProfile is a profiles item in the file.
type rawProfile struct {
	Name    string            `yaml:"name"`
	Headers map[string]string `yaml:"headers"`
}

// Profile returns the send profile with the name, or nil.
func (c *Config) Profile(name string) *Profile {
	for _, p := range c.Profiles {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// ProfileNames returns the names of the send profiles in the file's order.
func (c *Config) ProfileNames() []string {
	names := make([]string, 0, len(c.Profiles))
	for _, p := range c.Profiles {
		names = append(names, p.Name)
	}
	return names
}

// applyProfiles sets c.Profiles from the file's profiles list.
func (c *Config) applyProfiles(raw []*rawProfile) {
	for _, rp := range raw {
		if rp == nil {
			rp = &rawProfile{} // an empty item: its problems are reported under its index
		}
		c.Profiles = append(c.Profiles, &Profile{Name: rp.Name, Header: headerOf(rp.Headers)})
	}
}

// headerOf turns a headers block of the file into an http.Header; nil stays nil.
func headerOf(m map[string]string) http.Header {
	if m == nil {
		return nil
	}
	h := make(http.Header, len(m))
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

func (c *Config) validateProfiles(ps *problems) {
	first := map[string]int{}
	for i, p := range c.Profiles {
		key := keyf("profiles[%d]", i)
		switch name := p.Name; {
		case strings.TrimSpace(name) == "":
			ps.add(key+".name", "required: the name a submission gives to use the profile")
		case name != strings.TrimSpace(name) || strings.IndexFunc(name, isControl) >= 0:
			ps.add(key+".name", "%q has a control character or a leading or trailing space", name)
		default:
			if j, dup := first[name]; dup {
				ps.add(key+".name", "%q is already the name of profiles[%d]", name, j)
			} else {
				first[name] = i
			}
		}
		if len(p.Header) == 0 {
			ps.add(key+".headers", "required: the HTTP headers the profile adds, e.g. {X-Biz-Type: invoice}")
		}
		validateHeaders(key+".headers", p.Header, ps)
	}
}

func isControl(r rune) bool { return r < ' ' || r == 0x7f }

// validateHeaders checks extra HTTP headers (a partner's or a profile's) under key: valid
// field names, none the gateway sets itself, and no value that could end the header.
func validateHeaders(key string, h http.Header, ps *problems) {
	for name, vals := range h {
		hk := key + "." + name
		if !validHeaderName(name) {
			ps.add(hk, "%q is not an HTTP header name (letters, digits and !#$%%&'*+-.^_`|~ only)", name)
		} else if why, ok := reservedHeader(name); ok {
			ps.add(hk, "the gateway sets %s itself: %s", name, why)
		}
		for _, v := range vals {
			if strings.ContainsAny(v, "\r\n\x00") {
				ps.add(hk, "the value has a line break or NUL, which would end the header")
			}
		}
	}
}

// reservedHeader reports whether the gateway writes the header from other settings, and why.
func reservedHeader(name string) (string, bool) {
	name = http.CanonicalHeaderKey(name)
	if why, ok := reservedHeaders[name]; ok {
		return why, true
	}
	// RFC 3798 and RFC 4130 define the whole family; a partner reading any of them as a
	// receipt request would answer a request we never made.
	if strings.HasPrefix(name, "Disposition-Notification-") {
		return "it follows mdn", true
	}
	return "", false
}
