package web

import "net/http"

// profilesView is the send profiles page.
type profilesView struct {
	layout
	Configured bool // false when the gateway cannot list them
	CanEdit    bool
	Profiles   []ProfileSettings
	Notice     string // what the last change did
}

// profiles serves GET /profiles.
func (c *Console) profiles(w http.ResponseWriter, r *http.Request, s *session) {
	v := profilesView{layout: layout{Title: "Send profiles", User: s.user}, Configured: c.cfg.Entries != nil, CanEdit: c.cfg.Entries != nil,
		Notice: notice(r)}
	if v.Configured {
		ps, err := c.cfg.Entries.ProfileSettings(r.Context())
		if err != nil {
			c.settingsFailed(w, s, err)
			return
		}
		v.Profiles = ps
	}
	c.render(w, http.StatusOK, "profiles", v)
}
