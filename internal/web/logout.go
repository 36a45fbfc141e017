package web

import (
	"errors"
	"net/http"

	"github.com/as2gate/as2gate/internal/store"
)

// logout serves POST /logout: it ends the session on the server and in the browser.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := c.cfg.Store.DeleteSession(r.Context(), s.id); err != nil && !errors.Is(err, store.ErrNotFound) {
		c.cfg.Log.Error("console sign-out", "user", s.user, "err", err)
		c.fail(w, http.StatusInternalServerError, s.user, "The session could not be ended; the log has the details.")
		return
	}
	c.clearSessionCookie(w)
	c.cfg.Log.Info("console sign-out", "user", s.user)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
