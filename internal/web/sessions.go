package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// sessionCookie names the cookie that carries the session id.
const sessionCookie = "as2gate_session"

// touchEvery is how stale a session's last-seen time may get before a request records it
// again: a page view does not cost a database write.
const touchEvery = time.Minute

// maxUserAgent bounds the User-Agent kept with a session.
const maxUserAgent = 256

// session is one signed-in user, as read from the store for this request.
type session struct {
	id   int64
	user string
	role string
}

// may reports whether the session's role reaches need (admin > operator > viewer).
func (s *session) may(need string) bool { return rank(s.role) >= rank(need) }

func rank(role string) int {
	switch role {
	case store.RoleAdmin:
		return 3
	case store.RoleOperator:
		return 2
	case store.RoleViewer:
		return 1
	}
	return 0
}

// tokenHash is what the store keeps of a session id: its SHA-256, so that reading the
// database does not hand out sessions.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// startSession signs user in: a new id of 32 random bytes (it cannot be guessed), its
// hash stored with the client's address and browser. Expired sessions go when a new one
// starts, so the table stays as small as the number of people signed in.
//
// verified is the password hash the password was checked against: the session is stored
// only while it is still the user's (store.Session.PasswordHash).
func (c *Console) startSession(ctx context.Context, r *http.Request, user string, verified []byte) (string, *store.Session, error) {
	now := c.cfg.NowFunc()
	if _, err := c.cfg.Store.DeleteExpiredSessions(ctx, now); err != nil {
		c.cfg.Log.Warn("console: removing expired sessions", "err", err)
	}
	token := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	ua := r.UserAgent()
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	ss := &store.Session{TokenHash: tokenHash(token), User: user, CreatedAt: now, ExpiresAt: now.Add(c.cfg.SessionTTL),
		Address: clientAddr(r), UserAgent: ua, PasswordHash: verified}
	if err := c.cfg.Store.CreateSession(ctx, ss); err != nil {
		return "", nil, fmt.Errorf("web: starting a session for %q: %w", user, err)
	}
	return token, ss, nil
}

// clientAddr is the request's remote host without the port.
func clientAddr(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// lookup returns the live session the request's cookie names, or nil. An expired session
// is removed when it is seen.
func (c *Console) lookup(r *http.Request) (*session, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil, nil
	}
	ctx := r.Context()
	ss, err := c.cfg.Store.FindSession(ctx, tokenHash(ck.Value))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	now := c.cfg.NowFunc()
	if !now.Before(ss.ExpiresAt) {
		if err := c.cfg.Store.DeleteSession(ctx, ss.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			c.cfg.Log.Warn("console: removing an expired session", "err", err)
		}
		return nil, nil
	}
	if now.Sub(ss.LastSeen) >= touchEvery {
		// Best effort: a failed write costs the Account page some precision, not the request.
		if err := c.cfg.Store.TouchSession(ctx, ss.ID, now); err != nil && !errors.Is(err, store.ErrNotFound) {
			c.cfg.Log.Warn("console: recording a session's last use", "err", err)
		}
	}
	return &session{id: ss.ID, user: ss.User, role: ss.Role}, nil
}

// randomBytes returns n bytes from crypto/rand, which never fails on the platforms Go
// supports.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// sessionHandler is a handler that needs a signed-in user.
type sessionHandler func(w http.ResponseWriter, r *http.Request, s *session)

// auth runs next for any signed-in user on a read (GET, HEAD) and for operators and admins
// on anything else: a viewer cannot change state through any route, including routes
// added later, unless the route says so with authAs.
func (c *Console) auth(next sessionHandler) http.Handler {
	return c.authAs("", next)
}

// authAs runs next for a signed-in user whose role reaches need; "" means the default of
// auth. Anyone else is sent to sign in (no session) or shown why not (403).
func (c *Console) authAs(need string, next sessionHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ss, err := c.lookup(r)
		if err != nil {
			c.cfg.Log.Error("console: reading a session", "err", err)
			c.fail(w, http.StatusInternalServerError, "", "The sessions cannot be read; the log has the details.")
			return
		}
		if ss == nil {
			if r.Method != http.MethodGet {
				http.Error(w, "Your session has ended; sign in again.", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		sw := &sessionWriter{ResponseWriter: w, s: ss}
		want := need
		if want == "" {
			want = store.RoleOperator
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				want = store.RoleViewer
			}
		}
		if !ss.may(want) {
			c.cfg.Log.Warn("console: refused for the user's role", "user", ss.user, "role", ss.role, "method", r.Method, "path", r.URL.Path)
			c.fail(sw, http.StatusForbidden, ss.user, forbidden(ss.role, want))
			return
		}
		next(sw, r, ss)
	})
}

// forbidden says why a role may not do what it asked.
func forbidden(role, need string) string {
	switch need {
	case store.RoleAdmin:
		return fmt.Sprintf("Managing users is for admins; your role is %s. An admin can change your role on the Users page.", role)
	default:
		return fmt.Sprintf("Your role is %s: you can read everything but change nothing. An admin can make you an operator on the Users page.", role)
	}
}

// sessionWriter carries the request's session to render, so that every page's frame
// shows the user and the links of the user's role.
type sessionWriter struct {
	http.ResponseWriter
	s *session
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *sessionWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ReadFrom keeps the connection's own ReadFrom (sendfile) for downloads.
func (w *sessionWriter) ReadFrom(r io.Reader) (int64, error) { return io.Copy(w.ResponseWriter, r) }

// setSessionCookie hands the browser its session id.
func (c *Console) setSessionCookie(w http.ResponseWriter, id string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/", Expires: expires,
		HttpOnly: true, Secure: c.cfg.Secure, SameSite: http.SameSiteLaxMode,
	})
}

// clearSessionCookie tells the browser to drop its session id.
func (c *Console) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: c.cfg.Secure, SameSite: http.SameSiteLaxMode,
	})
}
