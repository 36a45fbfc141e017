package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// maxEntryForm bounds an entry's form, certificates included.
const maxEntryForm = 8 << 20

// parseEntryForm reads a form that may carry files.
func parseEntryForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, maxEntryForm)
	err := r.ParseMultipartForm(maxEntryForm)
	if errors.Is(err, http.ErrNotMultipart) {
		err = r.ParseForm()
	}
	return err
}

// formFiles returns the contents of the form's files named field; empty ones are skipped
// (a file input left empty still sends a part).
func formFiles(r *http.Request, field string) ([][]byte, error) {
	if r.MultipartForm == nil {
		return nil, nil
	}
	var out [][]byte
	for _, fh := range r.MultipartForm.File[field] {
		f, err := fh.Open()
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, err
		}
		if len(data) > 0 {
			out = append(out, data)
		}
	}
	return out, nil
}

// entrySave serves POST /partners and /profiles (a new entry from the form's fields) and
// POST /{partners,stations,profiles}/{name} (an edited document).
func (c *Console) entrySave(w http.ResponseWriter, r *http.Request, s *session) {
	k := kindOf(r)
	if err := parseEntryForm(w, r); err != nil {
		c.fail(w, http.StatusBadRequest, s.user, "The form cannot be read: "+err.Error())
		return
	}
	v := c.newEntryView(r, s, k)
	ch := EntryChange{Kind: k.Kind}
	if name := r.PathValue("name"); name != "" {
		rev, err := strconv.ParseInt(r.PostFormValue("revision"), 10, 64)
		if err != nil || rev < 1 {
			c.fail(w, http.StatusBadRequest, s.user, "The form has no revision: open the entry again and edit it there.")
			return
		}
		ch.Name, ch.Document, ch.Revision = name, r.PostFormValue("document"), rev
		v.New, v.Name, v.Document, v.Revision = false, name, ch.Document, rev
		v.Title = "Edit " + k.Title + " " + name
	} else {
		ch.Create = true
		doc, err := newEntryDocument(r, k, &v)
		if err != nil {
			v.Problems = []string{err.Error()}
			c.render(w, http.StatusBadRequest, "entry", v)
			return
		}
		ch.Name, ch.Document = v.Name, doc
		if ch.Certificates, err = formFiles(r, "cert"); err != nil {
			c.fail(w, http.StatusBadRequest, s.user, "The certificate cannot be read: "+err.Error())
			return
		}
		ch.Password = r.PostFormValue("password")
	}
	if err := c.cfg.Entries.Put(r.Context(), ch); err != nil {
		var ee *EntryError
		if errors.As(err, &ee) && (ee.Status == http.StatusUnprocessableEntity || ee.Status == http.StatusBadRequest) {
			v.Problems = append([]string{ee.Msg}, ee.Problems...)
			c.render(w, ee.Status, "entry", v)
			return
		}
		c.entryFailed(w, s, err)
		return
	}
	c.cfg.Log.Info("console: configuration entry saved", "kind", k.Kind, "name", ch.Name, "user", s.user)
	http.Redirect(w, r, "/"+listPage(k)+"?saved="+url.QueryEscape(ch.Name), http.StatusSeeOther)
}

// listPage is the page that lists entries of kind k.
func listPage(k kindInfo) string {
	if k.Kind == KindProfile {
		return "profiles"
	}
	return "partners"
}

// newEntryDocument builds a new entry's document from the form's fields, and keeps them in
// v to show the form again on a problem.
func newEntryDocument(r *http.Request, k kindInfo, v *entryView) (string, error) {
	doc := map[string]any{}
	switch k.Kind {
	case KindPartner:
		v.AS2ID, v.URL, v.Station = strings.TrimSpace(r.PostFormValue("as2_id")), strings.TrimSpace(r.PostFormValue("url")), r.PostFormValue("station")
		v.Sign, v.Encrypt, v.MDN = r.PostFormValue("sign"), r.PostFormValue("encrypt"), r.PostFormValue("mdn")
		if v.AS2ID == "" {
			return "", errors.New("as2_id: required, the partner's AS2 id")
		}
		v.Name = v.AS2ID
		doc["as2_id"], doc["url"] = v.AS2ID, v.URL
		for key, val := range map[string]string{"station": v.Station, "sign": v.Sign, "encrypt": v.Encrypt, "mdn": v.MDN} {
			if val != "" {
				doc[key] = val
			}
		}
	case KindProfile:
		v.ProfileName, v.HeaderLines = strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("headers")
		if v.ProfileName == "" {
			return "", errors.New("name: required, the name a submission gives")
		}
		v.Name = v.ProfileName
		headers := map[string]string{}
		for i, line := range strings.Split(strings.ReplaceAll(v.HeaderLines, "\r\n", "\n"), "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			name, value, ok := strings.Cut(line, ":")
			if !ok {
				return "", fmt.Errorf("headers, line %d: %q is not Name: value", i+1, line)
			}
			headers[strings.TrimSpace(name)] = strings.TrimSpace(value)
		}
		doc["name"], doc["headers"] = v.ProfileName, headers
	default:
		return "", errors.New("a station is added with its identity")
	}
	b, err := json.Marshal(doc)
	return string(b), err
}
