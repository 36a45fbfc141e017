package web

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

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
	q := r.URL.Query()
	v := boxesView{layout: layout{User: s.user}, Box: q.Get("box"), Partner: q.Get("partner"), Q: q.Get("q")}
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
	c.render(w, http.StatusOK, "boxes", v)
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
