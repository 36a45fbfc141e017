package web

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// failuresView is the failure log: every failed attempt, newest first.
type failuresView struct {
	layout
	Partner, Class, Code string
	Classes              []string
	Rows                 []failureRow
	Next                 string // URL of the next (older) page; "" on the last
}

type failureRow struct {
	At         time.Time
	Partner    string
	MessageID  string
	URL        string // the message's details page
	Class      string
	Code       string
	HTTPStatus int
	Error      string
	Action     string
}

// failures serves GET /failures?partner=&class=&code=&before=.
func (c *Console) failures(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	v := failuresView{layout: layout{Title: "Failures", User: s.user},
		Partner: q.Get("partner"), Class: q.Get("class"), Code: q.Get("code"),
		Classes: []string{store.ClassTransient, store.ClassIncomplete, store.ClassPermanent}}
	before, ok := c.cursor(w, r, s)
	if !ok {
		return
	}
	fs, err := c.cfg.Store.Failures(r.Context(), store.FailureFilter{Partner: v.Partner, Class: v.Class, Code: v.Code, Before: before, Limit: pageSize + 1})
	if err != nil {
		c.storeFailed(w, s, err)
		return
	}
	if len(fs) > pageSize {
		fs = fs[:pageSize]
		next := url.Values{"before": {strconv.FormatInt(fs[len(fs)-1].ID, 10)}}
		setIf(next, "partner", v.Partner)
		setIf(next, "class", v.Class)
		setIf(next, "code", v.Code)
		v.Next = "/failures?" + next.Encode()
	}
	for _, f := range fs {
		v.Rows = append(v.Rows, failureRow{
			At: f.At, Partner: f.Partner, MessageID: f.MessageID, URL: "/messages/" + strconv.FormatInt(f.MessageRow, 10),
			Class: f.Class, Code: f.Code, HTTPStatus: f.HTTPStatus, Error: f.Error, Action: f.Action,
		})
	}
	c.render(w, http.StatusOK, "failures", v)
}

// cursor reads the paging cursor "before" of a list page: 0 when absent. On a malformed
// cursor it shows the error page and reports false.
func (c *Console) cursor(w http.ResponseWriter, r *http.Request, s *session) (int64, bool) {
	b := r.URL.Query().Get("before")
	if b == "" {
		return 0, true
	}
	n, err := strconv.ParseInt(b, 10, 64)
	if err != nil || n <= 0 {
		c.fail(w, http.StatusBadRequest, s.user, "The page cursor "+strconv.Quote(b)+" is not a positive number.")
		return 0, false
	}
	return n, true
}

// setIf sets key in v when value is not empty, so that paging links carry only the filters
// in use.
func setIf(v url.Values, key, value string) {
	if value != "" {
		v.Set(key, value)
	}
}
