package api

import (
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

	"github.com/as2gate/as2gate/internal/archive"
	"github.com/as2gate/as2gate/internal/payload"
	"github.com/as2gate/as2gate/internal/store"
)

// CertificateSource finds the certificates of an agreement for the non-repudiation export.
type CertificateSource interface {
	// Certificates returns the station's certificates (the current one first, then older
	// ones still in use) and the partner's.
	Certificates(ctx context.Context, station, partner string) (stationCerts, partnerCerts []*x509.Certificate, err error)
}

// WireHeaderField carries the HTTP headers of a wire message download, as a JSON object of
// header names to lists of values.
const WireHeaderField = "X-As2gate-Wire-Header"

// message reads the {id} of the path and loads the message, answering the error itself when
// it cannot.
func (a *API) message(w http.ResponseWriter, r *http.Request) (*store.Message, bool) {
	if a.cfg.Payloads == nil {
		writeError(w, http.StatusInternalServerError, "downloads are not available: the API has no payload store")
		return nil, false
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("message id %q is not a positive number", r.PathValue("id")))
		return nil, false
	}
	m, err := a.cfg.Store.GetMessage(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no message %d", id))
		return nil, false
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return nil, false
	}
	return m, true
}

// openBlob opens a stored blob, answering the error itself when it cannot.
func (a *API) openBlob(w http.ResponseWriter, r *http.Request, key, what string) (payload.Blob, bool) {
	b, err := a.cfg.Payloads.Open(r.Context(), key)
	if err != nil {
		// The row names the blob, so a missing one is damage to the archive, not a bad request.
		a.cfg.Log.Error("opening a stored blob", "blob", what, "sha256", key, "err", err)
		writeError(w, http.StatusInternalServerError, what+" cannot be read from the payload store: "+err.Error())
		return nil, false
	}
	return b, true
}

// serveBlob streams b as an attachment. Content types come from partners: a browser is told
// to save, never to render or sniff, so that a partner's HTML cannot run in the console's origin.
func (a *API) serveBlob(w http.ResponseWriter, r *http.Request, b payload.Blob, contentType, filename string, prefix []byte) {
	defer b.Close()
	h := w.Header()
	h.Set("Content-Type", safeContentType(contentType))
	h.Set("Content-Disposition", attachment(filename))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.FormatInt(int64(len(prefix))+b.Size(), 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := w.Write(prefix); err != nil {
		return
	}
	if _, err := io.Copy(w, io.NewSectionReader(b, 0, b.Size())); err != nil {
		a.cfg.Log.Warn("download interrupted", "path", r.URL.Path, "err", err)
	}
}

// safeContentType returns ct when it parses as a media type, else application/octet-stream.
func safeContentType(ct string) string {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "application/octet-stream"
	}
	if s := mime.FormatMediaType(mt, params); s != "" {
		return s
	}
	return "application/octet-stream"
}

// attachment is a Content-Disposition that saves the download under name (already safe);
// mime encodes a name outside ASCII as RFC 2231 asks.
func attachment(name string) string {
	if v := mime.FormatMediaType("attachment", map[string]string{"filename": name}); v != "" {
		return v
	}
	return "attachment"
}

// downloadFile serves payload n (from 0) of a message.
func (a *API) downloadFile(w http.ResponseWriter, r *http.Request) {
	m, ok := a.message(w, r)
	if !ok {
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("file number %q is not a number from 0", r.PathValue("n")))
		return
	}
	if n >= len(m.Files) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("message %d has %d file(s), numbered from 0", m.ID, len(m.Files)))
		return
	}
	f := m.Files[n]
	b, ok := a.openBlob(w, r, f.SHA256, fmt.Sprintf("file %d of message %d", n, m.ID))
	if !ok {
		return
	}
	a.serveBlob(w, r, b, f.ContentType, archive.SafeName(f.Name, n), nil)
}

// downloadWire serves the wire message body as sent or received, its HTTP headers in
// X-As2gate-Wire-Header; with ?with_headers=1, the headers, a blank line and the body as
// one message/rfc822 entity.
func (a *API) downloadWire(w http.ResponseWriter, r *http.Request) {
	m, ok := a.message(w, r)
	if !ok {
		return
	}
	if m.Wire == "" {
		writeError(w, http.StatusNotFound, fmt.Sprintf("message %d has no wire message yet (it is packed when first sent)", m.ID))
		return
	}
	withHeaders := false
	switch v := r.URL.Query().Get("with_headers"); v {
	case "", "0", "false":
	case "1", "true":
		withHeaders = true
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("with_headers %q: use 1 or 0", v))
		return
	}
	b, ok := a.openBlob(w, r, m.Wire, fmt.Sprintf("the wire message of message %d", m.ID))
	if !ok {
		return
	}
	name := fmt.Sprintf("message-%d-wire", m.ID)
	// Custom headers of a partner or send profile may carry credentials: their values are
	// withheld (archive.PublicHeader).
	header := archive.PublicHeader(m.WireHeader)
	if withHeaders {
		var head strings.Builder
		header.Write(&head)
		head.WriteString("\r\n")
		a.serveBlob(w, r, b, "message/rfc822", name+".eml", []byte(head.String()))
		return
	}
	hj, err := json.Marshal(header)
	if err != nil {
		b.Close()
		writeError(w, http.StatusInternalServerError, "encoding the wire headers: "+err.Error())
		return
	}
	w.Header().Set(WireHeaderField, string(hj))
	a.serveBlob(w, r, b, m.WireHeader.Get("Content-Type"), name+".bin", nil)
}

// downloadMDN serves the MDN body as sent or received.
func (a *API) downloadMDN(w http.ResponseWriter, r *http.Request) {
	m, ok := a.message(w, r)
	if !ok {
		return
	}
	if m.MDN == nil || m.MDN.Key == "" {
		writeError(w, http.StatusNotFound, fmt.Sprintf("message %d has no stored MDN", m.ID))
		return
	}
	b, ok := a.openBlob(w, r, m.MDN.Key, fmt.Sprintf("the MDN of message %d", m.ID))
	if !ok {
		return
	}
	a.serveBlob(w, r, b, headerTextGet(m.MDN.Header, "Content-Type"), fmt.Sprintf("message-%d-mdn.bin", m.ID), nil)
}

// headerTextGet finds a field in header lines written by http.Header.Write.
func headerTextGet(text, name string) string {
	for line := range strings.SplitSeq(text, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// export serves the non-repudiation archive of a message (package archive).
func (a *API) export(w http.ResponseWriter, r *http.Request) {
	m, ok := a.message(w, r)
	if !ok {
		return
	}
	in := archive.Input{Message: m, Payloads: a.cfg.Payloads}
	if a.cfg.Certificates != nil {
		in.Station, in.Partner, in.CertificateError = a.cfg.Certificates.Certificates(r.Context(), m.Station, m.Partner)
	} else {
		in.CertificateError = errors.New("the gateway has no certificate source")
	}
	e, err := archive.Open(r.Context(), in)
	if err != nil {
		a.cfg.Log.Error("exporting a message", "message_row", m.ID, "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	defer e.Close()
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", attachment(fmt.Sprintf("as2gate-message-%d.zip", m.ID)))
	w.WriteHeader(http.StatusOK)
	// The status is sent: a failure now can only cut the ZIP short, which its reader detects
	// (the central directory comes last).
	if err := e.Write(w); err != nil {
		a.cfg.Log.Warn("export interrupted", "message_row", m.ID, "err", err)
	}
}
