package payload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDirPutOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, err := OpenDir(filepath.Join(t.TempDir(), "payloads"))
	if err != nil {
		t.Fatal(err)
	}
	content := "ISA*00*~"
	key, n, err := d.Put(ctx, strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(content))
	if key != hex.EncodeToString(sum[:]) || n != int64(len(content)) {
		t.Fatalf("Put = %s, %d", key, n)
	}
	// Idempotent: the same content again gives the same key and leaves no temporary file.
	if key2, _, err := d.Put(ctx, strings.NewReader(content)); err != nil || key2 != key {
		t.Fatalf("second Put = %s, %v", key2, err)
	}
	entries, _ := os.ReadDir(d.path)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".put-") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
	b, err := d.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got, _ := io.ReadAll(b)
	if string(got) != content || b.Size() != int64(len(content)) {
		t.Fatalf("Open read %q, size %d", got, b.Size())
	}
	if err := d.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestDirOpenRejects(t *testing.T) {
	t.Parallel()
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Open(context.Background(), strings.Repeat("0", 64)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: %v", err)
	}
	for _, bad := range []string{"", "../../etc/passwd", strings.Repeat("g", 64), strings.Repeat("0", 63)} {
		if _, err := d.Open(context.Background(), bad); err == nil || errors.Is(err, ErrNotFound) {
			t.Fatalf("key %q: %v", bad, err)
		}
	}
}

func TestDirPutCancelled(t *testing.T) {
	t.Parallel()
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := d.Put(ctx, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context: %v", err)
	}
}
