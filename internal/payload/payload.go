// Package payload keeps the bytes of messages: payloads, wire messages and MDNs, each under
// the hex SHA-256 of its content. A Put is durable (written, fsynced and renamed into place,
// its folder fsynced) before it returns, so that a database row that names a key may be
// committed after it. Content addressing makes a Put idempotent and the archive checkable.
//
// Dir keeps the content in a local folder, S3 in an S3-compatible bucket that several
// gateways can share (through gocloud.dev/blob's S3 driver).
package payload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// ErrNotFound is returned for a key the store does not hold.
var ErrNotFound = errors.New("payload: not found")

// Blob is stored content opened for reading.
type Blob interface {
	io.Reader
	io.ReaderAt
	io.Closer
	Size() int64
}

// Store holds content by SHA-256.
type Store interface {
	// Put stores the content of r durably and returns its key (hex SHA-256) and size.
	Put(ctx context.Context, r io.Reader) (key string, size int64, err error)
	// Open returns the content under key, or ErrNotFound.
	Open(ctx context.Context, key string) (Blob, error)
	// Ping checks that the store can be written.
	Ping(ctx context.Context) error
}

// Dir is a Store in a local folder: <dir>/<key[0:2]>/<key>.
type Dir struct {
	path string
}

// OpenDir returns a Store in path, creating the folder if needed.
func OpenDir(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o750); err != nil {
		return nil, fmt.Errorf("payload: creating %s: %w", path, err)
	}
	// A Put cut short by a crash leaves its temporary file: nothing refers to it.
	if leftovers, err := filepath.Glob(filepath.Join(path, ".put-*")); err == nil {
		for _, f := range leftovers {
			os.Remove(f)
		}
	}
	return &Dir{path: path}, nil
}

// ValidKey reports whether key is a hex SHA-256, the only names the store uses (so that no
// key can reach outside the folder).
func ValidKey(key string) bool {
	if len(key) != 64 {
		return false
	}
	_, err := hex.DecodeString(key)
	return err == nil
}

func (d *Dir) file(key string) string { return filepath.Join(d.path, key[:2], key) }

// Put implements Store.
func (d *Dir) Put(ctx context.Context, r io.Reader) (string, int64, error) {
	tmp, err := createTemp(d.path)
	if err != nil {
		return "", 0, fmt.Errorf("payload: %w", err)
	}
	defer tmp.discard() // nothing to remove once published
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), contextReader{ctx, r})
	if err != nil {
		return "", 0, fmt.Errorf("payload: writing: %w", err)
	}
	key := hex.EncodeToString(h.Sum(nil))
	dst := d.file(key)
	if _, err := os.Stat(dst); err == nil {
		// The same content is already stored: the copy is dropped, so syncing it would
		// only cost an fsync.
		return key, n, nil
	}
	if err := tmp.Sync(); err != nil {
		return "", 0, fmt.Errorf("payload: writing: %w", err)
	}
	sub := filepath.Dir(dst)
	if _, err := os.Stat(sub); errors.Is(err, os.ErrNotExist) {
		if err := os.Mkdir(sub, 0o750); err != nil && !errors.Is(err, os.ErrExist) {
			return "", 0, fmt.Errorf("payload: %w", err)
		}
		// The new folder's entry must be durable too, or the file in it may vanish.
		if err := syncDir(d.path); err != nil {
			return "", 0, err
		}
	}
	if err := tmp.publish(dst); errors.Is(err, os.ErrExist) {
		// Stored meanwhile by another Put of the same content; it made that name durable.
		return key, n, syncDir(sub)
	} else if err != nil {
		return "", 0, fmt.Errorf("payload: %w", err)
	}
	if err := syncDir(sub); err != nil {
		return "", 0, err
	}
	return key, n, nil
}

// Open implements Store.
func (d *Dir) Open(_ context.Context, key string) (Blob, error) {
	if !ValidKey(key) {
		return nil, fmt.Errorf("payload: invalid key %q", key)
	}
	f, err := os.Open(d.file(key))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("payload: %w", err)
	}
	return &fileBlob{File: f, size: st.Size()}, nil
}

// Ping implements Store.
func (d *Dir) Ping(ctx context.Context) error {
	f, err := os.CreateTemp(d.path, ".ping-*")
	if err != nil {
		return fmt.Errorf("payload: folder %s is not writable: %w", d.path, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

type fileBlob struct {
	*os.File
	size int64
}

func (b *fileBlob) Size() int64 { return b.size }

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("payload: syncing %s: %w", dir, err)
	}
	return nil
}

// contextReader stops a long copy when its context ends.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
