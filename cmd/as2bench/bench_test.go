//go:build unix

package main

import (
	"bytes"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestHarness runs every measurement with tiny sizes against two real as2gate processes and
// checks the report's shape and that every exchange succeeded; it asserts nothing about time.
func TestHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds as2gate and runs two gateway processes")
	}
	var out, progress bytes.Buffer
	o := options{
		dir: t.TempDir(), messages: 6, submitters: 3, receive: 5, receivers: 2,
		pickup: 5, pickupRate: 50, big: []int64{1_000_000}, workers: 4,
	}
	var logs io.Writer = &progress
	if testing.Verbose() {
		logs = io.MultiWriter(&progress, os.Stderr)
	}
	if err := run(t.Context(), o, &out, logs); err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	report := out.String()
	t.Log("\n" + report)
	lines := strings.Split(strings.TrimRight(report, "\n"), "\n")
	last := lines[len(lines)-1]
	keys := []string{"exchanges_per_s", "receive_per_s", "pickup_p50_ms", "pickup_p99_ms", "big_file_mb", "big_file_s", "big_file_rss_mb", "sender_rss_mb", "receiver_rss_mb"}
	fields := strings.Fields(last)
	if len(fields) != len(keys) {
		t.Fatalf("last line %q: %d fields, want %d", last, len(fields), len(keys))
	}
	values := map[string]float64{}
	for i, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok || k != keys[i] {
			t.Fatalf("last line field %d is %q, want %s=…", i, f, keys[i])
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		values[k] = x
	}
	for _, k := range keys {
		if values[k] <= 0 {
			t.Errorf("%s = %v, want a measured value above zero", k, values[k])
		}
	}
	if values["big_file_mb"] != 1 {
		t.Errorf("big_file_mb = %v, want 1", values["big_file_mb"])
	}
	for _, want := range []string{`exchanges as2gate -> as2gate .* 6/6 `, `receiver alone .* 5/5 `, `pick-up latency .* 5 `, `large file 1 MB end to end`} {
		if !regexp.MustCompile(want).MatchString(report) {
			t.Errorf("the table has no line matching %q", want)
		}
	}
}

// TestProcessed reads MDN dispositions as the receiver run counts them.
func TestProcessed(t *testing.T) {
	for _, tc := range []struct {
		mdn  string
		want bool
	}{
		{"Reporting-UA: x\r\nDisposition: automatic-action/MDN-sent-automatically; processed\r\n", true},
		{"Disposition: automatic-action/MDN-sent-automatically; processed/warning: duplicate-document\r\n", true},
		{"Disposition: automatic-action/MDN-sent-automatically; processed/error: decryption-failed\r\n", false},
		{"Disposition: automatic-action/MDN-sent-automatically; failed/failure: unsupported format\r\n", false},
		{"no disposition at all", false},
	} {
		if got := processed([]byte(tc.mdn)); got != tc.want {
			t.Errorf("processed(%q) = %v, want %v", tc.mdn, got, tc.want)
		}
	}
}
