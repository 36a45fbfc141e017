// Package payloadtest serves an S3-compatible bucket over HTTP on loopback, for tests of the
// s3:// payload store.
package payloadtest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3 is a running in-memory S3 server with one bucket.
type S3 struct {
	// Server is the HTTP server on 127.0.0.1.
	Server *httptest.Server
	// Bucket is the name of the bucket created at start.
	Bucket string
	// Uploads counts the requests that write object content (PUT without a copy source,
	// which includes each part of a multipart upload).
	Uploads atomic.Int64
	// Corrupt, while set, flips the first byte of every upload on its way to the store: what
	// a faulty network or proxy would do. An upload that carries its SHA-256
	// (x-amz-checksum-sha256) is then refused with 400 BadDigest, as S3 refuses it.
	Corrupt atomic.Bool
}

// Serve starts an S3 server holding objects in memory, with an empty bucket named bucket.
// It stops when the test ends.
func Serve(tb testing.TB, bucket string) *S3 {
	tb.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		tb.Fatal(err)
	}
	s := &S3{Bucket: bucket}
	fake := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog())).Server()
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") == "" {
			s.Uploads.Add(1)
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if s.Corrupt.Load() && len(body) > 0 {
				body[0] ^= 0xff
			}
			if want := r.Header.Get("X-Amz-Checksum-Sha256"); want != "" {
				sum := sha256.Sum256(body)
				if base64.StdEncoding.EncodeToString(sum[:]) != want {
					w.WriteHeader(http.StatusBadRequest)
					io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>BadDigest</Code><Message>The SHA256 you specified did not match the calculated checksum.</Message></Error>`)
					return
				}
				// The fake does not know the header; the check is made here.
				r.Header.Del("X-Amz-Checksum-Sha256")
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		fake.ServeHTTP(w, r)
	}))
	// The fake writes a second status line on some errors; that is its business, not the test's.
	s.Server.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Server.Start()
	tb.Cleanup(s.Server.Close)
	return s
}

// URL is the payload_store URL of the bucket. Credentials are not in it: the caller sets
// the AWS environment variables, or adds anonymous=true (the server checks no signature).
func (s *S3) URL(params ...string) string {
	q := url.Values{"endpoint": {s.Server.URL}, "region": {"us-east-1"}}
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	return "s3://" + s.Bucket + "?" + q.Encode()
}
