package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/as2gate/as2gate/internal/store"
)

// messageView is the details page of one message.
type messageView struct {
	layout
	M        *store.Message
	Box      string // the box the message belongs in, for the way back
	BoxLabel string
	Files    []fileView
	MDN      *store.MDN
	Attempts []*store.Attempt
	// Incomplete is set when an attempt may have reached the partner: sending the message
	// again may give the partner a second copy.
	Incomplete bool
	Actions    []actionView
	Notice     string // the outcome of an action just taken
}

type fileView struct {
	store.File
	URL string
}

// actionView is one button on the details page.
type actionView struct {
	Name    string // the route's last segment
	Label   string
	Confirm string // the question the browser asks before posting
}

// message serves GET /messages/{id}.
func (c *Console) message(w http.ResponseWriter, r *http.Request, s *session) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		c.fail(w, http.StatusBadRequest, s.user, fmt.Sprintf("Message id %q is not a positive number.", r.PathValue("id")))
		return
	}
	ctx := r.Context()
	m, err := c.cfg.Store.GetMessage(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		c.fail(w, http.StatusNotFound, s.user, fmt.Sprintf("There is no message %d.", id))
		return
	}
	if err != nil {
		c.storeFailed(w, s, err)
		return
	}
	attempts, err := c.cfg.Store.Attempts(ctx, id)
	if err != nil {
		c.storeFailed(w, s, err)
		return
	}
	v := messageView{layout: layout{Title: "Message " + strconv.FormatInt(id, 10), User: s.user},
		M: m, MDN: m.MDN, Attempts: attempts, Box: boxOf(m), Notice: notices[r.URL.Query().Get("done")]}
	for _, b := range boxList {
		if b.name == v.Box {
			v.BoxLabel = b.label
		}
	}
	for i, f := range m.Files {
		v.Files = append(v.Files, fileView{File: f, URL: fmt.Sprintf("/messages/%d/files/%d", id, i)})
	}
	for _, a := range attempts {
		if a.Class == store.ClassIncomplete {
			v.Incomplete = true
		}
	}
	if c.cfg.Actions != nil && s.may(store.RoleOperator) {
		v.Actions = actionsFor(m)
	}
	c.render(w, http.StatusOK, "message", v)
}

// notices are what the details page says after an action; the action's name comes back in
// the query, and only these texts are ever shown for it.
var notices = map[string]string{
	"retry-now": "The message is due now.",
	"stop":      "The message was stopped.",
	"retry":     "The message is queued again.",
	"resend":    "This is the new copy; the original is unchanged.",
	"replay":    "The message is queued to be sent again as it went.",
	"submitted": "The message is queued for sending.",
}

// boxOf is the box a message is listed in (store.Filter).
func boxOf(m *store.Message) string {
	switch {
	case m.Direction == store.Inbound:
		return "received"
	case m.State == store.StateSent:
		return "sent"
	case m.State == store.StateFailed:
		return "failed"
	case m.Attempts > 0:
		return "queued"
	}
	return "outbox"
}

// actionsFor lists the actions the message's state allows, as outbound.Actions checks them
// again when one is posted.
func actionsFor(m *store.Message) []actionView {
	if m.Direction != store.Outbound {
		return nil
	}
	switch m.State {
	case store.StateQueued, store.StateAwaitingMDN:
		return []actionView{
			{"retry-now", "Send now", "Send this message now instead of waiting for its next attempt?"},
			{"stop", "Stop", "Stop this message? It moves to Failed and is not sent again unless you retry it."},
		}
	case store.StateFailed:
		return []actionView{{"retry", "Retry", "Queue this message again with the same Message-ID?"}}
	case store.StateSent:
		if m.Kind != store.KindMessage {
			return nil
		}
		return []actionView{
			{"resend", "Resend", "Send a copy of this message with a new Message-ID? The partner receives it a second time."},
			{"replay", "Replay", "Send the stored bytes again with the same Message-ID? The partner sees a duplicate of a transaction it has."},
		}
	}
	return nil
}
