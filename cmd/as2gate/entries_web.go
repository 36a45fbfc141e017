package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/as2gate/as2gate/internal/api"
	"github.com/as2gate/as2gate/internal/config"
	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/web"
)

// consoleEntries gives the console the changes of the API, with its errors in the
// console's terms.
type consoleEntries struct{ m *managedEntries }

// Entry implements web.Entries.
func (c consoleEntries) Entry(ctx context.Context, kind, name string) (string, int64, error) {
	if c.m.inFile(kind, name) {
		return "", 0, webError(kind, name, api.ErrManagedInFile)
	}
	e, err := c.m.store.ConfigEntry(ctx, kind, name)
	if err != nil {
		return "", 0, webError(kind, name, err)
	}
	return e.Document, e.Revision, nil
}

// Put implements web.Entries.
func (c consoleEntries) Put(ctx context.Context, e web.EntryChange) error {
	_, err := c.m.Put(ctx, api.EntryChange{Kind: e.Kind, Name: e.Name, Document: []byte(e.Document),
		Certificates: e.Certificates, Password: e.Password, Create: e.Create, Revision: e.Revision})
	return webError(e.Kind, e.Name, err)
}

// Delete implements web.Entries.
func (c consoleEntries) Delete(ctx context.Context, kind, name string, revision int64) error {
	return webError(kind, name, c.m.Delete(ctx, kind, name, revision))
}

// AddCertificates implements web.Entries.
func (c consoleEntries) AddCertificates(ctx context.Context, partner string, uploads [][]byte, password string, revision int64) error {
	_, _, err := c.m.AddCertificates(ctx, partner, uploads, password, false, revision)
	return webError(store.EntryPartner, partner, err)
}

// SetIdentity implements web.Entries.
func (c consoleEntries) SetIdentity(ctx context.Context, station string, id web.Identity) error {
	_, _, _, err := c.m.SetIdentity(ctx, station, api.IdentityUpload{PKCS12: id.PKCS12, Cert: id.Cert, Key: id.Key, Password: id.Password}, 0)
	return webError(store.EntryStation, station, err)
}

// ProfileSettings implements web.Entries.
func (c consoleEntries) ProfileSettings(ctx context.Context) ([]web.ProfileSettings, error) {
	ps, err := c.m.reg.ProfileSettings(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]web.ProfileSettings, 0, len(ps))
	for _, p := range ps {
		out = append(out, web.ProfileSettings{Name: p.Name, Headers: p.Headers, Source: p.Source, Revision: p.Revision})
	}
	return out, nil
}

// webError words err for the console, with the status the API would answer.
func webError(kind, name string, err error) error {
	if err == nil {
		return nil
	}
	var ve *config.ValidationError
	var ie *api.InputError
	switch {
	case errors.As(err, &ve):
		e := &web.EntryError{Status: http.StatusUnprocessableEntity, Msg: fmt.Sprintf("The %s %s is not valid:", kind, name)}
		for _, p := range ve.Problems {
			e.Problems = append(e.Problems, p.String())
		}
		return e
	case errors.As(err, &ie):
		return &web.EntryError{Status: http.StatusBadRequest, Msg: ie.Msg}
	case errors.Is(err, api.ErrManagedInFile):
		return &web.EntryError{Status: http.StatusConflict, Msg: fmt.Sprintf("The %s %s is %v.", kind, name, api.ErrManagedInFile)}
	case errors.Is(err, store.ErrNotFound):
		return &web.EntryError{Status: http.StatusNotFound, Msg: fmt.Sprintf("There is no %s %s kept in the database.", kind, name)}
	case errors.Is(err, store.ErrConflict):
		return &web.EntryError{Status: http.StatusConflict, Msg: strings.TrimPrefix(err.Error(), "sqlite: ")}
	}
	return err
}
