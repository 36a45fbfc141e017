package web

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/as2gate/as2gate/internal/archive"
	"github.com/as2gate/as2gate/internal/store"
)

// download serves GET /messages/{id}/files/{n}: file n of the message, streamed from the
// payload store, always as an attachment.
func (c *Console) download(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.fail(w, http.StatusBadRequest, s.user, fmt.Sprintf("Message id %q is not a positive number.", r.PathValue("id")))
		return
	}
	m, err := c.cfg.Store.GetMessage(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		c.fail(w, http.StatusNotFound, s.user, fmt.Sprintf("There is no message %d.", id))
		return
	}
	if err != nil {
		c.storeFailed(w, s, err)
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 0 || n >= len(m.Files) {
		c.fail(w, http.StatusNotFound, s.user, fmt.Sprintf("Message %d has no file %q.", id, r.PathValue("n")))
		return
	}
	f := m.Files[n]
	b, err := c.cfg.Payloads.Open(r.Context(), f.SHA256)
	if err != nil {
		c.cfg.Log.Error("console: opening a stored file", "message", id, "sha256", f.SHA256, "err", err)
		c.fail(w, http.StatusInternalServerError, s.user, "The file cannot be read from the payload store; the log has the details.")
		return
	}
	defer b.Close()
	h := w.Header()
	// Partners choose content types and names: the browser is told to save, never to render
	// or sniff, so that a partner's HTML cannot run in the console's origin.
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": fileName(f.Name, id, n)}))
	h.Set("Content-Length", strconv.FormatInt(b.Size(), 10))
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, b); err != nil {
		c.cfg.Log.Warn("console: download cut short", "message", id, "file", n, "err", err)
	}
}

// fileName is the name offered for a download: the file's own, or one made up when it has
// none.
func fileName(name string, id int64, n int) string {
	if name == "" {
		return fmt.Sprintf("message-%d-file-%d", id, n)
	}
	// The name came from a partner: the same cleaning as the API's downloads.
	return archive.SafeName(name, n)
}
