package web

import (
	"context"
	"net/http"

	"github.com/as2gate/as2gate/internal/store"
)

// Entries changes the partners, stations and send profiles kept in the database; those of
// the configuration file are shown read-only. A change is validated with the file's
// configuration and in effect at once.
type Entries interface {
	// Entry returns the YAML document of a database entry and its revision; an entry of the
	// file, or none, is an *EntryError.
	Entry(ctx context.Context, kind, name string) (doc string, revision int64, err error)
	// Put creates or replaces an entry.
	Put(ctx context.Context, e EntryChange) error
	// Delete removes an entry made at run time.
	Delete(ctx context.Context, kind, name string, revision int64) error
	// AddCertificates adds certificates (PEM, DER or PKCS#12 opened with password) to a
	// partner's.
	AddCertificates(ctx context.Context, partner string, uploads [][]byte, password string, revision int64) error
	// SetIdentity sets a station's identity (a PKCS#12 file, or a certificate and a key),
	// creating the station when it does not exist.
	SetIdentity(ctx context.Context, station string, id Identity) error
	// ProfileSettings returns every send profile.
	ProfileSettings(ctx context.Context) ([]ProfileSettings, error)
}

// Kinds of entries.
const (
	KindPartner = "partner"
	KindStation = "station"
	KindProfile = "profile"
)

// EntryChange is a new or replaced entry.
type EntryChange struct {
	Kind, Name string
	// Document is one item of the configuration file's list, in YAML (or JSON).
	Document string
	// Certificates are uploads added to a new partner's certs.
	Certificates [][]byte
	Password     string
	Create       bool
	Revision     int64
}

// Identity is a station identity as uploaded.
type Identity struct {
	PKCS12, Cert, Key []byte
	Password          string
}

// ProfileSettings is what the profiles page shows of a send profile: the names of its
// headers, never their values.
type ProfileSettings struct {
	Name     string
	Headers  []string
	Source   string // "file" or "database"
	Revision int64
}

// EntryError is a refused change: Status is the answer (400, 404, 409, 422), Problems the
// validation problems, each "key path: message".
type EntryError struct {
	Status   int
	Msg      string
	Problems []string
}

func (e *EntryError) Error() string { return e.Msg }

// kindInfo describes a kind for the pages.
type kindInfo struct {
	Kind, Plural, Title, NameKey string
}

var kinds = map[string]kindInfo{
	"partners": {KindPartner, "partners", "partner", "as2_id"},
	"stations": {KindStation, "stations", "station", "as2_id"},
	"profiles": {KindProfile, "profiles", "send profile", "name"},
}

// entryRoutes adds the pages and forms that change entries. Without an entry source
// (Config.Entries) the routes that change entries answer 501.
func (c *Console) entryRoutes(mux *http.ServeMux) {
	mux.Handle("GET /profiles", c.auth(c.profiles))
	// The forms show an entry's stored document, header values included, which may be
	// credentials: they are for those who may change entries.
	operator := func(h sessionHandler) http.Handler { return c.authAs(store.RoleOperator, c.changesEntries(h)) }
	changing := func(h sessionHandler) http.Handler { return c.auth(c.changesEntries(h)) }
	for plural := range kinds {
		mux.Handle("GET /"+plural+"/new", operator(c.entryForm))
		mux.Handle("GET /"+plural+"/{name}/edit", operator(c.entryForm))
		mux.Handle("POST /"+plural+"/{name}", changing(c.entrySave))
		mux.Handle("POST /"+plural+"/{name}/delete", changing(c.entryDelete))
	}
	mux.Handle("POST /partners", changing(c.entrySave))
	mux.Handle("POST /profiles", changing(c.entrySave))
	mux.Handle("POST /stations", changing(c.identityUpload))
	mux.Handle("POST /stations/{name}/identity", changing(c.identityUpload))
	mux.Handle("POST /partners/{name}/certificates", changing(c.certificateUpload))
}

// changesEntries answers 501 in place of next when the console has no entry source.
func (c *Console) changesEntries(next sessionHandler) sessionHandler {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		if c.cfg.Entries == nil {
			c.fail(w, http.StatusNotImplemented, s.user, "Partners, stations and profiles cannot be changed on this gateway.")
			return
		}
		next(w, r, s)
	}
}

// entryFailed answers a refused or failed change.
func (c *Console) entryFailed(w http.ResponseWriter, s *session, err error) {
	if ee, ok := err.(*EntryError); ok {
		msg := ee.Msg
		for _, p := range ee.Problems {
			msg += "\n" + p
		}
		c.fail(w, ee.Status, s.user, msg)
		return
	}
	c.cfg.Log.Error("console: changing a configuration entry", "err", err)
	c.fail(w, http.StatusInternalServerError, s.user, "The change failed; the log has the details.")
}

// kindOf returns the kind of the request's first path segment.
func kindOf(r *http.Request) kindInfo {
	path := r.URL.Path[1:]
	for i := 0; i < len(path); i++ {
		if path[i] == '/' {
			path = path[:i]
			break
		}
	}
	return kinds[path]
}

// notice words what the change the list page was sent back from did.
func notice(r *http.Request) string {
	q := r.URL.Query()
	if n := q.Get("saved"); n != "" {
		return n + " saved: in effect now, without a restart."
	}
	if n := q.Get("deleted"); n != "" {
		return n + " deleted."
	}
	return ""
}
