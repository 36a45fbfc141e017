package payload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// TestPutSameContentAtOnce stores one content from many goroutines at once: every Put
// answers the same key, and the stored file is whole.
func TestPutSameContentAtOnce(t *testing.T) {
	d, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	content := bytes.Repeat([]byte("UNB+UNOC:3+A+B'"), 4096)
	keys := make(chan string, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			key, _, err := d.Put(t.Context(), bytes.NewReader(content))
			if err != nil {
				t.Error(err)
			}
			keys <- key
		})
	}
	wg.Wait()
	close(keys)
	first := ""
	for k := range keys {
		if first == "" {
			first = k
		}
		if k != first {
			t.Fatalf("keys %s and %s for one content", first, k)
		}
	}
	got, err := os.ReadFile(d.file(first))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("stored %d bytes, %v; want %d", len(got), err, len(content))
	}
	if left, _ := filepath.Glob(filepath.Join(d.path, ".put-*")); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestNamedTempFile checks the fallback used where files cannot be made without a name: it
// publishes by rename, refuses an existing name, and its discard removes what was not
// published.
func TestNamedTempFile(t *testing.T) {
	dir := t.TempDir()
	tf, err := createNamedTemp(dir)
	if err != nil {
		t.Fatal(err)
	}
	tf.WriteString("x")
	dst := filepath.Join(dir, "dst")
	if err := tf.publish(dst); err != nil {
		t.Fatal(err)
	}
	tf.Close()
	tf.discard()
	if b, err := os.ReadFile(dst); err != nil || string(b) != "x" {
		t.Fatalf("published %q, %v", b, err)
	}
	tf2, err := createNamedTemp(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := tf2.publish(dst); !errors.Is(err, os.ErrExist) {
		t.Fatalf("publishing over an existing name: %v, want os.ErrExist", err)
	}
	tf2.Close()
	tf2.discard()
	if left, _ := filepath.Glob(filepath.Join(dir, ".put-*")); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
