package outbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"path/filepath"
	"slices"
	"strings"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/internal/store"
)

// Route is where messages for a partner go.
type Route struct {
	Station string // our AS2 id for this partner
	URL     string // the partner's AS2 URL
	// MessageIDDomain is the right-hand side of our Message-IDs.
	MessageIDDomain string
	// MDNMode is the receipt the partner's agreement asks for: "sync", "async" or "none".
	MDNMode string
	// Profiles are the names of the send profiles a submission may name.
	Profiles []string
}

// Router finds the route to a partner by its AS2 id; an unknown partner is an error that
// names it.
type Router interface {
	Route(ctx context.Context, partner string) (*Route, error)
}

// SubmitFile is one file of a submission.
type SubmitFile struct {
	Name        string
	ContentType string // empty: detected (DetectContentType)
	Body        io.Reader
}

// Submission is a request to send files to a partner.
type Submission struct {
	Partner string
	Files   []SubmitFile
	Subject string
	Tag     string
	// Profile names a send profile whose HTTP headers go with the message, "" for none.
	Profile string
}

// SubmitError reports a submission that cannot be accepted, in words for the submitter.
type SubmitError struct{ Msg string }

func (e *SubmitError) Error() string { return e.Msg }

// Submit accepts a submission: every file is stored durably and the message row committed
// (state queued) before it returns, and only then is the submission acknowledged; then the
// worker is woken so that the message leaves without waiting for a poll.
func (w *Worker) Submit(ctx context.Context, router Router, s Submission) (*store.Message, error) {
	if s.Partner == "" {
		return nil, &SubmitError{"no partner given"}
	}
	route, err := router.Route(ctx, s.Partner)
	if err != nil {
		return nil, &SubmitError{err.Error()}
	}
	if s.Profile != "" && !slices.Contains(route.Profiles, s.Profile) {
		return nil, &SubmitError{unknownProfile(s.Profile, route.Profiles)}
	}
	if len(s.Files) == 0 {
		return nil, &SubmitError{"no file given"}
	}
	m := &store.Message{
		Direction: store.Outbound, Kind: store.KindMessage, Station: route.Station, Partner: s.Partner,
		Subject: s.Subject, Tag: s.Tag, Profile: s.Profile, State: store.StateQueued, URL: route.URL,
		MessageID: as2.NewMessageID(route.MessageIDDomain), NextAttemptAt: w.cfg.Now(), MDNMode: route.MDNMode,
	}
	for i, f := range s.Files {
		name := filepath.Base(strings.ReplaceAll(f.Name, "\\", "/"))
		if name == "." || name == "/" {
			name = ""
		}
		// Read the start for content detection, then store head and rest in one stream.
		head := make([]byte, 512)
		n, err := io.ReadFull(f.Body, head)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("outbound: reading file %d: %w", i+1, err)
		}
		head = head[:n]
		ct := f.ContentType
		if ct == "" {
			ct = DetectContentType(name, head)
		} else if _, _, err := mime.ParseMediaType(ct); err != nil {
			return nil, &SubmitError{fmt.Sprintf("file %q: content type %q is not a valid media type", name, ct)}
		}
		key, size, err := w.cfg.Payloads.Put(ctx, io.MultiReader(bytes.NewReader(head), f.Body))
		if err != nil {
			return nil, err
		}
		if size == 0 {
			return nil, &SubmitError{fmt.Sprintf("file %q is empty", name)}
		}
		m.Files = append(m.Files, store.File{Name: name, ContentType: ct, Size: size, SHA256: key})
	}
	ev := &store.Event{At: w.cfg.Now(), Direction: store.Outbound, Partner: s.Partner, Tag: s.Tag, Type: "submitted",
		Detail: fmt.Sprintf("%d file(s) queued for %s", len(m.Files), s.Partner)}
	if err := w.cfg.Store.CreateMessage(ctx, m, ev); err != nil {
		return nil, err
	}
	w.cfg.Metrics.PayloadBytes(store.Outbound, filesSize(m.Files))
	w.Wake()
	return m, nil
}

func unknownProfile(name string, known []string) string {
	if len(known) == 0 {
		return fmt.Sprintf("unknown profile %q: no send profiles are configured", name)
	}
	return fmt.Sprintf("unknown profile %q: the send profiles are %s", name, strings.Join(known, ", "))
}

// DetectContentType names the media type of a payload from its file name and first bytes
// (R-SEND-3): X12 interchanges (ISA) are application/edi-x12, EDIFACT (UNA or UNB) is
// application/edifact, other EDI is application/edi-consent, XML is application/xml, and
// otherwise the extension decides, else application/octet-stream.
func DetectContentType(name string, head []byte) string {
	t := bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\xef\xbb\xbf")), " \t\r\n")
	switch {
	case bytes.HasPrefix(t, []byte("ISA")) && len(t) > 3 && !isAlnum(t[3]):
		return "application/edi-x12"
	case bytes.HasPrefix(t, []byte("UNA")) || (bytes.HasPrefix(t, []byte("UNB")) && len(t) > 3 && !isAlnum(t[3])):
		return "application/edifact"
	case bytes.HasPrefix(t, []byte("STX=")) || bytes.HasPrefix(t, []byte("ICS")):
		// TRADACOMS and other EDI standards without their own media type.
		return "application/edi-consent"
	case bytes.HasPrefix(t, []byte("<?xml")) || (len(t) > 1 && t[0] == '<' && (isAlpha(t[1]) || t[1] == '!')):
		return "application/xml"
	}
	ext := strings.ToLower(filepath.Ext(name))
	switch ext {
	case ".edi", ".x12", ".edifact", ".edf":
		return "application/edi-consent"
	case ".xml":
		return "application/xml"
	}
	if ext != "" {
		if ct := mime.TypeByExtension(ext); ct != "" {
			return ct
		}
	}
	return "application/octet-stream"
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isAlnum(c byte) bool { return isAlpha(c) || c >= '0' && c <= '9' }
