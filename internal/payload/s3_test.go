package payload

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/payload/payloadtest"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// childS3Env makes the test binary serve an in-memory S3 bucket instead of running tests
// (see TestMain), so that a test can measure its own memory without the server's objects.
const childS3Env = "AS2GATE_TEST_S3_CHILD"

func TestMain(m *testing.M) {
	if bucket := os.Getenv(childS3Env); bucket != "" {
		backend := s3mem.New()
		if err := backend.CreateBucket(bucket); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		srv := httptest.NewServer(gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server())
		fmt.Println(srv.URL)
		io.Copy(io.Discard, os.Stdin) // the parent closes stdin when it is done
		srv.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childS3 starts the S3 server in a child process and returns the store's URL.
func childS3(tb testing.TB) string {
	url, _ := childS3Process(tb)
	return url
}

// childS3Process is childS3 that also returns the child's process, to read its CPU time.
func childS3Process(tb testing.TB) (string, *os.Process) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childS3Env+"=big")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("S3 child: %v", err)
	}
	return "s3://big?anonymous=true&region=us-east-1&endpoint=" + strings.TrimSpace(line), cmd.Process
}

// cpuTime returns the user and system CPU time of the process pid so far (Linux), or false.
func cpuTime(pid int) (time.Duration, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks, true
}

// reportCPU adds the CPU time per operation of this process (the store) and of the S3
// server to a benchmark's figures, so that the throughput can be put down to either side.
func reportCPU(b *testing.B, server *os.Process, run func()) {
	selfBefore, ok1 := cpuTime(os.Getpid())
	srvBefore, ok2 := cpuTime(server.Pid)
	run()
	selfAfter, ok3 := cpuTime(os.Getpid())
	srvAfter, ok4 := cpuTime(server.Pid)
	if ok1 && ok2 && ok3 && ok4 && b.N > 0 {
		b.ReportMetric(float64((selfAfter-selfBefore).Milliseconds())/float64(b.N), "store-cpu-ms/op")
		b.ReportMetric(float64((srvAfter-srvBefore).Milliseconds())/float64(b.N), "server-cpu-ms/op")
	}
}

func TestS3PutSkipsStoredContent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := payloadtest.Serve(t, "b")
	s, err := OpenS3(ctx, srv.URL("anonymous", "true"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key, _, err := s.Put(ctx, strings.NewReader("UNB+UNOA:2"))
	if err != nil {
		t.Fatal(err)
	}
	before := srv.Uploads.Load()
	if before == 0 {
		t.Fatal("the first Put uploaded nothing")
	}
	if key2, _, err := s.Put(ctx, strings.NewReader("UNB+UNOA:2")); err != nil || key2 != key {
		t.Fatalf("second Put = %s, %v", key2, err)
	}
	if after := srv.Uploads.Load(); after != before {
		t.Fatalf("the second Put of the same content uploaded again (%d uploads, then %d)", before, after)
	}
	// Nothing is left in the spool folder.
	if left, _ := os.ReadDir(s.spool); len(left) != 0 {
		t.Fatalf("spool folder holds %d files", len(left))
	}
}

// TestS3Unwritable checks Ping and Put against a bucket that does not exist.
func TestS3Unwritable(t *testing.T) {
	t.Parallel()
	srv := payloadtest.Serve(t, "exists")
	srv.Bucket = "missing"
	s, err := OpenS3(context.Background(), srv.URL("anonymous", "true"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(context.Background()); err == nil || !strings.Contains(err.Error(), "s3://missing") {
		t.Fatalf("Ping of a missing bucket: %v", err)
	}
	// A Put that cannot upload fails, small or in parts, and leaves no spool file.
	for _, size := range []int64{10, s3PartSize + 1} {
		if _, _, err := s.Put(context.Background(), &patternReader{n: size}); err == nil {
			t.Fatalf("Put of %d bytes into a missing bucket succeeded", size)
		}
	}
	if left, _ := os.ReadDir(s.spool); len(left) != 0 {
		t.Fatalf("spool folder holds %d files", len(left))
	}
}

func TestCheckS3URL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ url, want string }{
		{"s3://bucket?endpoint=http://127.0.0.1:9000&region=eu-west-1", ""},
		{"s3://bucket", ""},
		{"s3://bucket?region=us-east-1&prefix=as2/payloads", ""},
		{"gs://bucket", "scheme must be s3"},
		{"s3://?region=x", "names no bucket"},
		{"s3://key:secret@bucket", "credentials do not belong"},
		{"s3://bucket/folder", "?prefix="},
		{"s3://bucket?endpoint=127.0.0.1:9000", "http:// or https://"},
		{"s3://bucket?use_path_style=yes", "true or false"},
		{"s3://bucket?regoin=x", `unknown parameter "regoin"`},
		{"s3://bucket?region=a&region=b", "given 2 times"},
		{"s3://bucket?prefix=../x", "without .."},
		{"s3://bu cket\x7f", "invalid"},
	} {
		err := CheckS3URL(c.url)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("CheckS3URL(%q) = %v, want %q", c.url, err, c.want)
		}
	}
}

// TestS3LargeObjectBoundedMemory stores and reads back 64 MiB through the S3 store and
// checks that the heap stays far below the content's size: Put spools to disk and uploads in
// parts, Open reads through range requests.
func TestS3LargeObjectBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB through a loopback S3 server")
	}
	const size = 64 << 20
	ctx := context.Background()
	s, err := OpenS3(ctx, childS3(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Collect often, so that the heap in use follows what is live rather than garbage the
	// collector has not come to yet.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	peak := sampleHeap()

	src := &patternReader{n: size, h: sha256.New()}
	key, n, err := s.Put(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if n != size || key != hex.EncodeToString(src.h.Sum(nil)) {
		t.Fatalf("Put = %s, %d", key, n)
	}
	b, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(b, 0, b.Size())); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if got := hex.EncodeToString(h.Sum(nil)); got != key {
		t.Fatalf("read back %s", got)
	}
	grew := int64(peak()) - int64(base.HeapInuse)
	t.Logf("heap in use grew by at most %.1f MiB for %d MiB", float64(grew)/(1<<20), size>>20)
	if grew > 8<<20 {
		t.Fatalf("heap in use grew by %d MiB storing and reading %d MiB", grew>>20, size>>20)
	}
}

// sampleHeap records the largest HeapInuse until the returned function is called.
func sampleHeap() func() uint64 {
	var (
		mu   sync.Mutex
		max  uint64
		stop = make(chan struct{})
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			mu.Lock()
			max = maxU(max, ms.HeapInuse)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		return max
	}
}

func maxU(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

// patternReader yields n bytes of a counter pattern and hashes what it yields.
type patternReader struct {
	n, off int64
	seed   byte
	h      hash.Hash
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	for i := range p {
		p[i] = byte(r.off+int64(i)) ^ byte((r.off+int64(i))>>13) ^ r.seed
	}
	r.off += int64(len(p))
	if r.h != nil {
		r.h.Write(p)
	}
	return len(p), nil
}

// BenchmarkS3Put100MB and BenchmarkS3Open100MB measure the S3 store's throughput against an
// S3 server in another process on loopback; BenchmarkDir… give the local folder's for scale.
func BenchmarkS3Put100MB(b *testing.B) {
	url, server := childS3Process(b)
	s, err := OpenS3(context.Background(), url, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	reportCPU(b, server, func() { benchPut(b, s) })
}

func BenchmarkS3Open100MB(b *testing.B) {
	url, server := childS3Process(b)
	s, err := OpenS3(context.Background(), url, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	benchOpen(b, s, func(loop func()) { reportCPU(b, server, loop) })
}

func BenchmarkDirPut100MB(b *testing.B) {
	d, err := OpenDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	benchPut(b, d)
}

func BenchmarkDirOpen100MB(b *testing.B) {
	d, err := OpenDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	benchOpen(b, d, func(loop func()) { loop() })
}

const benchSize = 100 << 20

func benchPut(b *testing.B, s Store) {
	b.SetBytes(benchSize)
	for i := 0; b.Loop(); i++ {
		// New content each time, or Put would find it stored and skip the upload.
		if _, _, err := s.Put(context.Background(), &patternReader{n: benchSize, seed: byte(i)}); err != nil {
			b.Fatal(err)
		}
	}
}

func benchOpen(b *testing.B, s Store, around func(loop func())) {
	key, _, err := s.Put(context.Background(), &patternReader{n: benchSize})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchSize)
	around(func() {
		for b.Loop() {
			blob, err := s.Open(context.Background(), key)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, io.NewSectionReader(blob, 0, blob.Size())); err != nil {
				b.Fatal(err)
			}
			blob.Close()
		}
	})
}

// TestS3PingWritesSeldom: /readyz may be called by anyone who reaches the admin listener;
// a second Ping soon after a successful one only checks that the bucket answers, and fails
// when it does not.
func TestS3PingWritesSeldom(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := payloadtest.Serve(t, "b")
	s, err := OpenS3(ctx, srv.URL("anonymous", "true"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	before := srv.Uploads.Load()
	for range 5 {
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if after := srv.Uploads.Load(); after != before {
		t.Fatalf("5 Pings right after one wrote %d probes, want none", after-before)
	}
	srv.Server.Close()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping with the server gone succeeded")
	}
}

// TestS3PutChecksum: an upload carries the content's SHA-256, so content changed on the way
// is refused by the service instead of stored under a key that names other bytes.
func TestS3PutChecksum(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := payloadtest.Serve(t, "b")
	s, err := OpenS3(ctx, srv.URL("anonymous", "true"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	srv.Corrupt.Store(true)
	if key, _, err := s.Put(ctx, strings.NewReader("UNB+UNOC:3+A+B'")); err == nil {
		t.Fatalf("a Put whose bytes were changed on the way succeeded (key %s)", key)
	}
	// A content uploaded in parts: each part is checked.
	big := strings.Repeat("ISA*00*corrupt~\n", (s3PartSize+1024)/16)
	if _, _, err := s.Put(ctx, strings.NewReader(big)); err == nil {
		t.Fatal("a Put in parts whose bytes were changed on the way succeeded")
	}
	srv.Corrupt.Store(false)
	bigKey, _, err := s.Put(ctx, strings.NewReader(big))
	if err != nil {
		t.Fatalf("a Put in parts: %v", err)
	}
	if bb, err := s.Open(ctx, bigKey); err != nil || bb.Size() != int64(len(big)) {
		t.Fatalf("the content put in parts: %v", err)
	} else {
		bb.Close()
	}
	key, _, err := s.Put(ctx, strings.NewReader("UNB+UNOC:3+A+B'"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got, _ := io.ReadAll(b); string(got) != "UNB+UNOC:3+A+B'" {
		t.Fatalf("stored %q", got)
	}
}
