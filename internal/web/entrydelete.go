package web

import (
	"net/http"
	"net/url"
	"strconv"
)

// entryDelete serves POST /{partners,stations,profiles}/{name}/delete, which the list pages
// ask to confirm first.
func (c *Console) entryDelete(w http.ResponseWriter, r *http.Request, s *session) {
	k, name := kindOf(r), r.PathValue("name")
	rev, _ := strconv.ParseInt(r.PostFormValue("revision"), 10, 64)
	if err := c.cfg.Entries.Delete(r.Context(), k.Kind, name, rev); err != nil {
		c.entryFailed(w, s, err)
		return
	}
	c.cfg.Log.Info("console: configuration entry deleted", "kind", k.Kind, "name", name, "user", s.user)
	http.Redirect(w, r, "/"+listPage(k)+"?deleted="+url.QueryEscape(name), http.StatusSeeOther)
}
