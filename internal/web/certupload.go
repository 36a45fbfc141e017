package web

import (
	"net/http"
	"net/url"
	"strconv"
)

// certificateUpload serves POST /partners/{name}/certificates: certificates added to a
// partner kept in the database.
func (c *Console) certificateUpload(w http.ResponseWriter, r *http.Request, s *session) {
	if err := parseEntryForm(w, r); err != nil {
		c.fail(w, http.StatusBadRequest, s.user, "The form cannot be read: "+err.Error())
		return
	}
	name := r.PathValue("name")
	files, err := formFiles(r, "cert")
	if err != nil {
		c.fail(w, http.StatusBadRequest, s.user, "The certificate cannot be read: "+err.Error())
		return
	}
	if len(files) == 0 {
		c.fail(w, http.StatusBadRequest, s.user, "Choose a certificate file (PEM, DER or PKCS#12).")
		return
	}
	rev, _ := strconv.ParseInt(r.PostFormValue("revision"), 10, 64)
	if err := c.cfg.Entries.AddCertificates(r.Context(), name, files, r.PostFormValue("password"), rev); err != nil {
		c.entryFailed(w, s, err)
		return
	}
	c.cfg.Log.Info("console: partner certificates added", "partner", name, "user", s.user)
	http.Redirect(w, r, "/partners?saved="+url.QueryEscape(name), http.StatusSeeOther)
}
