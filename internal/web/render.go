package web

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// pageNames are the pages; each is templates/<name>.html rendered inside templates/layout.html.
var pageNames = []string{"login", "boxes", "message", "error", "compose",
	"dashboard", "failures", "timeline", "partners", "entry", "profiles", "account", "users"}

// funcs are the helpers the templates call.
var funcs = template.FuncMap{
	// rfc3339 is a time as the <time datetime> attribute wants it.
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	// utc is the fallback text of a <time> element, shown until the script puts it in the
	// viewer's zone.
	"utc": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
}

// parsePages parses every page with the layout, once, at start-up.
func parsePages() (map[string]*template.Template, error) {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: parsing the %s page: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// layout is what every page's view carries for the frame around it.
type layout struct {
	Title string
	User  string // the signed-in user; "" on the sign-in page
}

func (l layout) frameOf() layout { return l }

// frame is what layout.html renders around a page: the page's title, the signed-in user
// and role (from the request's session), and the page's own view for its content.
type frame struct {
	Title string
	User  string
	Role  string
	View  any
}

// Admin reports whether the frame's user may manage users.
func (f frame) Admin() bool { return f.Role == store.RoleAdmin }

// render writes page with view. It renders into a buffer first, so that a template error
// becomes a clean 500 instead of half a page.
func (c *Console) render(w http.ResponseWriter, status int, page string, view any) {
	fr := frame{View: view}
	if l, ok := view.(interface{ frameOf() layout }); ok {
		fr.Title, fr.User = l.frameOf().Title, l.frameOf().User
	}
	if sw, ok := w.(*sessionWriter); ok {
		fr.User, fr.Role = sw.s.user, sw.s.role
	}
	var buf bytes.Buffer
	if err := c.pages[page].Execute(&buf, fr); err != nil {
		c.cfg.Log.Error("rendering a console page", "page", page, "err", err)
		http.Error(w, "The page could not be rendered; the log has the details.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorView is the page shown when a request cannot be served.
type errorView struct {
	layout
	Message string
}

// fail shows the error page with msg.
func (c *Console) fail(w http.ResponseWriter, status int, user, msg string) {
	c.render(w, status, "error", errorView{layout: layout{Title: http.StatusText(status), User: user}, Message: msg})
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// localPath reports whether next is a path on this site, so that the sign-in page only
// sends the browser back to the console and never to another site ("//evil.example").
func localPath(next string) bool {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return false
	}
	// Browsers drop tabs and line ends from URLs and read "\\" as "/": "/\t/evil.example"
	// would become "//evil.example". Refuse them, and anything that names a scheme or host.
	for _, r := range next {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return false
		}
	}
	u, err := url.Parse(next)
	return err == nil && u.Scheme == "" && u.Host == ""
}
