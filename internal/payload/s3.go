package payload

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
)

// Contents up to s3PartSize go up in one request; larger ones in parts of that size, two at a
// time. Each part is a section of the spooled file, which the SDK reads as it sends, so an
// upload holds no part in memory; S3's 10,000-part limit allows objects up to 160 GiB.
const (
	s3PartSize    = 16 << 20
	s3Concurrency = 2
)

// S3 is a Store in an S3-compatible bucket, under the same names as Dir:
// <prefix><key[0:2]>/<key>. An object is complete once its upload returns (S3 writes are
// atomic and durable when acknowledged), so the Put contract holds without a rename.
type S3 struct {
	bucket     *blob.Bucket
	client     *s3.Client // the bucket's, for uploads in parts read from the spool file
	bucketName string
	prefix     string
	spool      string
	name       string // the URL without query, for messages

	// pinged is when Ping last wrote its probe: /readyz answers anyone who reaches the admin
	// listener, so a write is made at most once per pingFresh, a read-only check otherwise.
	pingMu sync.Mutex
	pinged time.Time
}

// pingFresh is how long a successful Ping stands for the bucket's writability.
const pingFresh = 15 * time.Second

// CheckS3URL reports what is wrong with an s3:// payload store URL, without connecting:
// s3://bucket with the parameters endpoint, region, prefix, use_path_style and the others of
// gocloud.dev/blob/s3blob.
func CheckS3URL(raw string) error {
	_, _, err := parseS3URL(raw)
	return err
}

// parseS3URL checks raw and returns the URL s3blob opens (with use_path_style made explicit)
// and the key prefix.
func parseS3URL(raw string) (*url.URL, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// Without the URL, which may hold a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, "", fmt.Errorf("not a valid URL: %w", err)
	}
	if u.Scheme != s3blob.Scheme {
		return nil, "", fmt.Errorf("%q: the scheme must be s3 (s3://bucket?endpoint=…&region=…)", redactURL(u))
	}
	if u.Host == "" {
		return nil, "", fmt.Errorf("%q names no bucket (s3://bucket?…)", redactURL(u))
	}
	if u.User != nil {
		return nil, "", fmt.Errorf("%q: credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", redactURL(u))
	}
	if u.Path != "" && u.Path != "/" {
		return nil, "", fmt.Errorf("%q: a folder inside the bucket goes in ?prefix=…, not in the path", redactURL(u))
	}
	q := u.Query()
	for k, v := range q {
		switch k {
		case "endpoint":
			e, err := url.Parse(v[0])
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return nil, "", fmt.Errorf("endpoint %q must be an http:// or https:// URL", v[0])
			}
		case "region", "profile", "ssetype", "kmskeyid", "role":
		case "use_path_style", "disable_https", "accelerate", "dualstack", "fips", "hostname_immutable", "anonymous":
			if _, err := strconv.ParseBool(v[0]); err != nil {
				return nil, "", fmt.Errorf("%s=%q must be true or false", k, v[0])
			}
		case "prefix":
			if strings.HasPrefix(v[0], "/") || strings.Contains(v[0], "..") {
				return nil, "", fmt.Errorf("prefix %q must be a relative name without ..", v[0])
			}
		case "request_checksum_calculation", "response_checksum_validation":
			if v[0] != "when_supported" && v[0] != "when_required" {
				return nil, "", fmt.Errorf("%s=%q must be when_supported or when_required", k, v[0])
			}
		default:
			return nil, "", fmt.Errorf("unknown parameter %q (known: endpoint, region, prefix, use_path_style, profile, …)", k)
		}
		if len(v) > 1 {
			return nil, "", fmt.Errorf("parameter %q given %d times", k, len(v))
		}
	}
	prefix := q.Get("prefix")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	q.Del("prefix")
	// S3-compatible servers reached through an endpoint (MinIO, Ceph, gofakes3, …) rarely
	// resolve virtual-hosted bucket names, so path style is the default there.
	if q.Has("endpoint") && !q.Has("use_path_style") {
		q.Set("use_path_style", "true")
	}
	// Third-party servers often reject the SDK's default trailing checksums and send none
	// back; the content stays checkable against its key, its SHA-256.
	if q.Has("endpoint") && !q.Has("request_checksum_calculation") {
		q.Set("request_checksum_calculation", "when_required")
	}
	if q.Has("endpoint") && !q.Has("response_checksum_validation") {
		q.Set("response_checksum_validation", "when_required")
	}
	open := *u
	open.Path = ""
	open.RawQuery = q.Encode()
	return &open, prefix, nil
}

func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User("…")
	}
	return c.String()
}

// OpenS3 opens the bucket named by an s3:// URL (see CheckS3URL). Credentials come from the
// AWS SDK's usual sources: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE, the shared
// files, an instance role. spoolDir holds each Put's content while it is hashed: the key must
// be known before the upload.
func OpenS3(ctx context.Context, raw, spoolDir string) (*S3, error) {
	u, prefix, err := parseS3URL(raw)
	if err != nil {
		return nil, fmt.Errorf("payload_store: %w", err)
	}
	if err := os.MkdirAll(spoolDir, 0o750); err != nil {
		return nil, fmt.Errorf("payload: creating %s: %w", spoolDir, err)
	}
	// A Put cut short by a crash leaves its spool file: nothing refers to it.
	if leftovers, err := filepath.Glob(filepath.Join(spoolDir, ".s3put-*")); err == nil {
		for _, f := range leftovers {
			os.Remove(f)
		}
	}
	b, err := (&s3blob.URLOpener{}).OpenBucketURL(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("payload_store %s: %w", "s3://"+u.Host, err)
	}
	var client *s3.Client
	if !b.As(&client) {
		b.Close()
		return nil, fmt.Errorf("payload_store s3://%s: the S3 driver gives no client", u.Host)
	}
	return &S3{bucket: b, client: client, bucketName: u.Host, prefix: prefix, spool: spoolDir, name: "s3://" + u.Host + "/"}, nil
}

// Close releases the bucket's connections.
func (s *S3) Close() error { return s.bucket.Close() }

func (s *S3) objectName(key string) string { return s.prefix + key[:2] + "/" + key }

// Put implements Store: the content is spooled to a local file while it is hashed, then
// uploaded under its key in parts, read from the file, so memory does not grow with the
// content's size. Content already stored is not uploaded again.
func (s *S3) Put(ctx context.Context, r io.Reader) (string, int64, error) {
	tmp, err := os.CreateTemp(s.spool, ".s3put-*")
	if err != nil {
		return "", 0, fmt.Errorf("payload: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), contextReader{ctx, r})
	if err != nil {
		return "", 0, fmt.Errorf("payload: spooling: %w", err)
	}
	key := hex.EncodeToString(h.Sum(nil))
	name := s.objectName(key)
	if attrs, err := s.bucket.Attributes(ctx, name); err == nil && attrs.Size == n {
		return key, n, nil
	} else if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return "", 0, fmt.Errorf("payload: %s%s: %w", s.name, name, err)
	}
	if err := s.upload(ctx, name, tmp, n, h.Sum(nil)); err != nil {
		return "", 0, fmt.Errorf("payload: uploading to %s%s: %w", s.name, name, err)
	}
	return key, n, nil
}

// upload stores the n bytes of f under name: in one request, or in parts sent from sections of
// f. A failed upload in parts is aborted, so that the bucket keeps no orphaned parts.
//
// A single request carries the content's SHA-256 (x-amz-checksum-sha256), and each part its
// own, so that the service refuses what arrived if it is not what was hashed.
func (s *S3) upload(ctx context.Context, name string, f *os.File, n int64, sum []byte) error {
	if n <= s3PartSize {
		_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &s.bucketName, Key: &name, Body: io.NewSectionReader(f, 0, n), ContentLength: &n,
			ContentType:    aws.String("application/octet-stream"),
			ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum)),
		})
		return err
	}
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.bucketName, Key: &name, ContentType: aws.String("application/octet-stream"),
		ChecksumAlgorithm: types.ChecksumAlgorithmSha256,
	})
	if err != nil {
		return err
	}
	parts, err := s.uploadParts(ctx, name, created.UploadId, f, n)
	if err == nil {
		_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: &s.bucketName, Key: &name, UploadId: created.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
	}
	if err != nil {
		// With a context of its own: the upload's may be what ended.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &s.bucketName, Key: &name, UploadId: created.UploadId})
		return err
	}
	return nil
}

func (s *S3) uploadParts(ctx context.Context, name string, id *string, f *os.File, n int64) ([]types.CompletedPart, error) {
	count := int((n + s3PartSize - 1) / s3PartSize)
	parts := make([]types.CompletedPart, count)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range s3Concurrency {
		wg.Go(func() {
			for i := range next {
				off := int64(i) * s3PartSize
				size := min(s3PartSize, n-off)
				num := int32(i + 1)
				// Each part carries its own SHA-256, read from the spool file before it is sent.
				ph := sha256.New()
				if _, err := io.Copy(ph, io.NewSectionReader(f, off, size)); err != nil {
					cancel(fmt.Errorf("part %d: %w", num, err))
					continue
				}
				sum := aws.String(base64.StdEncoding.EncodeToString(ph.Sum(nil)))
				out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
					Bucket: &s.bucketName, Key: &name, UploadId: id, PartNumber: &num,
					Body: io.NewSectionReader(f, off, size), ContentLength: &size, ChecksumSHA256: sum,
				})
				if err != nil {
					cancel(fmt.Errorf("part %d: %w", num, err))
					continue
				}
				parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: &num, ChecksumSHA256: sum}
			}
		})
	}
feed:
	for i := range count {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return parts, nil
}

// Open implements Store.
func (s *S3) Open(ctx context.Context, key string) (Blob, error) {
	if !ValidKey(key) {
		return nil, fmt.Errorf("payload: invalid key %q", key)
	}
	name := s.objectName(key)
	attrs, err := s.bucket.Attributes(ctx, name)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("payload: %s%s: %w", s.name, name, err)
	}
	// A Blob outlives the call that opened it (the AS2 code reads it while sending), so its
	// reads are bound to a context that is not cancelled with ctx, only closed with the Blob.
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	return &s3Blob{ctx: rctx, cancel: cancel, bucket: s.bucket, name: name, size: attrs.Size}, nil
}

// Ping implements Store: it writes and deletes a small object, so that missing write
// permission shows up in readiness and not at the first message.
func (s *S3) Ping(ctx context.Context) error {
	s.pingMu.Lock()
	defer s.pingMu.Unlock()
	if !s.pinged.IsZero() && time.Since(s.pinged) < pingFresh {
		// Written lately: a read-only check that the bucket still answers will do.
		ok, err := s.bucket.IsAccessible(ctx)
		if err != nil || !ok {
			s.pinged = time.Time{}
			return fmt.Errorf("payload: bucket %s%s does not answer: %v", s.name, s.prefix, err)
		}
		return nil
	}
	// A name of its own, so that nodes sharing the bucket do not delete each other's probe.
	var rnd [8]byte
	rand.Read(rnd[:])
	name := s.prefix + ".as2gate-ping-" + hex.EncodeToString(rnd[:])
	if err := s.bucket.WriteAll(ctx, name, []byte("ping"), &blob.WriterOptions{ContentType: "text/plain"}); err != nil {
		return fmt.Errorf("payload: bucket %s%s is not writable: %w", s.name, s.prefix, err)
	}
	if err := s.bucket.Delete(ctx, name); err != nil {
		return fmt.Errorf("payload: bucket %s%s: deleting the probe: %w", s.name, s.prefix, err)
	}
	s.pinged = time.Now()
	return nil
}

// s3Blob reads an object with range requests. The AS2 code reads through io.SectionReaders,
// in small consecutive ReadAt calls; a request per call would be slow, so one open range
// reader is kept and continued while reads follow on from where it stands. A read elsewhere
// opens a new one from that offset to the end.
type s3Blob struct {
	ctx    context.Context
	cancel context.CancelFunc
	bucket *blob.Bucket
	name   string
	size   int64

	mu     sync.Mutex
	cur    *blob.Reader // nil, or positioned at curOff
	curOff int64
	pos    int64 // the position of Read
	closed bool
}

func (b *s3Blob) Size() int64 { return b.size }

func (b *s3Blob) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.readAt(p, b.pos)
	b.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (b *s3Blob) ReadAt(p []byte, off int64) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.readAt(p, off)
}

func (b *s3Blob) readAt(p []byte, off int64) (int, error) {
	if b.closed {
		return 0, os.ErrClosed
	}
	if off < 0 {
		return 0, errors.New("payload: negative offset")
	}
	if off >= b.size {
		return 0, io.EOF
	}
	if b.cur != nil && b.curOff != off {
		b.cur.Close()
		b.cur = nil
	}
	if b.cur == nil {
		r, err := b.bucket.NewRangeReader(b.ctx, b.name, off, -1, nil)
		if err != nil {
			return 0, fmt.Errorf("payload: reading %s at %d: %w", b.name, off, err)
		}
		b.cur, b.curOff = r, off
	}
	want := p
	if rest := b.size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	n, err := io.ReadFull(b.cur, want)
	b.curOff += int64(n)
	if err != nil {
		b.cur.Close()
		b.cur = nil
		return n, fmt.Errorf("payload: reading %s at %d: %w", b.name, off+int64(n), err)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (b *s3Blob) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.cur != nil {
		b.cur.Close()
		b.cur = nil
	}
	b.cancel()
	return nil
}
