package web

import (
	"errors"
	"net/http"
)

// entryView is the form that adds or edits a partner, station or send profile.
type entryView struct {
	layout
	K        kindInfo
	New      bool
	Name     string
	Document string // the entry's YAML, for editing
	Revision int64
	Problems []string
	// The fields of a new partner.
	Stations                 []string
	AS2ID, URL, Station      string
	Sign, Encrypt, MDN       string
	Signs, Encrypts, MDNs    []string
	ProfileName, HeaderLines string // a new profile
}

// The choices of a new partner's form; the file's keys take the rest (docs/config.md).
var (
	signChoices    = []string{"sha256", "sha384", "sha512", "sha1", "none"}
	encryptChoices = []string{"aes256-cbc", "aes128-cbc", "aes192-cbc", "aes128-gcm", "aes256-gcm", "3des", "none"}
	mdnChoices     = []string{"sync", "async", "none"}
)

// entryForm serves GET /{partners,stations,profiles}/new and /{...}/{name}/edit.
func (c *Console) entryForm(w http.ResponseWriter, r *http.Request, s *session) {
	k := kindOf(r)
	v := c.newEntryView(r, s, k)
	if name := r.PathValue("name"); name != "" {
		doc, rev, err := c.cfg.Entries.Entry(r.Context(), k.Kind, name)
		if err != nil {
			var ee *EntryError
			if errors.As(err, &ee) {
				c.fail(w, ee.Status, s.user, ee.Msg)
				return
			}
			c.entryFailed(w, s, err)
			return
		}
		v.New, v.Name, v.Document, v.Revision = false, name, doc, rev
		v.Title = "Edit " + k.Title + " " + name
	}
	c.render(w, http.StatusOK, "entry", v)
}

// newEntryView is the empty form of a new entry of kind k.
func (c *Console) newEntryView(r *http.Request, s *session, k kindInfo) entryView {
	v := entryView{layout: layout{Title: "Add a " + k.Title, User: s.user}, K: k, New: true,
		Signs: signChoices, Encrypts: encryptChoices, MDNs: mdnChoices,
		Sign: signChoices[0], Encrypt: encryptChoices[0], MDN: mdnChoices[0]}
	if k.Kind == KindPartner && c.cfg.Partners != nil {
		if ss, err := c.cfg.Partners.StationSettings(r.Context()); err == nil {
			for _, st := range ss {
				v.Stations = append(v.Stations, st.AS2ID)
			}
		}
	}
	return v
}
