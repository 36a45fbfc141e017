package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/as2gate/as2gate/internal/outbound"
)

// SendChoices is what the compose form offers: the partners a message can go to and the
// send profiles it may name.
type SendChoices struct {
	Partners []string // partner AS2 ids
	Profiles []string // send profile names
}

// defaultMaxUpload bounds a compose request's body when Config.MaxUpload is 0.
const defaultMaxUpload = 1 << 30

// composeView is the compose page.
type composeView struct {
	layout
	Partners []string
	Profiles []string
	Error    string
	// The user's choices, kept when the form comes back with an error.
	Partner, Profile, Subject, ContentType string
}

// composeForm serves GET /compose.
func (c *Console) composeForm(w http.ResponseWriter, r *http.Request, s *session) {
	if c.cfg.Submit == nil {
		c.fail(w, http.StatusNotImplemented, s.user, "Sending from the console is not available on this gateway.")
		return
	}
	v := c.composeView(r.Context(), s)
	if p := r.URL.Query().Get("partner"); slices.Contains(v.Partners, p) {
		v.Partner = p
	}
	c.render(w, http.StatusOK, "compose", v)
}

func (c *Console) composeView(ctx context.Context, s *session) composeView {
	v := composeView{layout: layout{Title: "Send files", User: s.user}}
	if c.cfg.SendChoices != nil {
		ch := c.cfg.SendChoices(ctx)
		v.Partners, v.Profiles = ch.Partners, ch.Profiles
	}
	return v
}

// compose serves POST /compose: the form's files are spooled while it is read, since its
// fields may come in any order, and then handed to Submit, which stores them durably
// before the browser is sent to the new message.
func (c *Console) compose(w http.ResponseWriter, r *http.Request, s *session) {
	if c.cfg.Submit == nil {
		c.fail(w, http.StatusNotImplemented, s.user, "Sending from the console is not available on this gateway.")
		return
	}
	v := c.composeView(r.Context(), s)
	again := func(status int, msg string) {
		v.Error = msg
		c.render(w, status, "compose", v)
	}
	r.Body = http.MaxBytesReader(w, r.Body, c.cfg.MaxUpload)
	mr, err := r.MultipartReader()
	if err != nil {
		again(http.StatusBadRequest, "The form did not arrive as multipart/form-data: "+err.Error())
		return
	}
	form, err := outbound.ReadForm(mr, c.cfg.SpoolDir)
	if err != nil {
		var fe *outbound.FormError
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			// The rest of the body is not read; the server closes the connection after
			// this answer, so the browser stops sending.
			again(http.StatusRequestEntityTooLarge, fmt.Sprintf("The files are too large: this gateway accepts at most %s in one message.", byteSize(tooBig.Limit)))
		case errors.As(err, &fe) && fe.Unknown:
			again(http.StatusBadRequest, fmt.Sprintf("The form has an unknown field %q.", fe.Field))
		case errors.As(err, &fe) && fe.File != "":
			again(http.StatusBadRequest, fmt.Sprintf("Reading file %q failed: %v", fe.File, fe.Err))
		case errors.As(err, &fe) && fe.Field == "":
			again(http.StatusBadRequest, "Reading the form failed: "+fe.Err.Error())
		default:
			again(http.StatusBadRequest, err.Error())
		}
		return
	}
	defer form.Close()
	sub := form.Submission
	v.Partner, v.Profile, v.Subject, v.ContentType = sub.Partner, sub.Profile, sub.Subject, form.ContentType
	switch {
	case sub.Partner == "":
		again(http.StatusBadRequest, "Choose a partner.")
		return
	case len(sub.Files) == 0:
		again(http.StatusBadRequest, "Choose at least one file to send.")
		return
	}
	m, err := c.cfg.Submit(r.Context(), sub)
	if err != nil {
		var se *outbound.SubmitError
		if errors.As(err, &se) {
			again(http.StatusBadRequest, "The message was not sent: "+se.Msg+".")
			return
		}
		c.cfg.Log.Error("console: storing a submission", "partner", sub.Partner, "err", err)
		again(http.StatusInternalServerError, "The message could not be stored; the log has the details.")
		return
	}
	c.cfg.Log.Info("console: message submitted", "message", m.ID, "partner", m.Partner, "files", len(m.Files), "user", s.user)
	http.Redirect(w, r, fmt.Sprintf("/messages/%d?done=submitted", m.ID), http.StatusSeeOther)
}

// byteSize writes n bytes for a person: "1 GiB", "10 MiB", "512 bytes".
func byteSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
