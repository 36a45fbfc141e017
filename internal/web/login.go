package web

import (
	"errors"
	"net/http"

	"golang.org/x/crypto/bcrypt"

	"github.com/as2gate/as2gate/internal/store"
)

// loginView is the sign-in page.
type loginView struct {
	layout
	Next  string // where to go after signing in
	Name  string // the name typed, kept after a failure
	Error string
}

// maxLoginForm bounds the sign-in form's body.
const maxLoginForm = 8 << 10

// loginForm serves GET /login.
func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	next := r.URL.Query().Get("next")
	if !localPath(next) {
		next = ""
	}
	c.render(w, http.StatusOK, "login", loginView{layout: layout{Title: "Sign in"}, Next: next})
}

// login serves POST /login: it checks the password and starts a session.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "The sign-in form could not be read.", http.StatusBadRequest)
		return
	}
	name, password, next := r.PostForm.Get("name"), r.PostForm.Get("password"), r.PostForm.Get("next")
	if !localPath(next) {
		next = "/messages?box=outbox"
	}
	if !c.throttle.take(r.RemoteAddr) {
		c.cfg.Log.Warn("console sign-in throttled", "user", name, "remote", r.RemoteAddr)
		w.Header().Set("Retry-After", "60")
		c.render(w, http.StatusTooManyRequests, "login", loginView{
			layout: layout{Title: "Sign in"}, Next: r.PostForm.Get("next"), Name: name,
			Error: "Too many failed sign-ins from this address: wait a minute and try again.",
		})
		return
	}
	u, err := c.cfg.Store.GetUser(r.Context(), name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		c.cfg.Log.Error("reading a console user", "user", name, "err", err)
		c.fail(w, http.StatusInternalServerError, "", "The user list cannot be read; the log has the details.")
		return
	}
	hash := c.dummyHash
	if u != nil {
		hash = u.PasswordHash
		if cost, err := bcrypt.Cost(hash); err != nil || cost > MaxBcryptCost {
			// A hash set outside the console could make every sign-in of this name cost
			// seconds of CPU; refuse it rather than compare.
			c.cfg.Log.Error("console user's password hash is unusable; reset it with as2gate users passwd", "user", u.Name, "cost", cost, "err", err)
			hash = c.dummyHash
			u = nil
		}
	}
	// An unknown name costs the same bcrypt comparison as a wrong password, so the answer's
	// timing does not tell which names exist.
	c.throttle.slots <- struct{}{} // bound the bcrypt work running at once
	wrong := bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil
	<-c.throttle.slots
	if wrong || u == nil {
		c.cfg.Log.Warn("console sign-in refused", "user", name, "remote", r.RemoteAddr)
		c.render(w, http.StatusUnauthorized, "login", loginView{
			layout: layout{Title: "Sign in"}, Next: r.PostForm.Get("next"), Name: name,
			Error: "The name or the password is wrong.",
		})
		return
	}
	c.throttle.refund(r.RemoteAddr)
	id, ss, err := c.startSession(r.Context(), r, u.Name, u.PasswordHash)
	if errors.Is(err, store.ErrConflict) {
		// The password changed while it was being checked: the old one opens nothing.
		c.cfg.Log.Warn("console sign-in refused: the password changed meanwhile", "user", u.Name, "remote", r.RemoteAddr)
		c.render(w, http.StatusUnauthorized, "login", loginView{
			layout: layout{Title: "Sign in"}, Next: r.PostForm.Get("next"), Name: name,
			Error: "The name or the password is wrong.",
		})
		return
	}
	if err != nil {
		c.cfg.Log.Error("console sign-in", "user", u.Name, "err", err)
		c.fail(w, http.StatusInternalServerError, "", "The session could not be stored; the log has the details.")
		return
	}
	c.setSessionCookie(w, id, ss.ExpiresAt)
	c.cfg.Log.Info("console sign-in", "user", u.Name, "remote", r.RemoteAddr)
	http.Redirect(w, r, next, http.StatusSeeOther)
}
