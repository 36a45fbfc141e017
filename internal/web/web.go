// Package web is the gateway's console: server-rendered pages on the admin listener for the
// people who run it. Templates and static files are embedded and parsed at start-up; every
// page renders from its own view struct; each handler lives in its own file.
//
// The console reads the store directly (it never calls the REST API over HTTP) and acts on
// messages through the same service the API uses (outbound.Actions). Users sign in with a
// name and password and have a role (admin, operator, viewer; see authAs). Sessions are kept
// in the database as hashes of their ids, so they survive a restart and hold on every node
// that shares the database. Every
// state-changing request passes http.CrossOriginProtection, and the session cookie is
// HttpOnly and SameSite=Lax.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/as2gate/as2gate/internal/outbound"
	"github.com/as2gate/as2gate/internal/payload"
	"github.com/as2gate/as2gate/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// DefaultSessionTTL is how long a session lasts after sign-in.
const DefaultSessionTTL = 12 * time.Hour

// Actions are the operator's actions on messages (outbound.Actions). Each returns the
// message as it is afterwards (Resend and Replay: the new or requeued message), or an error
// that is store.ErrConflict when the message's state does not allow the action.
type Actions interface {
	RetryNow(ctx context.Context, id int64) (*store.Message, error)
	Stop(ctx context.Context, id int64) (*store.Message, error)
	Retry(ctx context.Context, id int64, newMessageID bool) (*store.Message, error)
	Resend(ctx context.Context, id int64) (*store.Message, error)
	Replay(ctx context.Context, id int64) (*store.Message, error)
	// Delete removes a message (the API's delete); store.ErrConflict, or an error that
	// wraps it, while the message is being sent.
	Delete(ctx context.Context, id int64) (*store.Message, error)
}

// Config configures the console.
type Config struct {
	// Store is read for the pages and keeps the users. Required.
	Store store.Store
	// Payloads serves the file downloads. Required.
	Payloads payload.Store
	// Actions are the message actions; nil hides their buttons and refuses their routes.
	Actions Actions
	// Submit accepts a message from the compose page (outbound.Worker.Submit with the
	// gateway's router); nil hides the page. SendChoices lists the form's partners and
	// profiles, SpoolDir holds uploads while the form is read ("" is the system's), and
	// MaxUpload bounds the form's body (0 means 1 GiB).
	Submit      func(ctx context.Context, s outbound.Submission) (*store.Message, error)
	SendChoices func(ctx context.Context) SendChoices
	SpoolDir    string
	MaxUpload   int64
	// Partners are the configured partners and stations for the partners page; nil shows
	// that the gateway has none to show.
	Partners Partners
	// Entries changes the partners, stations and profiles kept in the database; nil shows
	// them read-only.
	Entries Entries
	// Secure marks the session cookie Secure: set it when the admin listener serves TLS.
	Secure bool
	// SessionTTL is how long a session lasts; 0 means DefaultSessionTTL.
	SessionTTL time.Duration
	// NowFunc is the clock of session expiry; nil means time.Now.
	NowFunc func() time.Time
	Log     *slog.Logger
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("web: no store")
	case c.Payloads == nil:
		return errors.New("web: no payload store")
	case c.MaxUpload < 0:
		return fmt.Errorf("web: negative upload limit %d", c.MaxUpload)
	case c.SessionTTL < 0:
		return fmt.Errorf("web: negative session lifetime %v", c.SessionTTL)
	}
	return nil
}

// Console serves the pages.
type Console struct {
	cfg   Config
	pages map[string]*template.Template
	// dummyHash is compared against when a sign-in names an unknown user: a bcrypt hash of
	// a random password, made at start.
	dummyHash []byte
	throttle  *throttle
}

// New parses the templates and returns the console.
func New(cfg Config) (*Console, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.MaxUpload == 0 {
		cfg.MaxUpload = defaultMaxUpload
	}
	if cfg.NowFunc == nil {
		cfg.NowFunc = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	dummy, err := bcrypt.GenerateFromPassword(randomBytes(32), bcrypt.DefaultCost)
	if err != nil {
		return nil, fmt.Errorf("web: hashing: %w", err)
	}
	return &Console{cfg: cfg, pages: pages, dummyHash: dummy,
		throttle: newThrottle(cfg.NowFunc)}, nil
}

// Handler returns the console's routes. Every request passes the cross-origin check, so a
// form POSTed from another site is refused before it reaches a handler.
func (c *Console) Handler() http.Handler {
	static, _ := fs.Sub(staticFS, "static") // the directory is embedded above; Sub cannot fail
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /login", c.loginForm)
	mux.HandleFunc("POST /login", c.login)
	mux.Handle("POST /logout", c.authAs(store.RoleViewer, c.logout))
	mux.Handle("GET /account", c.auth(c.account))
	mux.Handle("POST /account/password", c.authAs(store.RoleViewer, c.changeOwnPassword))
	mux.Handle("POST /account/sessions/{id}/end", c.authAs(store.RoleViewer, c.endSession))
	mux.Handle("GET /users", c.authAs(store.RoleAdmin, c.users))
	mux.Handle("POST /users", c.authAs(store.RoleAdmin, c.createUser))
	mux.Handle("POST /users/{name}/role", c.authAs(store.RoleAdmin, c.setRole))
	mux.Handle("POST /users/{name}/password", c.authAs(store.RoleAdmin, c.resetPassword))
	mux.Handle("POST /users/{name}/delete", c.authAs(store.RoleAdmin, c.deleteUser))
	mux.Handle("POST /messages/delete", c.auth(c.bulkDelete))
	mux.Handle("GET /{$}", c.auth(func(w http.ResponseWriter, r *http.Request, _ *session) {
		http.Redirect(w, r, "/messages?box=outbox", http.StatusSeeOther)
	}))
	mux.Handle("GET /messages", c.auth(c.boxes))
	mux.Handle("GET /messages/{id}", c.auth(c.message))
	mux.Handle("GET /messages/{id}/files/{n}", c.auth(c.download))
	mux.Handle("POST /messages/{id}/{action}", c.auth(c.action))
	mux.Handle("GET /compose", c.authAs(store.RoleOperator, c.composeForm))
	mux.Handle("POST /compose", c.auth(c.compose))
	mux.Handle("GET /dashboard", c.auth(c.dashboard))
	mux.Handle("GET /failures", c.auth(c.failures))
	mux.Handle("GET /timeline", c.auth(c.timeline))
	mux.Handle("GET /partners", c.auth(c.partners))
	c.entryRoutes(mux)
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "This form came from another site and was refused (cross-origin request).", http.StatusForbidden)
	}))
	return securityHeaders(cop.Handler(mux))
}

// securityHeaders keeps the pages out of frames and limits them to their own scripts and
// styles.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; form-action 'self'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}
