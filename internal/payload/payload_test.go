package payload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
