package web

import "net/http"

// logout serves POST /logout: it ends the session on the server and in the browser.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if ck, err := r.Cookie(sessionCookie); err == nil {
		c.sessions.end(ck.Value)
	}
	c.clearSessionCookie(w)
	c.cfg.Log.Info("console sign-out", "user", s.user)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
