package web

import (
	"net/http"
	"net/url"
	"strings"
)

// identityUpload serves POST /stations (a new station: as2_id and its identity) and POST
// /stations/{name}/identity (a new identity for a station kept in the database).
func (c *Console) identityUpload(w http.ResponseWriter, r *http.Request, s *session) {
	if err := parseEntryForm(w, r); err != nil {
		c.fail(w, http.StatusBadRequest, s.user, "The form cannot be read: "+err.Error())
		return
	}
	name := r.PathValue("name")
	if name == "" {
		name = strings.TrimSpace(r.PostFormValue("as2_id"))
		if name == "" {
			c.fail(w, http.StatusBadRequest, s.user, "as2_id: required, the station's AS2 id.")
			return
		}
	}
	one := func(field string) ([]byte, bool) {
		files, err := formFiles(r, field)
		if err != nil || len(files) == 0 {
			return nil, err == nil
		}
		return files[0], true
	}
	var id Identity
	var ok1, ok2, ok3 bool
	id.PKCS12, ok1 = one("pkcs12")
	id.Cert, ok2 = one("cert")
	id.Key, ok3 = one("key")
	id.Password = r.PostFormValue("password")
	switch {
	case !ok1 || !ok2 || !ok3:
		c.fail(w, http.StatusBadRequest, s.user, "The uploaded files cannot be read.")
		return
	case id.PKCS12 == nil && id.Key == nil:
		c.fail(w, http.StatusBadRequest, s.user, "Choose a PKCS#12 file, or a certificate and its key.")
		return
	case id.PKCS12 != nil && (id.Cert != nil || id.Key != nil):
		c.fail(w, http.StatusBadRequest, s.user, "Choose either a PKCS#12 file, or a certificate and its key, not both.")
		return
	}
	if err := c.cfg.Entries.SetIdentity(r.Context(), name, id); err != nil {
		c.entryFailed(w, s, err)
		return
	}
	c.cfg.Log.Info("console: station identity set", "station", name, "user", s.user)
	http.Redirect(w, r, "/partners?saved="+url.QueryEscape(name), http.StatusSeeOther)
}
