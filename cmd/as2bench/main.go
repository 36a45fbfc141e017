// Command as2bench measures as2gate on one machine: it builds (or takes) the as2gate binary,
// starts a sending and a receiving gateway as separate processes on 127.0.0.1, each with its
// own configuration file and SQLite database (WAL, synchronous FULL), and measures
//
//   - throughput: 1 KB messages signed (SHA-256), encrypted (AES-256-CBC) and answered by a
//     signed synchronous MDN, counting those Sent at the sender and Received at the receiver;
//   - the receiver alone: one pre-built request replayed with a fresh Message-ID each time,
//     several at once, counting MDNs that say processed and messages stored;
//   - pick-up latency: from a submission to its request going out, as the sender logs it;
//   - large files end to end, each by a fresh pair so that the peak resident set (VmHWM) is
//     that file's;
//   - with -libas2, the same small exchange with the libas2 peer in both directions.
//
// It prints a table and then one line of key=value pairs for tools.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/as2gate/as2gate/internal/config"
)

// options are the harness's settings; the command's flags set them.
type options struct {
	bin        string // as2gate binary; "" builds it from the module
	dir        string // work folder; "" means a temporary one, removed afterwards
	keep       bool
	messages   int
	submitters int
	receive    int
	receivers  int
	pickup     int
	pickupRate float64
	big        []int64
	workers    int
	libas2     string // peer.js folder; "" skips the libas2 runs
	libas2N    int
	profile    string // folder for CPU profiles of the throughput run; "" takes none
	profileFor time.Duration
}

func main() {
	var o options
	var big string
	flag.StringVar(&o.bin, "bin", "", "as2gate binary to run (default: go build ./cmd/as2gate into the work folder)")
	flag.StringVar(&o.dir, "dir", "", "work folder for configurations, databases and logs (default: a temporary folder, removed)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary work folder")
	flag.IntVar(&o.messages, "messages", 4000, "1 KB exchanges in the throughput run")
	flag.IntVar(&o.submitters, "submitters", 32, "API submissions in flight at once in the throughput run")
	flag.IntVar(&o.receive, "receive", 4000, "requests replayed in the receiver run")
	flag.IntVar(&o.receivers, "receive-concurrency", 12, "requests in flight at once in the receiver run")
	flag.IntVar(&o.pickup, "pickup", 1000, "submissions in the pick-up latency run")
	flag.Float64Var(&o.pickupRate, "pickup-rate", 20, "submissions per second in the pick-up latency run")
	flag.StringVar(&big, "big", "100MB,1GB", "comma-separated sizes of the large-file runs (e.g. 100MB,1GB,4GB); empty skips them")
	flag.IntVar(&o.workers, "workers", 32, "the gateways' workers setting (sends in flight)")
	flag.StringVar(&o.libas2, "libas2", "", "folder of peer.js with node_modules (e.g. interop/libas2); empty skips the libas2 runs")
	flag.IntVar(&o.libas2N, "libas2-messages", 300, "messages each way in the libas2 runs")
	flag.StringVar(&o.profile, "profile", "", "folder to write CPU profiles of both gateways during the throughput run")
	flag.DurationVar(&o.profileFor, "profile-seconds", 10*time.Second, "length of the CPU profiles")
	flag.Parse()
	for _, s := range strings.Split(big, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := config.ParseSize(s)
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "as2bench: -big %q: not a size: %v\n", s, err)
			os.Exit(2)
		}
		o.big = append(o.big, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "as2bench:", err)
		os.Exit(1)
	}
}

// results are the figures of one run; zero where a run was skipped.
type results struct {
	tp                     throughputResult
	recv                   receiveResult
	pick                   pickupResult
	big                    []bigResult
	senderRSS, receiverRSS float64
	libOut, libIn          throughputResult
	libInErr               string
}

// run runs every measurement and writes the table and the key=value line to out; progress
// goes to progress.
func run(ctx context.Context, o options, out, progress io.Writer) (err error) {
	say := func(format string, args ...any) { fmt.Fprintf(progress, format+"\n", args...) }
	if o.dir == "" {
		if o.dir, err = os.MkdirTemp("", "as2bench-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(o.dir)
		}
	}
	if o.bin == "" {
		o.bin = filepath.Join(o.dir, "as2gate")
		say("building as2gate into %s", o.bin)
		if err := build(ctx, o.bin); err != nil {
			return err
		}
	}
	keys := filepath.Join(o.dir, "keys")
	if err := os.MkdirAll(keys, 0o750); err != nil {
		return err
	}
	a, err := newIdentity(keys, "BENCH-A")
	if err != nil {
		return err
	}
	b, err := newIdentity(keys, "BENCH-B")
	if err != nil {
		return err
	}
	var r results

	// Small messages: one pair for throughput, the receiver run and pick-up latency.
	sender, receiver, err := startPair(ctx, o, filepath.Join(o.dir, "small"), a, b, o.profile != "")
	if err != nil {
		return err
	}
	defer sender.stop()
	defer receiver.stop()
	if o.messages > 0 {
		say("throughput: %d exchanges of 1 KB, %d submissions in flight", o.messages, o.submitters)
		var profDone chan error
		if o.profile != "" {
			profDone = profile(ctx, o, sender, receiver)
		}
		if r.tp, err = throughput(ctx, sender, receiver, b.id, o.messages, o.submitters); err != nil {
			return err
		}
		if profDone != nil {
			if err := <-profDone; err != nil {
				return err
			}
		}
	}
	if o.receive > 0 {
		say("receiver: %d replayed requests, %d at once", o.receive, o.receivers)
		if r.recv, err = receive(ctx, a, b, receiver, o.receive, o.receivers); err != nil {
			return err
		}
	}
	if o.pickup > 0 {
		say("pick-up latency: %d submissions at %.0f/s", o.pickup, o.pickupRate)
		if r.pick, err = pickup(ctx, sender, b.id, o.pickup, o.pickupRate); err != nil {
			return err
		}
	}
	if r.senderRSS, err = sender.peakRSS(); err != nil {
		return err
	}
	if r.receiverRSS, err = receiver.peakRSS(); err != nil {
		return err
	}
	sender.stop()
	receiver.stop()

	for _, size := range o.big {
		say("large file: %d MB", size/1_000_000)
		res, err := bigRun(ctx, o, a, b, size)
		if err != nil {
			return err
		}
		r.big = append(r.big, res)
	}
	if o.libas2 != "" {
		if err := libas2Runs(ctx, o, a, b, &r, say); err != nil {
			return err
		}
	}
	report(out, o, r)
	return nil
}

// build compiles the as2gate command of this module into bin.
func build(ctx context.Context, bin string) error {
	// The flags of a plain `go build`, so that the build cache of the tests serves it.
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/as2gate/as2gate/cmd/as2gate")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// startPair starts a sending gateway A and a receiving gateway B, each the other's partner.
func startPair(ctx context.Context, o options, dir string, a, b *identity, pprof bool) (*gateway, *gateway, error) {
	sender, err := newGateway(o.bin, filepath.Join(dir, "sender"), "sender", a, o.workers, pprof)
	if err != nil {
		return nil, nil, err
	}
	receiver, err := newGateway(o.bin, filepath.Join(dir, "receiver"), "receiver", b, o.workers, pprof)
	if err != nil {
		return nil, nil, err
	}
	sender.partners = []partnerSpec{{id: b.id, url: receiver.as2URL(), certPath: b.certPath}}
	receiver.partners = []partnerSpec{{id: a.id, url: sender.as2URL(), certPath: a.certPath}}
	if err := receiver.start(ctx); err != nil {
		return nil, nil, err
	}
	if err := sender.start(ctx); err != nil {
		receiver.stop()
		return nil, nil, err
	}
	return sender, receiver, nil
}

// bigRun sends one file of size bytes with a fresh pair of gateways.
func bigRun(ctx context.Context, o options, a, b *identity, size int64) (bigResult, error) {
	dir := filepath.Join(o.dir, fmt.Sprintf("big-%d", size))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return bigResult{}, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, fmt.Sprintf("big-%dMB.bin", size/1_000_000))
	if err := writeBigFile(file, size); err != nil {
		return bigResult{}, err
	}
	sender, receiver, err := startPair(ctx, o, dir, a, b, false)
	if err != nil {
		return bigResult{}, err
	}
	defer sender.stop()
	defer receiver.stop()
	return bigFile(ctx, sender, receiver, b.id, file)
}

// profile takes CPU profiles of both gateways while the throughput run goes on.
func profile(ctx context.Context, o options, gws ...*gateway) chan error {
	done := make(chan error, 1)
	go func() {
		if err := os.MkdirAll(o.profile, 0o750); err != nil {
			done <- err
			return
		}
		errs := make(chan error, len(gws))
		for _, g := range gws {
			go func() {
				url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", g.adminURL(), int(o.profileFor.Seconds()))
				resp, err := client.Get(url)
				if err != nil {
					errs <- err
					return
				}
				defer resp.Body.Close()
				f, err := os.Create(filepath.Join(o.profile, g.name+".cpu.pprof"))
				if err != nil {
					errs <- err
					return
				}
				_, err = io.Copy(f, resp.Body)
				errs <- errors.Join(err, f.Close())
			}()
		}
		var err error
		for range gws {
			err = errors.Join(err, <-errs)
		}
		done <- err
	}()
	return done
}

// report writes the table and the key=value line.
func report(out io.Writer, o options, r results) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "measurement\tcount\tseconds\tresult\t")
	if r.tp.n > 0 {
		fmt.Fprintf(tw, "exchanges as2gate -> as2gate (1 KB, sign+encrypt+signed sync MDN)\t%d/%d\t%.2f\t%.0f /s\t\n", r.tp.exchanged, r.tp.n, r.tp.elapsed.Seconds(), r.tp.perSecond())
	}
	if r.recv.n > 0 {
		fmt.Fprintf(tw, "receiver alone (replayed, %d at once; processed MDNs, stored)\t%d/%d\t%.2f\t%.0f /s\t\n", o.receivers, r.recv.stored, r.recv.n, r.recv.elapsed.Seconds(), r.recv.perSecond())
	}
	if len(r.pick.ms) > 0 {
		fmt.Fprintf(tw, "pick-up latency p50 / p99 / max (%.0f submissions/s)\t%d\t\t%.1f / %.1f / %.1f ms\t\n", o.pickupRate, len(r.pick.ms), r.pick.quantile(0.5), r.pick.quantile(0.99), r.pick.ms[len(r.pick.ms)-1])
	}
	fmt.Fprintf(tw, "peak RSS after the small runs: sender / receiver\t\t\t%.0f / %.0f MB\t\n", r.senderRSS, r.receiverRSS)
	for _, b := range r.big {
		fmt.Fprintf(tw, "large file %d MB end to end; peak RSS sender / receiver\t1\t%.2f\t%.0f / %.0f MB\t\n", b.bytes/1_000_000, b.elapsed.Seconds(), b.senderRSS, b.receiverRSS)
	}
	if r.libOut.n > 0 {
		fmt.Fprintf(tw, "as2gate -> libas2 receiver (1 KB, same agreement, one at a time)\t%d/%d\t%.2f\t%.1f /s (as2gate -> as2gate: %.1fx)\t\n", r.libOut.exchanged, r.libOut.n, r.libOut.elapsed.Seconds(), r.libOut.perSecond(), ratio(r.tp.perSecond(), r.libOut.perSecond()))
	}
	if r.libIn.n > 0 {
		fmt.Fprintf(tw, "libas2 sender -> as2gate (1 KB, one node process a message)\t%d/%d\t%.2f\t%.1f /s (as2gate -> as2gate: %.1fx)\t\n", r.libIn.exchanged, r.libIn.n, r.libIn.elapsed.Seconds(), r.libIn.perSecond(), ratio(r.tp.perSecond(), r.libIn.perSecond()))
	}
	if r.libInErr != "" {
		fmt.Fprintf(tw, "libas2 sender -> as2gate\t\t\t%s\t\n", r.libInErr)
	}
	tw.Flush()

	var last bigResult
	if len(r.big) > 0 {
		last = r.big[len(r.big)-1]
	}
	perSecond := func(x interface{ perSecond() float64 }, n int) float64 {
		if n == 0 {
			return 0
		}
		return x.perSecond()
	}
	fmt.Fprintf(out, "exchanges_per_s=%.1f receive_per_s=%.1f pickup_p50_ms=%.2f pickup_p99_ms=%.2f big_file_mb=%d big_file_s=%.2f big_file_rss_mb=%.1f sender_rss_mb=%.1f receiver_rss_mb=%.1f\n",
		perSecond(r.tp, r.tp.n), perSecond(r.recv, r.recv.n), r.pick.quantile(0.5), r.pick.quantile(0.99),
		last.bytes/1_000_000, last.elapsed.Seconds(), max(last.senderRSS, last.receiverRSS), r.senderRSS, r.receiverRSS)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
