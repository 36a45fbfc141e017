package api

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/as2gate/as2gate/internal/config"
	"github.com/as2gate/as2gate/internal/store"
)

// Entries changes the partners, stations and send profiles kept in the database. A change
// is validated with the configuration file by the file's own checks and applied at once,
// without a restart.
//
// The errors say what the answer is: ErrManagedInFile and store.ErrConflict (a stale
// revision, a name taken, a station partners still use) are 409, store.ErrNotFound 404, a
// *config.ValidationError 422 with its problems, an *InputError 400.
type Entries interface {
	// Put creates or replaces an entry as c says. It returns the entry's new revision.
	Put(ctx context.Context, c EntryChange) (int64, error)
	// Delete removes the entry.
	Delete(ctx context.Context, kind, name string, revision int64) error
	// AddCertificates adds certificates (each upload PEM, DER or PKCS#12, opened with
	// password) to a partner's certs, or replaces them with replace. It returns the
	// certificates read and the entry's new revision.
	AddCertificates(ctx context.Context, partner string, uploads [][]byte, password string, replace bool, revision int64) ([]*x509.Certificate, int64, error)
	// SetIdentity sets a station's signing and decryption identity, creating the station
	// when it does not exist (created). It returns the certificate and its chain.
	SetIdentity(ctx context.Context, station string, id IdentityUpload, revision int64) (certs []*x509.Certificate, rev int64, created bool, err error)
}

// EntryChange is a new or replaced entry.
type EntryChange struct {
	Kind string // "partner", "station" or "profile"
	Name string
	// Document is the JSON of one item of the file's list, with the file's key names.
	Document []byte
	// Certificates are uploads (PEM, DER or PKCS#12 opened with Password) added to a
	// partner's certs, so that a partner is created with its certificate in one step.
	Certificates [][]byte
	Password     string
	// Files are other files the document names by file name (auth.basic.password_file,
	// auth.bearer_file, tls.ca), uploaded in the form's material fields under that name.
	Files  map[string][]byte
	Create bool
	// Revision is the entry's revision the change was made from (0: the current one).
	Revision int64
}

// IdentityUpload is a station identity as uploaded: a PKCS#12 file, or a certificate and a
// key; Password opens the PKCS#12 file or an encrypted key.
type IdentityUpload struct {
	PKCS12    []byte
	Cert, Key []byte
	Password  string
}

// ErrManagedInFile is the answer to a change of an entry the configuration file defines.
var ErrManagedInFile = errors.New("managed in the configuration file: change it there and restart")

// InputError is input that cannot be read: the answer is 400 with its message.
type InputError struct{ Msg string }

func (e *InputError) Error() string { return e.Msg }

// Problem is one validation problem of a 422 answer.
type Problem struct {
	Key     string `json:"key"`
	Message string `json:"message"`
}

// problemsError is the body of a 422 answer.
type problemsError struct {
	Error    string    `json:"error"`
	Problems []Problem `json:"problems"`
}

// maxEntryBody bounds an entry's JSON; maxCertificateUpload a certificate upload.
const (
	maxEntryBody         = 1 << 20
	maxCertificateUpload = 4 << 20
)

// entryKind describes one of the three lists for the handlers.
type entryKind struct {
	kind, what, nameKey string
}

var (
	partnerKind = entryKind{store.EntryPartner, "partner", "as2_id"}
	stationKind = entryKind{store.EntryStation, "station", "as2_id"}
	profileKind = entryKind{store.EntryProfile, "profile", "name"}
)

func (a *API) entries(w http.ResponseWriter) bool {
	if a.cfg.Entries == nil || a.cfg.Partners == nil {
		writeError(w, http.StatusNotImplemented, "partners, stations and profiles cannot be changed on this gateway")
		return false
	}
	return true
}

// writeEntryError answers err as Entries documents.
func writeEntryError(w http.ResponseWriter, what, name string, err error) {
	var ve *config.ValidationError
	var ie *InputError
	switch {
	case errors.As(err, &ve):
		out := problemsError{Error: fmt.Sprintf("the %s %q is not valid (%d problem(s))", what, name, len(ve.Problems)), Problems: []Problem{}}
		for _, p := range ve.Problems {
			out.Problems = append(out.Problems, Problem{Key: p.Key, Message: p.Message})
		}
		writeJSON(w, http.StatusUnprocessableEntity, out)
	case errors.As(err, &ie):
		writeError(w, http.StatusBadRequest, ie.Msg)
	case errors.Is(err, ErrManagedInFile):
		writeError(w, http.StatusConflict, fmt.Sprintf("the %s %q is %v", what, name, ErrManagedInFile))
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no %s %q is configured", what, name))
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, strings.TrimPrefix(err.Error(), "sqlite: "))
	default:
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("changing the %s %q: %v", what, name, err))
	}
}

// ifMatch reads the revision a change was made from: If-Match: "3" (or 3); 0 without one.
func ifMatch(r *http.Request) (int64, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, nil
	}
	n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(v, "W/"), `"`), 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("If-Match %q is not a revision: send the revision a GET answered, e.g. If-Match: \"3\"", v)
	}
	return n, nil
}

// readEntry reads the JSON body of an entry: one object, as an item of the file's list.
func readEntry(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, []byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEntryBody))
	if err != nil {
		return nil, nil, fmt.Errorf("reading the body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil, errors.New("the body is empty: send the entry as a JSON object with the configuration file's keys")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, nil, fmt.Errorf("the body is not a JSON object: %v", err)
	}
	if obj == nil {
		return nil, nil, errors.New("the body is null: send the entry as a JSON object with the configuration file's keys")
	}
	return obj, body, nil
}

func (a *API) createEntry(k entryKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.entries(w) {
			return
		}
		change := EntryChange{Kind: k.kind, Create: true}
		var (
			obj map[string]json.RawMessage
			err error
		)
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "multipart/form-data" && k == partnerKind {
			obj, change, err = readEntryForm(w, r, change)
		} else {
			obj, change.Document, err = readEntry(w, r)
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if raw, ok := obj[k.nameKey]; !ok || json.Unmarshal(raw, &change.Name) != nil || strings.TrimSpace(change.Name) == "" {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s: required, a string naming the %s", k.nameKey, k.what))
			return
		}
		name := change.Name
		rev, err := a.cfg.Entries.Put(r.Context(), change)
		if err != nil {
			writeEntryError(w, k.what, name, err)
			return
		}
		a.writeEntry(w, r, k, name, rev, http.StatusCreated)
	}
}

func (a *API) putEntry(k entryKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.entries(w) {
			return
		}
		name := r.PathValue(k.nameKey) // the routes name the wildcard after the key
		rev, err := ifMatch(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		obj, body, err := readEntry(w, r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		var inBody string
		if raw, ok := obj[k.nameKey]; ok && (json.Unmarshal(raw, &inBody) != nil || inBody != name) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s in the body is %s, the path names %q: an entry is renamed by deleting it and creating the new one", k.nameKey, raw, name))
			return
		}
		newRev, err := a.cfg.Entries.Put(r.Context(), EntryChange{Kind: k.kind, Name: name, Document: body, Revision: rev})
		if err != nil {
			writeEntryError(w, k.what, name, err)
			return
		}
		a.writeEntry(w, r, k, name, newRev, http.StatusOK)
	}
}

func (a *API) deleteEntry(k entryKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !a.entries(w) {
			return
		}
		name := r.PathValue(k.nameKey) // the routes name the wildcard after the key
		rev, err := ifMatch(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if err := a.cfg.Entries.Delete(r.Context(), k.kind, name, rev); err != nil {
			writeEntryError(w, k.what, name, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// writeEntry answers the entry as its GET route does, with its revision as the ETag.
func (a *API) writeEntry(w http.ResponseWriter, r *http.Request, k entryKind, name string, rev int64, status int) {
	var (
		item any
		err  error
	)
	switch k {
	case partnerKind:
		item, err = find(r.Context(), a.cfg.Partners.PartnerSettings, func(p PartnerSettings) bool { return p.AS2ID == name })
	case stationKind:
		item, err = find(r.Context(), a.cfg.Partners.StationSettings, func(s StationSettings) bool { return s.AS2ID == name })
	default:
		item, err = find(r.Context(), a.cfg.Partners.ProfileSettings, func(p ProfileSettings) bool { return p.Name == name })
	}
	if err != nil {
		writeEntryError(w, k.what, name, err)
		return
	}
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(rev, 10)))
	writeJSON(w, status, item)
}

func find[T any](ctx context.Context, read func(context.Context) ([]T, error), match func(T) bool) (any, error) {
	items, err := read(ctx)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		if match(it) {
			return it, nil
		}
	}
	return nil, store.ErrNotFound
}

// readEntryForm reads a partner created with its certificates: the form field entry holds
// the JSON, the file fields the certificates, password opens a PKCS#12 file.
func readEntryForm(w http.ResponseWriter, r *http.Request, c EntryChange) (map[string]json.RawMessage, EntryChange, error) {
	files, values, err := uploadedFiles(w, r, "file")
	if err != nil {
		return nil, c, err
	}
	doc := []byte(values["entry"])
	if len(bytes.TrimSpace(doc)) == 0 {
		return nil, c, errors.New("entry: required, the partner as a JSON object with the configuration file's keys")
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(doc, &obj); err != nil || obj == nil {
		return nil, c, fmt.Errorf("entry is not a JSON object: %v", err)
	}
	c.Document, c.Certificates, c.Password = doc, files["file"], values["password"]
	if c.Files, err = materialFiles(r); err != nil {
		return nil, c, err
	}
	return obj, c, nil
}

// maxMaterialFiles bounds the files one entry form may carry besides its certificates.
const maxMaterialFiles = 16

// materialFiles reads the form's material fields: files the entry names by their file name,
// such as a password file. The name must be a plain file name, the one the document uses.
func materialFiles(r *http.Request) (map[string][]byte, error) {
	if r.MultipartForm == nil || len(r.MultipartForm.File["material"]) == 0 {
		return nil, nil
	}
	if n := len(r.MultipartForm.File["material"]); n > maxMaterialFiles {
		return nil, fmt.Errorf("material: %d files, at most %d", n, maxMaterialFiles)
	}
	out := map[string][]byte{}
	for _, fh := range r.MultipartForm.File["material"] {
		name := fh.Filename
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.ContainsFunc(name, unicode.IsControl) {
			return nil, fmt.Errorf("material %q: the part's file name must be the plain file name the entry names", name)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("material %q: given twice", name)
		}
		f, err := fh.Open()
		if err != nil {
			return nil, fmt.Errorf("material %q: %v", name, err)
		}
		data, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("material %q: %v", name, err)
		}
		out[name] = data
	}
	return out, nil
}

// uploadedFiles reads the files of a multipart form, or the body itself when it is not a
// form (PEM, DER or PKCS#12 sent as is).
func uploadedFiles(w http.ResponseWriter, r *http.Request, fields ...string) (map[string][][]byte, map[string]string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxCertificateUpload)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "multipart/form-data" {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the body: %v", err)
		}
		// A password never travels in the URL: a file that needs one comes in a form.
		return map[string][][]byte{"": {body}}, map[string]string{}, nil
	}
	if err := r.ParseMultipartForm(maxCertificateUpload); err != nil {
		return nil, nil, fmt.Errorf("reading the form: %v", err)
	}
	files := map[string][][]byte{}
	for _, field := range fields {
		for _, fh := range r.MultipartForm.File[field] {
			f, err := fh.Open()
			if err != nil {
				return nil, nil, fmt.Errorf("%s %q: %v", field, fh.Filename, err)
			}
			data, err := io.ReadAll(f)
			f.Close()
			if err != nil {
				return nil, nil, fmt.Errorf("%s %q: %v", field, fh.Filename, err)
			}
			if len(bytes.TrimSpace(data)) == 0 {
				return nil, nil, fmt.Errorf("%s %q is empty", field, fh.Filename)
			}
			files[field] = append(files[field], data)
		}
	}
	values := map[string]string{}
	for k, v := range r.MultipartForm.Value {
		if len(v) > 0 {
			values[k] = v[0]
		}
	}
	return files, values, nil
}

func (a *API) uploadCertificates(w http.ResponseWriter, r *http.Request) {
	if !a.entries(w) {
		return
	}
	name := r.PathValue("as2_id")
	rev, err := ifMatch(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	files, values, err := uploadedFiles(w, r, "file")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	uploads := append(files[""], files["file"]...)
	if len(uploads) == 0 || len(uploads) == 1 && len(bytes.TrimSpace(uploads[0])) == 0 {
		writeError(w, http.StatusBadRequest, "no certificate: send PEM, DER or PKCS#12 as the body, or as the form's file fields")
		return
	}
	replace := r.URL.Query().Get("replace") == "true" || values["replace"] == "true"
	certs, newRev, err := a.cfg.Entries.AddCertificates(r.Context(), name, uploads, values["password"], replace, rev)
	if err != nil {
		writeEntryError(w, "partner", name, err)
		return
	}
	a.writeCertificates(w, certs, newRev, http.StatusOK, "")
}

func (a *API) uploadIdentity(w http.ResponseWriter, r *http.Request) {
	if !a.entries(w) {
		return
	}
	name := r.PathValue("as2_id")
	rev, err := ifMatch(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	files, values, err := uploadedFiles(w, r, "pkcs12", "cert", "key")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var id IdentityUpload
	id.Password = values["password"]
	one := func(field string) []byte {
		if len(files[field]) > 0 {
			return files[field][0]
		}
		return nil
	}
	switch {
	case files[""] != nil:
		id.PKCS12 = files[""][0] // a body sent as is is a PKCS#12 file
	case one("pkcs12") != nil && (one("cert") != nil || one("key") != nil):
		writeError(w, http.StatusBadRequest, "send either pkcs12, or cert and key, not both")
		return
	case one("pkcs12") != nil:
		id.PKCS12 = one("pkcs12")
	case one("key") != nil:
		id.Cert, id.Key = one("cert"), one("key")
	default:
		writeError(w, http.StatusBadRequest, "no identity: send the form field pkcs12 (with password), or cert and key")
		return
	}
	if len(bytes.TrimSpace(id.PKCS12)) == 0 && id.Key == nil {
		writeError(w, http.StatusBadRequest, "the PKCS#12 file is empty")
		return
	}
	certs, newRev, created, err := a.cfg.Entries.SetIdentity(r.Context(), name, id, rev)
	if err != nil {
		writeEntryError(w, "station", name, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	a.writeCertificates(w, certs, newRev, status, "signing")
}

func (a *API) writeCertificates(w http.ResponseWriter, certs []*x509.Certificate, rev int64, status int, use string) {
	now := time.Now()
	out := make([]CertificateInfo, 0, len(certs))
	for i, c := range certs {
		u := use
		if use != "" && i > 0 {
			u = "chain"
		}
		out = append(out, NewCertificateInfo(c, u, SourceDatabase, now))
	}
	w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(rev, 10)))
	writeJSON(w, status, map[string]any{"certificates": out, "revision": rev})
}

func (a *API) listProfiles(w http.ResponseWriter, r *http.Request) {
	if a.partnerSource(w) {
		listAll(w, r, "profiles", a.cfg.Partners.ProfileSettings)
	}
}

func (a *API) getProfile(w http.ResponseWriter, r *http.Request) {
	if !a.partnerSource(w) {
		return
	}
	name := r.PathValue("name")
	item, err := find(r.Context(), a.cfg.Partners.ProfileSettings, func(p ProfileSettings) bool { return p.Name == name })
	if err != nil {
		writeEntryError(w, "profile", name, err)
		return
	}
	writeJSON(w, http.StatusOK, item)
}
