package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/as2gate/as2gate/internal/store"
)

// accountView is the Account page: the sessions of one user (the viewer's own, or any
// user's for an admin) and, on one's own page, the password form.
type accountView struct {
	layout
	Of       string // whose sessions
	Own      bool
	Sessions []sessionView
	Notice   string
	Error    string
}

type sessionView struct {
	ID        int64
	Current   bool
	CreatedAt time.Time
	LastSeen  time.Time
	ExpiresAt time.Time
	Address   string
	UserAgent string
}

// maxAccountForm bounds the account and user forms' bodies.
const maxAccountForm = 8 << 10

var accountNotices = map[string]string{
	"password": "Your password was changed; every other session of yours has ended.",
	"ended":    "The session was ended.",
}

// account serves GET /account?user=NAME.
func (c *Console) account(w http.ResponseWriter, r *http.Request, s *session) {
	of := r.URL.Query().Get("user")
	if of == "" {
		of = s.user
	}
	v := accountView{Notice: accountNotices[r.URL.Query().Get("done")]}
	c.renderAccount(w, r, s, of, http.StatusOK, &v)
}

func (c *Console) renderAccount(w http.ResponseWriter, r *http.Request, s *session, of string, status int, v *accountView) {
	own := strings.EqualFold(of, s.user)
	if !own && !s.may(store.RoleAdmin) {
		c.fail(w, http.StatusForbidden, s.user, "Only an admin can see another user's sessions.")
		return
	}
	if !own {
		if _, err := c.cfg.Store.GetUser(r.Context(), of); errors.Is(err, store.ErrNotFound) {
			c.fail(w, http.StatusNotFound, s.user, fmt.Sprintf("There is no user %q.", of))
			return
		}
	}
	list, err := c.cfg.Store.ListSessions(r.Context(), of)
	if err != nil {
		c.storeFailed(w, s, err)
		return
	}
	v.Own, v.Of = own, of
	v.Title = "Account"
	if !own {
		v.Title = "Sessions of " + of
	}
	now := c.cfg.NowFunc()
	for _, ss := range list {
		if !now.Before(ss.ExpiresAt) {
			continue
		}
		v.Sessions = append(v.Sessions, sessionView{ID: ss.ID, Current: ss.ID == s.id, CreatedAt: ss.CreatedAt, LastSeen: ss.LastSeen,
			ExpiresAt: ss.ExpiresAt, Address: ss.Address, UserAgent: ss.UserAgent})
	}
	c.render(w, status, "account", *v)
}

// endSession serves POST /account/sessions/{id}/end: one's own session, or any user's
// for an admin. Ending the session in use signs this browser out.
func (c *Console) endSession(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.fail(w, http.StatusBadRequest, s.user, fmt.Sprintf("Session %q is not a positive number.", r.PathValue("id")))
		return
	}
	ctx := r.Context()
	ss, err := c.cfg.Store.GetSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		c.fail(w, http.StatusNotFound, s.user, fmt.Sprintf("There is no session %d; it may have ended already.", id))
		return
	}
	if err != nil {
		c.storeFailed(w, s, err)
		return
	}
	own := strings.EqualFold(ss.User, s.user)
	if !own && !s.may(store.RoleAdmin) {
		c.cfg.Log.Warn("console: refused to end another user's session", "user", s.user, "session_of", ss.User)
		c.fail(w, http.StatusForbidden, s.user, "This session belongs to another user; only an admin can end it.")
		return
	}
	if err := c.cfg.Store.DeleteSession(ctx, id); err != nil && !errors.Is(err, store.ErrNotFound) {
		c.storeFailed(w, s, err)
		return
	}
	c.cfg.Log.Info("console: session ended", "user", s.user, "session_of", ss.User, "session", id)
	if id == s.id {
		c.clearSessionCookie(w)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	back := "/account?done=ended"
	if !own {
		back = "/account?" + url.Values{"user": {ss.User}, "done": {"ended"}}.Encode()
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// changeOwnPassword serves POST /account/password: the current password, then the new one
// twice. Every session of the user ends, and this browser gets a new one.
func (c *Console) changeOwnPassword(w http.ResponseWriter, r *http.Request, s *session) {
	r.Body = http.MaxBytesReader(w, r.Body, maxAccountForm)
	if err := r.ParseForm(); err != nil {
		c.fail(w, http.StatusBadRequest, s.user, "The form could not be read.")
		return
	}
	again := func(status int, msg string) {
		c.renderAccount(w, r, s, s.user, status, &accountView{Error: msg})
	}
	ctx := r.Context()
	u, err := c.cfg.Store.GetUser(ctx, s.user)
	if err != nil {
		c.storeFailed(w, s, err)
		return
	}
	if !c.throttle.take(r.RemoteAddr) {
		w.Header().Set("Retry-After", "60")
		again(http.StatusTooManyRequests, "Too many wrong passwords from this address: wait a minute and try again.")
		return
	}
	c.throttle.slots <- struct{}{}
	wrong := bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(r.PostForm.Get("current"))) != nil
	<-c.throttle.slots
	if wrong {
		again(http.StatusUnauthorized, "The current password is wrong.")
		return
	}
	c.throttle.refund(r.RemoteAddr)
	pw := r.PostForm.Get("new")
	if pw != r.PostForm.Get("repeat") {
		again(http.StatusBadRequest, "The two new passwords differ.")
		return
	}
	hash, err := HashPassword(pw)
	if errors.Is(err, ErrWeakPassword) {
		again(http.StatusBadRequest, "The new password was refused: "+strings.TrimPrefix(err.Error(), ErrWeakPassword.Error()+": ")+".")
		return
	}
	if err != nil {
		c.storeFailed(w, s, err)
		return
	}
	if err := c.cfg.Store.SetUserPassword(ctx, u.Name, hash); err != nil {
		c.storeFailed(w, s, err)
		return
	}
	c.cfg.Log.Info("console: password changed; the user's sessions ended", "user", u.Name)
	token, ss, err := c.startSession(ctx, r, u.Name, hash)
	if err != nil {
		c.cfg.Log.Error("console: new session after a password change", "user", u.Name, "err", err)
		c.clearSessionCookie(w)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	c.setSessionCookie(w, token, ss.ExpiresAt)
	http.Redirect(w, r, "/account?done=password", http.StatusSeeOther)
}
