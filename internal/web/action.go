package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/as2gate/as2gate/internal/store"
)

// action serves POST /messages/{id}/{action}: one of the operator's actions, then back to
// the details page of the message it leaves (the new one, for a resend).
func (c *Console) action(w http.ResponseWriter, r *http.Request, s *session) {
	if c.cfg.Actions == nil {
		c.fail(w, http.StatusNotImplemented, s.user, "Message actions are not available on this gateway.")
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.fail(w, http.StatusBadRequest, s.user, fmt.Sprintf("Message id %q is not a positive number.", r.PathValue("id")))
		return
	}
	var do func(ctx context.Context, id int64) (*store.Message, error)
	switch name := r.PathValue("action"); name {
	case "retry-now":
		do = c.cfg.Actions.RetryNow
	case "stop":
		do = c.cfg.Actions.Stop
	case "retry":
		do = func(ctx context.Context, id int64) (*store.Message, error) {
			return c.cfg.Actions.Retry(ctx, id, false)
		}
	case "resend":
		do = c.cfg.Actions.Resend
	case "replay":
		do = c.cfg.Actions.Replay
	default:
		c.fail(w, http.StatusNotFound, s.user, fmt.Sprintf("There is no action %q.", name))
		return
	}
	m, err := do(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		c.fail(w, http.StatusNotFound, s.user, fmt.Sprintf("There is no message %d.", id))
		return
	case errors.Is(err, store.ErrConflict):
		c.fail(w, http.StatusConflict, s.user, err.Error())
		return
	case err != nil:
		c.cfg.Log.Error("console: message action", "action", r.PathValue("action"), "message", id, "err", err)
		c.fail(w, http.StatusInternalServerError, s.user, "The action failed; the log has the details.")
		return
	}
	c.cfg.Log.Info("console: message action", "action", r.PathValue("action"), "message", id, "user", s.user)
	http.Redirect(w, r, fmt.Sprintf("/messages/%d?done=%s", m.ID, url.QueryEscape(r.PathValue("action"))), http.StatusSeeOther)
}
