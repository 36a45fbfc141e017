package outbound

import (
	"bytes"
	"errors"
	"io"
	"mime/multipart"
	"testing"
)

func formReader(t *testing.T, write func(*multipart.Writer)) *multipart.Reader {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	write(mw)
	mw.Close()
	return multipart.NewReader(&buf, mw.Boundary())
}

// TestReadForm: fields in any order, files spooled, the content type given to every file, an
// empty nameless file part dropped, and what cannot be read named.
func TestReadForm(t *testing.T) {
	t.Parallel()
	mr := formReader(t, func(mw *multipart.Writer) {
		w, _ := mw.CreateFormFile("file", "a.edi")
		io.WriteString(w, "ISA*")
		mw.CreateFormFile("file", "") // a file input left empty
		w, _ = mw.CreateFormFile("file", "b.xml")
		io.WriteString(w, "<b/>")
		mw.WriteField("partner", " PARTNERX ")
		mw.WriteField("content_type", "application/edi-x12")
		mw.WriteField("tag", "t1")
	})
	f, err := ReadForm(mr, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Partner != "PARTNERX" || f.Tag != "t1" || len(f.Files) != 2 {
		t.Fatalf("form %+v", f.Submission)
	}
	for i, want := range []string{"ISA*", "<b/>"} {
		got, _ := io.ReadAll(f.Files[i].Body)
		if string(got) != want || f.Files[i].ContentType != "application/edi-x12" {
			t.Errorf("file %d: %q %q", i, got, f.Files[i].ContentType)
		}
	}

	_, err = ReadForm(formReader(t, func(mw *multipart.Writer) { mw.WriteField("colour", "red") }), t.TempDir())
	var fe *FormError
	if !errors.As(err, &fe) || !fe.Unknown || fe.Field != "colour" {
		t.Fatalf("unknown field: %v", err)
	}
	_, err = ReadForm(formReader(t, func(mw *multipart.Writer) {
		mw.WriteField("subject", string(bytes.Repeat([]byte("x"), maxFormField+1)))
	}), t.TempDir())
	if !errors.As(err, &fe) || !fe.TooLong || fe.Field != "subject" {
		t.Fatalf("long field: %v", err)
	}
}
