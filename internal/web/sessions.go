package web

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// sessionCookie names the cookie that carries the session id.
const sessionCookie = "as2gate_session"

// session is one signed-in user.
type session struct {
	user    string
	expires time.Time
}

// sessions are kept in memory: a restart signs everyone out, which is acceptable for a
// console on one node.
type sessions struct {
	ttl time.Duration
	now func() time.Time

	mu   sync.Mutex
	byID map[string]*session
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{ttl: ttl, now: now, byID: make(map[string]*session)}
}

// create starts a session for user and returns its id: 32 random bytes, so that an id
// cannot be guessed.
func (s *sessions) create(user string) (string, *session) {
	id := base64.RawURLEncoding.EncodeToString(randomBytes(32))
	now := s.now()
	ss := &session{user: user, expires: now.Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Expired sessions go when a new one starts, so the map stays as small as the number of
	// people signed in.
	for k, v := range s.byID {
		if !now.Before(v.expires) {
			delete(s.byID, k)
		}
	}
	s.byID[id] = ss
	return id, ss
}

// get returns the live session with this id, or nil.
func (s *sessions) get(id string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.byID[id]
	if ss == nil {
		return nil
	}
	if !s.now().Before(ss.expires) {
		delete(s.byID, id)
		return nil
	}
	return ss
}

// end forgets the session with this id.
func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
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

// auth runs next with the request's session, or sends the browser to the sign-in page and
// back to this page afterwards.
func (c *Console) auth(next sessionHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ss *session
		if ck, err := r.Cookie(sessionCookie); err == nil {
			ss = c.sessions.get(ck.Value)
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
		next(w, r, ss)
	})
}

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
