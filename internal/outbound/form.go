package outbound

import (
	"fmt"
	"io"
	"mime/multipart"
	"strings"

	"github.com/as2gate/as2gate/as2"
)

// maxFormField bounds a text field of a submission form.
const maxFormField = 64 << 10

// Form is a submission read from a multipart/form-data body, as the API and the console's
// compose page receive it: fields partner, subject, tag, profile and content_type, and one
// or more file, in any order. The files wait in spools until Close.
type Form struct {
	Submission
	// ContentType is the content_type field; it has been given to every file.
	ContentType string
	spools      []*as2.Spool
}

// FormError reports a form that cannot be read. File is set when a file could not be
// read, Field for a text field or an unknown field (Unknown); neither for the form itself.
type FormError struct {
	Field   string
	File    string
	Unknown bool
	TooLong bool // a text field longer than 64 KiB
	Err     error
}

func (e *FormError) Error() string {
	switch {
	case e.Unknown:
		return fmt.Sprintf("unknown form field %q", e.Field)
	case e.TooLong:
		return fmt.Sprintf("form field %s is longer than 64 KiB", e.Field)
	case e.Field != "":
		return fmt.Sprintf("form field %s: %v", e.Field, e.Err)
	case e.File != "":
		return fmt.Sprintf("reading file %s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("reading the form: %v", e.Err)
}

func (e *FormError) Unwrap() error { return e.Err }

// ReadForm reads a submission form. Each file is spooled (to a file in spoolDir past 1 MiB)
// until the whole form is read, because the fields that say where it goes may come after
// it. A file part with neither a name nor bytes, which a browser sends for a file input left
// empty, is not a file. On error nothing needs closing.
func ReadForm(mr *multipart.Reader, spoolDir string) (*Form, error) {
	f := &Form{}
	if err := f.read(mr, spoolDir); err != nil {
		f.Close()
		return nil, err
	}
	for i := range f.Files {
		f.Files[i].ContentType = f.ContentType
	}
	return f, nil
}

func (f *Form) read(mr *multipart.Reader, spoolDir string) error {
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &FormError{Err: err}
		}
		name := p.FormName()
		var field *string
		switch name {
		case "partner":
			field = &f.Partner
		case "subject":
			field = &f.Subject
		case "tag":
			field = &f.Tag
		case "profile":
			field = &f.Profile
		case "content_type":
			field = &f.ContentType
		case "file":
			sp := as2.NewSpool(spoolDir, 0)
			f.spools = append(f.spools, sp)
			n, err := sp.ReadFrom(p)
			if err != nil {
				return &FormError{File: p.FileName(), Err: err}
			}
			if p.FileName() == "" && n == 0 {
				continue
			}
			f.Files = append(f.Files, SubmitFile{Name: p.FileName(), Body: sp.Open()})
			continue
		default:
			return &FormError{Field: name, Unknown: true}
		}
		b, err := io.ReadAll(io.LimitReader(p, maxFormField+1))
		if err != nil {
			return &FormError{Field: name, Err: err}
		}
		if len(b) > maxFormField {
			return &FormError{Field: name, TooLong: true}
		}
		*field = strings.TrimSpace(string(b))
	}
}

// Close releases the spooled files.
func (f *Form) Close() {
	for _, sp := range f.spools {
		sp.Close()
	}
	f.spools = nil
}
