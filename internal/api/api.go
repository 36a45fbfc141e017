// Package api is the gateway's REST API under /api/v1, with bearer-token authentication,
// and the health endpoints of the admin listener. Every route is listed in Handler.
package api

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/as2gate/as2gate/internal/outbound"
	"github.com/as2gate/as2gate/internal/payload"
	"github.com/as2gate/as2gate/internal/store"
)

// Config configures the API.
type Config struct {
	Store store.Store
	// Payloads holds the bytes the downloads and the export serve.
	Payloads payload.Store
	// Certificates finds the certificates an export includes; nil leaves them out.
	Certificates CertificateSource
	// Submit accepts a submission (outbound.Worker.Submit with the gateway's router).
	Submit func(ctx context.Context, s outbound.Submission) (*store.Message, error)
	// Actions are the operator's actions on messages (outbound.Actions); without them the
	// action routes answer 501.
	Actions Actions
	// Received are the operator's actions on received messages (inbound.Backend); without
	// them their routes answer 501.
	Received Received
	// Partners shows the configured partners and stations; without it their routes answer
	// 501.
	Partners Partners
	// Entries changes the partners, stations and profiles kept in the database; without it
	// the routes that change them answer 501.
	Entries Entries
	// Tokens are the accepted bearer tokens.
	Tokens []string
	// Ready reports whether the database and payload store answer, for /readyz.
	Ready func(ctx context.Context) error
	// MaxUpload bounds a submission's request body; default 1 GiB.
	MaxUpload int64
	// UploadLimit, when set, replaces MaxUpload, read at each submission: the bound follows
	// partners whose max_size changes at run time.
	UploadLimit func() int64
	// SpoolDir is where uploaded files wait while the form is read; "" is the system's.
	SpoolDir string
	Log      *slog.Logger
}

// API serves the routes.
type API struct {
	cfg Config
}

// New returns the API.
func New(cfg Config) *API {
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = 1 << 30
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &API{cfg: cfg}
}

// route is one route of the API: the method and path pattern of http.ServeMux, and its
// handler (authentication included). The OpenAPI document describes exactly these.
type route struct {
	method, pattern string
	handler         http.Handler
}

// routes lists every route Handler serves.
func (a *API) routes() []route {
	return []route{
		{"GET", "/healthz", http.HandlerFunc(a.healthz)},
		{"GET", "/readyz", http.HandlerFunc(a.readyz)},
		{"GET", "/api/v1/openapi.json", http.HandlerFunc(serveOpenAPI)},
		{"POST", "/api/v1/messages", a.auth(a.submit)},
		{"GET", "/api/v1/messages", a.auth(a.listMessages)},
		{"GET", "/api/v1/messages/{id}", a.auth(a.getMessage)},
		{"DELETE", "/api/v1/messages/{id}", a.auth(a.deleteOne)},
		{"POST", "/api/v1/messages/delete", a.auth(a.deleteMany)},
		{"POST", "/api/v1/messages/{id}/retry-now", a.auth(a.retryNow)},
		{"POST", "/api/v1/messages/{id}/stop", a.auth(a.stop)},
		{"POST", "/api/v1/messages/{id}/refresh-message-id", a.auth(a.refreshMessageID)},
		{"POST", "/api/v1/messages/{id}/retry", a.auth(a.retry)},
		{"POST", "/api/v1/messages/{id}/resend", a.auth(a.resend)},
		{"POST", "/api/v1/messages/{id}/replay", a.auth(a.replay)},
		// Actions on received messages (received.go).
		{"POST", "/api/v1/messages/{id}/reprocess", a.auth(a.reprocess)},
		{"POST", "/api/v1/messages/{id}/redeliver", a.auth(a.redeliver)},
		{"POST", "/api/v1/messages/{id}/resend-mdn", a.auth(a.resendMDN)},
		{"GET", "/api/v1/messages/{id}/files/{n}", a.auth(a.downloadFile)},
		{"GET", "/api/v1/messages/{id}/wire", a.auth(a.downloadWire)},
		{"GET", "/api/v1/messages/{id}/mdn", a.auth(a.downloadMDN)},
		{"GET", "/api/v1/messages/{id}/export", a.auth(a.export)},
		{"GET", "/api/v1/failures", a.auth(a.failures)},
		{"GET", "/api/v1/timeline", a.auth(a.timeline)},
		// Partners and stations, read-only (partners.go).
		{"GET", "/api/v1/partners", a.auth(a.listPartners)},
		{"GET", "/api/v1/partners/{as2_id}", a.auth(a.getPartner)},
		{"GET", "/api/v1/stations", a.auth(a.listStations)},
		{"GET", "/api/v1/stations/{as2_id}", a.auth(a.getStation)},
		// Partners, stations and send profiles changed at run time (entries.go).
		{"POST", "/api/v1/partners", a.auth(a.createEntry(partnerKind))},
		{"PUT", "/api/v1/partners/{as2_id}", a.auth(a.putEntry(partnerKind))},
		{"DELETE", "/api/v1/partners/{as2_id}", a.auth(a.deleteEntry(partnerKind))},
		{"POST", "/api/v1/partners/{as2_id}/certificates", a.auth(a.uploadCertificates)},
		{"POST", "/api/v1/stations", a.auth(a.createEntry(stationKind))},
		{"PUT", "/api/v1/stations/{as2_id}", a.auth(a.putEntry(stationKind))},
		{"DELETE", "/api/v1/stations/{as2_id}", a.auth(a.deleteEntry(stationKind))},
		{"POST", "/api/v1/stations/{as2_id}/identity", a.auth(a.uploadIdentity)},
		{"GET", "/api/v1/profiles", a.auth(a.listProfiles)},
		{"POST", "/api/v1/profiles", a.auth(a.createEntry(profileKind))},
		{"GET", "/api/v1/profiles/{name}", a.auth(a.getProfile)},
		{"PUT", "/api/v1/profiles/{name}", a.auth(a.putEntry(profileKind))},
		{"DELETE", "/api/v1/profiles/{name}", a.auth(a.deleteEntry(profileKind))},
	}
}

// Handler returns every route of the admin listener that this package serves.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range a.routes() {
		mux.Handle(rt.method+" "+rt.pattern, rt.handler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(&logWriter{ResponseWriter: w, log: a.cfg.Log, r: r}, r)
	})
}

// logWriter carries the API's logger and the request to writeError, so that an internal
// error is logged in full where its answer is written, by every handler alike.
type logWriter struct {
	http.ResponseWriter
	log *slog.Logger
	r   *http.Request
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ReadFrom keeps the connection's own ReadFrom (sendfile) for downloads.
func (w *logWriter) ReadFrom(r io.Reader) (int64, error) { return io.Copy(w.ResponseWriter, r) }

// apiError is the JSON body of every error answer. Reference is set on a 500: the
// answer says only that something failed inside, and the log line with the full error
// carries the same reference.
type apiError struct {
	Error     string `json:"error"`
	Reference string `json:"reference,omitempty"`
}

// internalError answers 500 without the internal detail (paths, SQL, driver messages are
// for the operator's log, not for every API client) and logs detail under a new reference.
func internalError(w http.ResponseWriter, detail string) {
	ref := hex.EncodeToString(randomRef())
	log, method, path := slog.Default(), "", ""
	if lw, ok := w.(*logWriter); ok {
		log, method, path = lw.log, lw.r.Method, lw.r.URL.Path
	}
	log.Error("API internal error", "reference", ref, "method", method, "path", path, "err", detail)
	writeJSON(w, http.StatusInternalServerError, apiError{
		Error:     "internal error; the gateway's log has the details under reference " + ref,
		Reference: ref,
	})
}

// randomRef is 6 random bytes: short enough to read out, enough to find one log line.
func randomRef() []byte {
	b := make([]byte, 6)
	rand.Read(b)
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // Message-IDs read <…>, not \u003c…\u003e
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	if status == http.StatusInternalServerError {
		internalError(w, msg)
		return
	}
	writeJSON(w, status, apiError{Error: msg})
}

func (a *API) auth(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !a.validToken(strings.TrimSpace(token)) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="as2gate"`)
			writeError(w, http.StatusUnauthorized, "a valid bearer token is required (Authorization: Bearer <token>)")
			return
		}
		next(w, r)
	})
}

func (a *API) validToken(token string) bool {
	if token == "" {
		return false
	}
	ok := false
	for _, t := range a.cfg.Tokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
			ok = true
		}
	}
	return ok
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Ready != nil {
		if err := a.cfg.Ready(r.Context()); err != nil {
			// Unauthenticated: the detail (addresses, drivers) goes to the log, not the caller.
			a.cfg.Log.Error("not ready", "err", err)
			writeError(w, http.StatusServiceUnavailable, "not ready: the database or the payload store does not answer (see the gateway's log)")
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// submit accepts a multipart form: partner, one or more file, optional subject,
// content_type and tag.
func (a *API) submit(w http.ResponseWriter, r *http.Request) {
	limit := a.cfg.MaxUpload
	if a.cfg.UploadLimit != nil {
		limit = a.cfg.UploadLimit()
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, http.StatusBadRequest, "expected a multipart/form-data body with fields partner and file: "+err.Error())
		return
	}
	form, err := outbound.ReadForm(mr, a.cfg.SpoolDir)
	if err != nil {
		formError(w, err)
		return
	}
	defer form.Close()
	m, err := a.cfg.Submit(r.Context(), form.Submission)
	if err != nil {
		var se *outbound.SubmitError
		if errors.As(err, &se) {
			writeError(w, http.StatusBadRequest, se.Msg)
			return
		}
		a.cfg.Log.Error("storing a submission", "err", err)
		writeError(w, http.StatusInternalServerError, "the submission could not be stored: "+err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"id": m.ID, "message_id": m.MessageID, "state": m.State})
}

// formError answers a form that cannot be read: 413 past MaxUpload, 400 otherwise.
func formError(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	var fe *outbound.FormError
	errors.As(err, &fe)
	switch {
	case errors.As(err, &tooBig):
		what := "reading the form"
		if fe != nil && fe.File != "" {
			what = "reading file " + fe.File
		}
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("%s: the submission is larger than the %d bytes this gateway accepts", what, tooBig.Limit))
	case fe != nil && fe.Unknown:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown form field %q (expected partner, file, subject, content_type, tag, profile)", fe.Field))
	default:
		writeError(w, http.StatusBadRequest, err.Error())
	}
}

// messageJSON is the API's view of a message.
type messageJSON struct {
	ID            int64         `json:"id"`
	MessageID     string        `json:"message_id"`
	Direction     string        `json:"direction"`
	Kind          string        `json:"kind"`
	Station       string        `json:"station"`
	Partner       string        `json:"partner"`
	State         string        `json:"state"`
	Subject       string        `json:"subject,omitempty"`
	Tag           string        `json:"tag,omitempty"`
	Profile       string        `json:"profile,omitempty"`
	Files         []store.File  `json:"files"`
	MIC           string        `json:"mic,omitempty"`
	MDNMode       string        `json:"mdn_mode,omitempty"`
	MDN           *mdnJSON      `json:"mdn"`
	Attempts      []attemptJSON `json:"attempts"`
	NextAttemptAt *time.Time    `json:"next_attempt_at,omitempty"`
	LastError     string        `json:"last_error,omitempty"`
	LastCode      string        `json:"last_code,omitempty"`
	CreatedAt     time.Time     `json:"created_at"`
	UpdatedAt     time.Time     `json:"updated_at"`
}

type mdnJSON struct {
	Disposition string    `json:"disposition"`
	Positive    bool      `json:"positive"`
	MICOK       bool      `json:"mic_ok"`
	MIC         string    `json:"mic,omitempty"`
	Signed      bool      `json:"signed"`
	MessageID   string    `json:"message_id,omitempty"`
	At          time.Time `json:"at"`
}

type attemptJSON struct {
	At         time.Time `json:"at"`
	Class      string    `json:"class"`
	Code       string    `json:"code"`
	HTTPStatus int       `json:"http_status"`
	Error      string    `json:"error"`
	Action     string    `json:"action"`
}

func toJSON(m *store.Message, attempts []*store.Attempt) messageJSON {
	j := messageJSON{
		ID: m.ID, MessageID: m.MessageID, Direction: m.Direction, Kind: m.Kind, Station: m.Station,
		Partner: m.Partner, State: m.State, Subject: m.Subject, Tag: m.Tag, Profile: m.Profile, Files: m.Files, MIC: m.MIC,
		MDNMode: m.MDNMode, LastError: m.LastError, LastCode: m.LastCode, CreatedAt: m.CreatedAt,
		UpdatedAt: m.UpdatedAt, Attempts: []attemptJSON{},
	}
	if j.Files == nil {
		j.Files = []store.File{}
	}
	if m.State == store.StateQueued || m.State == store.StateAwaitingMDN {
		t := m.NextAttemptAt
		j.NextAttemptAt = &t
	}
	if m.MDN != nil {
		j.MDN = &mdnJSON{Disposition: m.MDN.Disposition, Positive: m.MDN.Positive, MICOK: m.MDN.MICOK,
			MIC: m.MDN.MIC, Signed: m.MDN.Signed, MessageID: m.MDN.MessageID, At: m.MDN.At}
	}
	for _, a := range attempts {
		j.Attempts = append(j.Attempts, attemptJSON{At: a.At, Class: a.Class, Code: a.Code, HTTPStatus: a.HTTPStatus, Error: a.Error, Action: a.Action})
	}
	return j
}

func (a *API) getMessage(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("message id %q is not a positive number", r.PathValue("id")))
		return
	}
	m, err := a.cfg.Store.GetMessage(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no message %d", id))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	attempts, err := a.cfg.Store.Attempts(r.Context(), id)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, toJSON(m, attempts))
}

var boxes = map[string]bool{"": true, "outbox": true, "queued": true, "sent": true, "failed": true, "received": true}

func (a *API) listMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.Filter{Box: q.Get("box"), Partner: q.Get("partner"), State: q.Get("state"), Tag: q.Get("tag"), Q: q.Get("q")}
	if !boxes[f.Box] {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("box %q is not one of outbox, queued, sent, failed, received", f.Box))
		return
	}
	var p page
	if err := p.parse(q, "message"); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f.Limit, f.Before, f.From, f.To = p.limit, p.before, p.from, p.to
	ms, err := a.cfg.Store.ListMessages(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := make([]messageJSON, 0, len(ms))
	for _, m := range ms {
		out = append(out, toJSON(m, nil))
	}
	answer := map[string]any{"messages": out}
	if len(ms) == p.limit {
		answer["next_before"] = ms[len(ms)-1].ID
	}
	writeJSON(w, http.StatusOK, answer)
}
