package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/as2gate/as2gate/internal/inbound"
	"github.com/as2gate/as2gate/internal/store"
)

// Received are the operator's actions on received messages (inbound.Backend). Each returns
// the message as it is afterwards (ResendMDN: the MDN row it queued), an error that is
// store.ErrConflict when the message does not allow the action, store.ErrNotFound, or for
// ResendMDN an *inbound.MDNURLError for an address the policy refuses.
type Received interface {
	Reprocess(ctx context.Context, id int64) (*store.Message, error)
	DeliverAgain(ctx context.Context, id int64) (*store.Message, error)
	ResendMDN(ctx context.Context, id int64, url string) (*store.Message, error)
}

// receivedAction is action for the routes of Received: 501 without them.
func (a *API) receivedAction(name string, status int, do func(ctx context.Context, id int64, body []byte) (*store.Message, error)) http.HandlerFunc {
	if a.cfg.Received == nil {
		return func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotImplemented, "actions on received messages are not available on this gateway")
		}
	}
	return a.runAction(name, status, do)
}

// reprocess serves POST /api/v1/messages/{id}/reprocess.
func (a *API) reprocess(w http.ResponseWriter, r *http.Request) {
	a.receivedAction("reprocess", http.StatusOK, noBody(func(ctx context.Context, id int64) (*store.Message, error) {
		return a.cfg.Received.Reprocess(ctx, id)
	}))(w, r)
}

// redeliver serves POST /api/v1/messages/{id}/redeliver.
func (a *API) redeliver(w http.ResponseWriter, r *http.Request) {
	a.receivedAction("redeliver", http.StatusOK, noBody(func(ctx context.Context, id int64) (*store.Message, error) {
		return a.cfg.Received.DeliverAgain(ctx, id)
	}))(w, r)
}

// resendMDN serves POST /api/v1/messages/{id}/resend-mdn with an optional body
// {"url": "..."}; it answers 202 with the queued MDN row.
func (a *API) resendMDN(w http.ResponseWriter, r *http.Request) {
	a.receivedAction("resend-mdn", http.StatusAccepted, func(ctx context.Context, id int64, body []byte) (*store.Message, error) {
		var req struct {
			URL string `json:"url"`
		}
		if err := decodeBody(body, &req); err != nil {
			return nil, err
		}
		m, err := a.cfg.Received.ResendMDN(ctx, id, req.URL)
		var ue *inbound.MDNURLError
		if errors.As(err, &ue) {
			return nil, &badRequest{err.Error()}
		}
		return m, err
	})(w, r)
}
