package payload

import (
	"errors"
	"os"
)

// tempFile is content being written before it is published under its key.
type tempFile struct {
	*os.File
	// publish gives the written, synced file the name dst, failing with an error that
	// matches os.ErrExist when dst exists; the file must still be open.
	publish func(dst string) error
	// discard removes what publish did not take.
	discard func()
}

// createNamedTemp makes the temporary file as a hidden name in dir, published by a rename
// (which replaces an existing dst: the same key holds the same content).
func createNamedTemp(dir string) (*tempFile, error) {
	f, err := os.CreateTemp(dir, ".put-*")
	if err != nil {
		return nil, err
	}
	return &tempFile{
		File: f,
		publish: func(dst string) error {
			if _, err := os.Stat(dst); err == nil {
				return os.ErrExist
			} else if !errors.Is(err, os.ErrNotExist) {
				return err
			}
			return os.Rename(f.Name(), dst)
		},
		discard: func() { os.Remove(f.Name()) },
	}, nil
}
