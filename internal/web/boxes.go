package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/as2gate/as2gate/internal/outbound"
	"github.com/as2gate/as2gate/internal/store"
)

// box is one tab of the boxes page.
type box struct{ name, label string }

var boxList = []box{
	{"outbox", "Outbox"},
	{"queued", "Queued"},
	{"sent", "Sent"},
	{"failed", "Failed"},
	{"received", "Received"},
}

// pageSize is how many messages a page lists.
const pageSize = 50

// countCap bounds the count a tab shows: counting is a list query, and a tab reads "100+"
// rather than scanning a large box on every page view.
const countCap = 100

// boxesView is the boxes page.
type boxesView struct {
	layout
	Box     string // the box shown
	Label   string
	Tabs    []tabView
	Partner string
	Q       string
	Rows    []rowView
	Next    string // URL of the next (older) page; "" on the last
	// CanDelete shows the rows' checkboxes and the "Delete selected" button.
	CanDelete bool
	// The outcome of a bulk delete: how many went, and each refusal with its reason.
	Deleted int
	Refused []string
	Error   string
}

type tabView struct {
	Name, Label, Count, URL string
	Active                  bool
}

type rowView struct {
	ID        int64
	URL       string
	At        time.Time
	Partner   string
	Subject   string
	MessageID string
	State     string
	Files     int
	LastError string
}

// boxes serves GET /messages?box=&partner=&q=&before=.
func (c *Console) boxes(w http.ResponseWriter, r *http.Request, s *session) {
	var v boxesView
	if n, err := strconv.Atoi(r.URL.Query().Get("deleted")); err == nil && n > 0 {
		v.Deleted = n // the outcome of a bulk delete that redirected here
	}
	c.renderBoxes(w, r, s, r.URL.Query(), http.StatusOK, v)
}

// renderBoxes shows the box and filters q names, with v's notices.
func (c *Console) renderBoxes(w http.ResponseWriter, r *http.Request, s *session, q url.Values, status int, v boxesView) {
	v.layout, v.Box, v.Partner, v.Q = layout{User: s.user}, q.Get("box"), q.Get("partner"), q.Get("q")
	v.CanDelete = c.cfg.Actions != nil && s.may(store.RoleOperator)
	for _, b := range boxList {
		if b.name == v.Box {
			v.Label = b.label
		}
	}
	if v.Label == "" {
		http.Redirect(w, r, "/messages?box=outbox", http.StatusSeeOther)
		return
	}
	v.Title = v.Label
	var before int64
	if b := q.Get("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			c.fail(w, http.StatusBadRequest, s.user, "The page cursor "+strconv.Quote(b)+" is not a positive number.")
			return
		}
		before = n
	}
	ctx := r.Context()
	for _, b := range boxList {
		ms, err := c.cfg.Store.ListMessages(ctx, store.Filter{Box: b.name, Partner: v.Partner, Q: v.Q, Limit: countCap + 1})
		if err != nil {
			c.storeFailed(w, s, err)
			return
		}
		count := strconv.Itoa(len(ms))
		if len(ms) > countCap {
			count = strconv.Itoa(countCap) + "+"
		}
		v.Tabs = append(v.Tabs, tabView{Name: b.name, Label: b.label, Count: count, Active: b.name == v.Box,
			URL: boxURL(b.name, v.Partner, v.Q, 0)})
	}
	ms, err := c.cfg.Store.ListMessages(ctx, store.Filter{Box: v.Box, Partner: v.Partner, Q: v.Q, Before: before, Limit: pageSize + 1})
	if err != nil {
		c.storeFailed(w, s, err)
		return
	}
	if len(ms) > pageSize {
		ms = ms[:pageSize]
		v.Next = boxURL(v.Box, v.Partner, v.Q, ms[len(ms)-1].ID)
	}
	for _, m := range ms {
		v.Rows = append(v.Rows, rowView{
			ID: m.ID, URL: "/messages/" + strconv.FormatInt(m.ID, 10), At: m.CreatedAt, Partner: m.Partner,
			Subject: m.Subject, MessageID: m.MessageID, State: m.State, Files: len(m.Files), LastError: m.LastError,
		})
	}
	c.render(w, status, "boxes", v)
}

// boxURL is the address of a box page with its filters.
func boxURL(box, partner, q string, before int64) string {
	v := url.Values{"box": {box}}
	if partner != "" {
		v.Set("partner", partner)
	}
	if q != "" {
		v.Set("q", q)
	}
	if before > 0 {
		v.Set("before", strconv.FormatInt(before, 10))
	}
	return "/messages?" + v.Encode()
}

// storeFailed shows that the store could not be read.
func (c *Console) storeFailed(w http.ResponseWriter, s *session, err error) {
	c.cfg.Log.Error("console: reading the store", "err", err)
	c.fail(w, http.StatusInternalServerError, s.user, "The database cannot be read; the log has the details.")
}

// bulkDelete serves POST /messages/delete: the ids checked on a box page, each deleted on
// its own through the same action the API's bulk delete uses; a refused row (one being
// sent) is listed with the reason. The box page is shown again with the outcome.
func (c *Console) bulkDelete(w http.ResponseWriter, r *http.Request, s *session) {
	if c.cfg.Actions == nil {
		c.fail(w, http.StatusNotImplemented, s.user, "Message actions are not available on this gateway.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBulkForm)
	if err := r.ParseForm(); err != nil {
		c.fail(w, http.StatusBadRequest, s.user, "The form could not be read: "+err.Error())
		return
	}
	back := url.Values{"box": {r.PostForm.Get("box")}, "partner": {r.PostForm.Get("partner")}, "q": {r.PostForm.Get("q")}}
	ids := r.PostForm["id"]
	switch {
	case len(ids) == 0:
		c.renderBoxes(w, r, s, back, http.StatusBadRequest, boxesView{Error: "Select at least one message to delete."})
		return
	case len(ids) > maxBulkDelete:
		c.renderBoxes(w, r, s, back, http.StatusBadRequest, boxesView{Error: fmt.Sprintf("%d messages selected; at most %d at once.", len(ids), maxBulkDelete)})
		return
	}
	var v boxesView
	for _, raw := range ids {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id <= 0 {
			v.Refused = append(v.Refused, fmt.Sprintf("%q is not a message id.", raw))
			continue
		}
		_, err = c.cfg.Actions.Delete(r.Context(), id)
		var se *outbound.StateError
		switch {
		case err == nil:
			v.Deleted++
			c.cfg.Log.Info("console: message deleted", "message", id, "user", s.user)
		case errors.Is(err, store.ErrNotFound):
			v.Refused = append(v.Refused, fmt.Sprintf("Message %d: it does not exist any more.", id))
		case errors.As(err, &se):
			v.Refused = append(v.Refused, fmt.Sprintf("Message %d: %s.", id, se.Reason))
		case errors.Is(err, store.ErrConflict):
			v.Refused = append(v.Refused, fmt.Sprintf("Message %d: %v.", id, err))
		default:
			c.cfg.Log.Error("console: deleting a message", "message", id, "err", err)
			c.fail(w, http.StatusInternalServerError, s.user, fmt.Sprintf("Deleting message %d failed after %d were deleted; the log has the details.", id, v.Deleted))
			return
		}
	}
	if len(v.Refused) == 0 {
		// Everything went: back to the box, so that reloading the page does not post again.
		http.Redirect(w, r, boxURL(back.Get("box"), back.Get("partner"), back.Get("q"), 0)+"&deleted="+strconv.Itoa(v.Deleted), http.StatusSeeOther)
		return
	}
	c.renderBoxes(w, r, s, back, http.StatusOK, v)
}

// maxBulkDelete bounds the messages of one bulk delete, as the API does; maxBulkForm
// bounds its form (about 30 bytes an id).
const (
	maxBulkDelete = 1000
	maxBulkForm   = 64 << 10
)
