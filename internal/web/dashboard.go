package web

import (
	"net/http"
	"strconv"

	"github.com/as2gate/as2gate/internal/store"
)

// dashboardView is the overview: how many messages each box holds, overall and per
// partner, each count linked to its box.
type dashboardView struct {
	layout
	Boxes    []tabView // the box labels with their overall counts
	Partners []partnerCounts
}

type partnerCounts struct {
	AS2ID  string
	Counts []tabView // one per box, in the order of Boxes
}

// dashboard serves GET /dashboard. Counts are list queries capped at countCap, as on the
// boxes page, so the page stays cheap on a large database.
func (c *Console) dashboard(w http.ResponseWriter, r *http.Request, s *session) {
	v := dashboardView{layout: layout{Title: "Dashboard", User: s.user}}
	counts := func(partner string) ([]tabView, error) {
		tabs := make([]tabView, 0, len(boxList))
		for _, b := range boxList {
			ms, err := c.cfg.Store.ListMessages(r.Context(), store.Filter{Box: b.name, Partner: partner, Limit: countCap + 1})
			if err != nil {
				return nil, err
			}
			count := strconv.Itoa(len(ms))
			if len(ms) > countCap {
				count = strconv.Itoa(countCap) + "+"
			}
			tabs = append(tabs, tabView{Name: b.name, Label: b.label, Count: count, URL: boxURL(b.name, partner, "", 0)})
		}
		return tabs, nil
	}
	var err error
	if v.Boxes, err = counts(""); err != nil {
		c.storeFailed(w, s, err)
		return
	}
	if c.cfg.Partners != nil {
		ps, err := c.cfg.Partners.PartnerSettings(r.Context())
		if err != nil {
			c.settingsFailed(w, s, err)
			return
		}
		for _, p := range ps {
			tabs, err := counts(p.AS2ID)
			if err != nil {
				c.storeFailed(w, s, err)
				return
			}
			v.Partners = append(v.Partners, partnerCounts{AS2ID: p.AS2ID, Counts: tabs})
		}
	}
	c.render(w, http.StatusOK, "dashboard", v)
}
