package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// usersView is the Users page (admins only).
type usersView struct {
	layout
	Users  []userView
	Roles  []string
	Notice string
	// Password is a generated password, shown once with the notice.
	Password string
	Error    string
	// The create form's choices, kept when it comes back with an error.
	Name, Role string
}

type userView struct {
	Name      string
	Role      string
	CreatedAt time.Time
	Self      bool
}

// maxUserName bounds a user's name.
const maxUserName = 64

// users serves GET /users.
func (c *Console) users(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	v := &usersView{}
	switch name := q.Get("name"); q.Get("done") {
	case "role":
		v.Notice = fmt.Sprintf("The role of %s was changed.", name)
	case "removed":
		v.Notice = fmt.Sprintf("%s was removed and its sessions ended.", name)
	}
	c.renderUsers(w, r, s, http.StatusOK, v)
}

func (c *Console) renderUsers(w http.ResponseWriter, r *http.Request, s *session, status int, v *usersView) {
	list, err := c.cfg.Store.ListUsers(r.Context())
	if err != nil {
		c.storeFailed(w, s, err)
		return
	}
	v.Title, v.Roles = "Users", store.Roles
	if v.Role == "" {
		v.Role = store.RoleOperator
	}
	for _, u := range list {
		v.Users = append(v.Users, userView{Name: u.Name, Role: u.Role, CreatedAt: u.CreatedAt, Self: strings.EqualFold(u.Name, s.user)})
	}
	c.render(w, status, "users", *v)
}

// userForm reads a users form; false when it could not be read (answered).
func (c *Console) userForm(w http.ResponseWriter, r *http.Request, s *session) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxAccountForm)
	if err := r.ParseForm(); err != nil {
		c.fail(w, http.StatusBadRequest, s.user, "The form could not be read.")
		return false
	}
	return true
}

// ValidUserName tells what is wrong with a new user's name, or nil. Names are kept to
// letters, digits and . _ - @, so that they sit in a URL path and a log line as they are.
func ValidUserName(name string) error {
	switch {
	case name == "":
		return errors.New("the user needs a name")
	case len(name) > maxUserName:
		return fmt.Errorf("the name is %d bytes long; at most %d", len(name), maxUserName)
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@", r)
		if !ok {
			return fmt.Errorf("the name %q has %q; use letters, digits and . _ - @", name, r)
		}
	}
	return nil
}

// newPassword hashes the form's password, or generates one when it is empty (returned to
// be shown once).
func newPassword(pw string) (hash []byte, generated string, err error) {
	if pw == "" {
		generated = GeneratePassword()
		pw = generated
	}
	hash, err = HashPassword(pw)
	return hash, generated, err
}

// passwordRefusal is a refused password's reason for the page.
func passwordRefusal(err error) string {
	return "The password was refused: " + strings.TrimPrefix(err.Error(), ErrWeakPassword.Error()+": ") + "."
}

// createUser serves POST /users: name, role, and a password or none (then one is
// generated and shown once).
func (c *Console) createUser(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.userForm(w, r, s) {
		return
	}
	name, role := strings.TrimSpace(r.PostForm.Get("name")), r.PostForm.Get("role")
	again := func(status int, msg string) {
		c.renderUsers(w, r, s, status, &usersView{Error: msg, Name: name, Role: role})
	}
	if err := ValidUserName(name); err != nil {
		again(http.StatusBadRequest, "The name was refused: "+err.Error()+".")
		return
	}
	if !store.ValidRole(role) {
		again(http.StatusBadRequest, fmt.Sprintf("Role %q is not one of %s.", role, strings.Join(store.Roles, ", ")))
		return
	}
	hash, generated, err := newPassword(r.PostForm.Get("password"))
	if errors.Is(err, ErrWeakPassword) {
		again(http.StatusBadRequest, passwordRefusal(err))
		return
	}
	if err != nil {
		c.storeFailed(w, s, err)
		return
	}
	err = c.cfg.Store.CreateUser(r.Context(), &store.User{Name: name, Role: role, PasswordHash: hash})
	if errors.Is(err, store.ErrConflict) {
		again(http.StatusConflict, fmt.Sprintf("There is a user %q already (names ignore case).", name))
		return
	}
	if err != nil {
		c.storeFailed(w, s, err)
		return
	}
	c.cfg.Log.Info("console: user created", "user", s.user, "created", name, "role", role)
	v := &usersView{Notice: fmt.Sprintf("User %s was created with the role %s.", name, role)}
	if generated != "" {
		v.Notice = fmt.Sprintf("User %s was created with the role %s. Its password is shown only this once:", name, role)
		v.Password = generated
	}
	c.renderUsers(w, r, s, http.StatusOK, v)
}

// setRole serves POST /users/{name}/role.
func (c *Console) setRole(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.userForm(w, r, s) {
		return
	}
	name, role := r.PathValue("name"), r.PostForm.Get("role")
	if !store.ValidRole(role) {
		c.renderUsers(w, r, s, http.StatusBadRequest, &usersView{Error: fmt.Sprintf("Role %q is not one of %s.", role, strings.Join(store.Roles, ", "))})
		return
	}
	if !c.userChange(w, r, s, name, c.cfg.Store.SetUserRole(r.Context(), name, role)) {
		return
	}
	c.cfg.Log.Info("console: role changed", "user", s.user, "changed", name, "role", role)
	http.Redirect(w, r, "/users?done=role&name="+urlQueryEscape(name), http.StatusSeeOther)
}

// resetPassword serves POST /users/{name}/password: the given password, or a generated
// one shown once. The user's sessions end.
func (c *Console) resetPassword(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.userForm(w, r, s) {
		return
	}
	name := r.PathValue("name")
	hash, generated, err := newPassword(r.PostForm.Get("password"))
	if errors.Is(err, ErrWeakPassword) {
		c.renderUsers(w, r, s, http.StatusBadRequest, &usersView{Error: passwordRefusal(err)})
		return
	}
	if err != nil {
		c.storeFailed(w, s, err)
		return
	}
	if !c.userChange(w, r, s, name, c.cfg.Store.SetUserPassword(r.Context(), name, hash)) {
		return
	}
	c.cfg.Log.Info("console: password reset; the user's sessions ended", "user", s.user, "changed", name)
	if strings.EqualFold(name, s.user) {
		// One's own sessions ended with the reset, this one included.
		c.clearSessionCookie(w)
	}
	v := &usersView{Notice: fmt.Sprintf("The password of %s was replaced and its sessions ended.", name)}
	if generated != "" {
		v.Notice += " The new password is shown only this once:"
		v.Password = generated
	}
	c.renderUsers(w, r, s, http.StatusOK, v)
}

// deleteUser serves POST /users/{name}/delete: never oneself, never the last admin.
func (c *Console) deleteUser(w http.ResponseWriter, r *http.Request, s *session) {
	name := r.PathValue("name")
	if strings.EqualFold(name, s.user) {
		c.renderUsers(w, r, s, http.StatusConflict, &usersView{Error: "You cannot remove yourself; another admin can."})
		return
	}
	if !c.userChange(w, r, s, name, c.cfg.Store.DeleteUser(r.Context(), name)) {
		return
	}
	c.cfg.Log.Info("console: user removed", "user", s.user, "removed", name)
	http.Redirect(w, r, "/users?done=removed&name="+urlQueryEscape(name), http.StatusSeeOther)
}

// userChange answers a store error of a change to user name; true when there was none.
func (c *Console) userChange(w http.ResponseWriter, r *http.Request, s *session, name string, err error) bool {
	switch {
	case err == nil:
		return true
	case errors.Is(err, store.ErrNotFound):
		c.renderUsers(w, r, s, http.StatusNotFound, &usersView{Error: fmt.Sprintf("There is no user %q.", name)})
	case errors.Is(err, store.ErrConflict):
		c.renderUsers(w, r, s, http.StatusConflict, &usersView{Error: fmt.Sprintf("%s is the last admin: make another user admin first.", name)})
	default:
		c.storeFailed(w, s, err)
	}
	return false
}
