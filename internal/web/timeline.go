package web

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// timelineView is the timeline: every event, newest first.
type timelineView struct {
	layout
	Partner, Direction, State, Tag string
	Rows                           []eventRow
	Next                           string // URL of the next (older) page; "" on the last
}

type eventRow struct {
	At        time.Time
	Type      string
	Partner   string
	Direction string
	Tag       string
	URL       string // the message's details page; "" for an event not about one message
	Detail    string
}

// timeline serves GET /timeline?partner=&direction=&state=&tag=&before=.
func (c *Console) timeline(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	v := timelineView{layout: layout{Title: "Timeline", User: s.user},
		Partner: q.Get("partner"), Direction: q.Get("direction"), State: q.Get("state"), Tag: q.Get("tag")}
	before, ok := c.cursor(w, r, s)
	if !ok {
		return
	}
	evs, err := c.cfg.Store.Timeline(r.Context(), store.EventFilter{
		Partner: v.Partner, Direction: v.Direction, State: v.State, Tag: v.Tag, Before: before, Limit: pageSize + 1})
	if err != nil {
		c.storeFailed(w, s, err)
		return
	}
	if len(evs) > pageSize {
		evs = evs[:pageSize]
		next := url.Values{"before": {strconv.FormatInt(evs[len(evs)-1].ID, 10)}}
		setIf(next, "partner", v.Partner)
		setIf(next, "direction", v.Direction)
		setIf(next, "state", v.State)
		setIf(next, "tag", v.Tag)
		v.Next = "/timeline?" + next.Encode()
	}
	for _, e := range evs {
		row := eventRow{At: e.At, Type: e.Type, Partner: e.Partner, Direction: e.Direction, Tag: e.Tag, Detail: e.Detail}
		if e.MessageRow > 0 {
			row.URL = "/messages/" + strconv.FormatInt(e.MessageRow, 10)
		}
		v.Rows = append(v.Rows, row)
	}
	c.render(w, http.StatusOK, "timeline", v)
}
