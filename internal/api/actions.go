package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/as2gate/as2gate/internal/store"
)

// Actions are the operator's actions on messages (outbound.Actions). Each returns the
// message as it is afterwards (Resend: the new message; Delete: the message as it was), an
// error that is store.ErrConflict when the message's state does not allow the action, or
// store.ErrNotFound.
type Actions interface {
	RetryNow(ctx context.Context, id int64) (*store.Message, error)
	Stop(ctx context.Context, id int64) (*store.Message, error)
	RefreshMessageID(ctx context.Context, id int64) (*store.Message, error)
	Retry(ctx context.Context, id int64, newMessageID bool) (*store.Message, error)
	Resend(ctx context.Context, id int64) (*store.Message, error)
	Replay(ctx context.Context, id int64) (*store.Message, error)
	Delete(ctx context.Context, id int64) (*store.Message, error)
}

// maxBulkDelete bounds the ids of one bulk delete, so that one request stays one short
// stretch of work.
const maxBulkDelete = 1000

// maxActionBody bounds the JSON body of an action.
const maxActionBody = 1 << 20

// pathID reads the {id} of the path, or answers 400.
func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("message id %q is not a positive number", r.PathValue("id")))
		return 0, false
	}
	return id, true
}

// actionStatus is the HTTP status of an action's error.
func actionStatus(err error) int {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// action serves POST /api/v1/messages/{id}/<name>: it runs do and answers status with the
// message as it is afterwards.
func (a *API) action(name string, status int, do func(ctx context.Context, id int64, body []byte) (*store.Message, error)) http.HandlerFunc {
	if a.cfg.Actions == nil {
		return func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotImplemented, "message actions are not available on this gateway")
		}
	}
	return a.runAction(name, status, do)
}

// runAction is action without the check that Actions are configured.
func (a *API) runAction(name string, status int, do func(ctx context.Context, id int64, body []byte) (*store.Message, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := pathID(w, r)
		if !ok {
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxActionBody))
		if err != nil {
			writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
			return
		}
		m, err := do(r.Context(), id, body)
		if err != nil {
			var bad *badRequest
			switch code := actionStatus(err); {
			case errors.As(err, &bad):
				writeError(w, http.StatusBadRequest, err.Error())
			case code == http.StatusNotFound:
				writeError(w, code, fmt.Sprintf("no message %d", id))
			case code == http.StatusInternalServerError:
				a.cfg.Log.Error("message action", "action", name, "id", id, "err", err)
				writeError(w, code, err.Error())
			default:
				writeError(w, code, err.Error())
			}
			return
		}
		attempts, err := a.cfg.Store.Attempts(r.Context(), m.ID)
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, status, toJSON(m, attempts))
	}
}

// badRequest is a request body an action cannot read.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

// decodeBody reads an optional JSON object into v: an empty body leaves v as it is.
func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &badRequest{"the body is not the JSON object expected: " + err.Error()}
	}
	if dec.More() {
		return &badRequest{"the body holds more than one JSON value"}
	}
	return nil
}

// noBody wraps an action that takes no body: a body, if any, must be an empty JSON object.
func noBody(do func(ctx context.Context, id int64) (*store.Message, error)) func(context.Context, int64, []byte) (*store.Message, error) {
	return func(ctx context.Context, id int64, body []byte) (*store.Message, error) {
		if err := decodeBody(body, &struct{}{}); err != nil {
			return nil, err
		}
		return do(ctx, id)
	}
}

func (a *API) retryNow(w http.ResponseWriter, r *http.Request) {
	a.action("retry-now", http.StatusOK, noBody(func(ctx context.Context, id int64) (*store.Message, error) {
		return a.cfg.Actions.RetryNow(ctx, id)
	}))(w, r)
}

func (a *API) stop(w http.ResponseWriter, r *http.Request) {
	a.action("stop", http.StatusOK, noBody(func(ctx context.Context, id int64) (*store.Message, error) {
		return a.cfg.Actions.Stop(ctx, id)
	}))(w, r)
}

func (a *API) refreshMessageID(w http.ResponseWriter, r *http.Request) {
	a.action("refresh-message-id", http.StatusOK, noBody(func(ctx context.Context, id int64) (*store.Message, error) {
		return a.cfg.Actions.RefreshMessageID(ctx, id)
	}))(w, r)
}

// retry takes an optional body {"new_message_id": true}.
func (a *API) retry(w http.ResponseWriter, r *http.Request) {
	a.action("retry", http.StatusOK, func(ctx context.Context, id int64, body []byte) (*store.Message, error) {
		var req struct {
			NewMessageID bool `json:"new_message_id"`
		}
		if err := decodeBody(body, &req); err != nil {
			return nil, err
		}
		return a.cfg.Actions.Retry(ctx, id, req.NewMessageID)
	})(w, r)
}

// resend answers 202 with the new message.
func (a *API) resend(w http.ResponseWriter, r *http.Request) {
	a.action("resend", http.StatusAccepted, noBody(func(ctx context.Context, id int64) (*store.Message, error) {
		return a.cfg.Actions.Resend(ctx, id)
	}))(w, r)
}

func (a *API) replay(w http.ResponseWriter, r *http.Request) {
	a.action("replay", http.StatusOK, noBody(func(ctx context.Context, id int64) (*store.Message, error) {
		return a.cfg.Actions.Replay(ctx, id)
	}))(w, r)
}

// refusal is one message a delete left in place, and why.
type refusal struct {
	ID     int64  `json:"id"`
	Status int    `json:"status"` // 404 or 409, as the single delete would answer
	Error  string `json:"error"`
}

// deleteResult answers a delete.
type deleteResult struct {
	Deleted []int64   `json:"deleted"`
	Refused []refusal `json:"refused"`
}

// deleteOne serves DELETE /api/v1/messages/{id}: 200 with {"deleted": [id]}, or the error.
func (a *API) deleteOne(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Actions == nil {
		writeError(w, http.StatusNotImplemented, "message actions are not available on this gateway")
		return
	}
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if _, err := a.cfg.Actions.Delete(r.Context(), id); err != nil {
		code := actionStatus(err)
		msg := err.Error()
		switch code {
		case http.StatusNotFound:
			msg = fmt.Sprintf("no message %d", id)
		case http.StatusInternalServerError:
			a.cfg.Log.Error("deleting a message", "id", id, "err", err)
		}
		writeError(w, code, msg)
		return
	}
	writeJSON(w, http.StatusOK, deleteResult{Deleted: []int64{id}, Refused: []refusal{}})
}

// deleteMany serves POST /api/v1/messages/delete with {"ids": [...]}: each message is
// deleted on its own, and the answer (200) lists what was deleted and what was refused and
// why. A storage failure stops the request with 500.
func (a *API) deleteMany(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Actions == nil {
		writeError(w, http.StatusNotImplemented, "message actions are not available on this gateway")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxActionBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		return
	}
	var req struct {
		IDs []int64 `json:"ids"`
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeError(w, http.StatusBadRequest, `expected a JSON body {"ids": [...]}`)
		return
	}
	if err := decodeBody(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error()+` (expected {"ids": [...]})`)
		return
	}
	switch {
	case len(req.IDs) == 0:
		writeError(w, http.StatusBadRequest, `"ids" lists no message`)
		return
	case len(req.IDs) > maxBulkDelete:
		writeError(w, http.StatusBadRequest, fmt.Sprintf(`"ids" lists %d messages; at most %d at once`, len(req.IDs), maxBulkDelete))
		return
	}
	out := deleteResult{Deleted: []int64{}, Refused: []refusal{}}
	for _, id := range req.IDs {
		_, err := a.cfg.Actions.Delete(r.Context(), id)
		switch code := actionStatus(err); {
		case err == nil:
			out.Deleted = append(out.Deleted, id)
		case code == http.StatusNotFound:
			out.Refused = append(out.Refused, refusal{ID: id, Status: code, Error: fmt.Sprintf("no message %d", id)})
		case code == http.StatusConflict:
			out.Refused = append(out.Refused, refusal{ID: id, Status: code, Error: err.Error()})
		default:
			a.cfg.Log.Error("deleting a message", "id", id, "err", err)
			writeError(w, http.StatusInternalServerError, fmt.Sprintf("deleting message %d: %v (deleted before it: %v)", id, err, out.Deleted))
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}
