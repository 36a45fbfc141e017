package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The libas2 runs use interop/libas2/peer.js, the npm libas2 package as an AS2 partner, with
// the agreement of the throughput run (SHA-256, AES-256-CBC, signed synchronous MDN) and
// every workaround of peer.js for libas2's own bugs (--fix all), which otherwise fail some
// exchanges whatever the other side does.

// libas2Runs measures as2gate -> libas2 receiver and libas2 sender -> as2gate.
func libas2Runs(ctx context.Context, o options, a, b *identity, r *results, say func(string, ...any)) error {
	node, err := exec.LookPath("node")
	if err != nil {
		return fmt.Errorf("-libas2 needs node: %w", err)
	}
	dir := filepath.Join(o.dir, "libas2")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	l, err := newIdentity(dir, "BENCH-L")
	if err != nil {
		return err
	}

	say("as2gate -> libas2: %d exchanges of 1 KB", o.libas2N)
	peer, err := startLibas2Receiver(ctx, node, o.libas2, dir, l, a, o.libas2N)
	if err != nil {
		return err
	}
	defer peer.stop()
	sender, err := newGateway(o.bin, filepath.Join(dir, "sender"), "sender", a, o.workers, false)
	if err != nil {
		return err
	}
	// One send at a time: under concurrent requests peer.js's receiver signs some MDNs
	// over the wrong bytes (their digests do not match), so that libas2 can only be
	// measured serially.
	sender.partners = []partnerSpec{{id: l.id, url: peer.url, certPath: l.certPath, concurrency: 1}}
	if err := sender.start(ctx); err != nil {
		return err
	}
	defer sender.stop()
	if r.libOut, err = throughput(ctx, sender, nil, l.id, o.libas2N, o.submitters); err != nil {
		return err
	}
	sender.stop()

	n := max(o.libas2N/3, 1)
	say("libas2 -> as2gate: %d exchanges of 1 KB, one peer.js send each", n)
	receiver, err := newGateway(o.bin, filepath.Join(dir, "receiver"), "receiver", b, o.workers, false)
	if err != nil {
		return err
	}
	receiver.partners = []partnerSpec{{id: l.id, url: "http://127.0.0.1:1/as2", certPath: l.certPath}}
	if err := receiver.start(ctx); err != nil {
		return err
	}
	defer receiver.stop()
	doc := filepath.Join(dir, "doc.edi")
	if err := os.WriteFile(doc, payload1K(), 0o600); err != nil {
		return err
	}
	r.libIn, err = libas2Send(ctx, node, o.libas2, l, b, receiver.as2URL(), doc, n, 4)
	if err != nil {
		r.libInErr = err.Error()
	}
	return nil
}

// libas2Receiver is a running `peer.js receive`.
type libas2Receiver struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *libas2Receiver) stop() {
	p.cmd.Process.Kill()
	<-p.done
}

// startLibas2Receiver starts peer.js receive as self, accepting from partner, for count
// messages; it returns once the peer listens.
func startLibas2Receiver(ctx context.Context, node, peerDir, dir string, self, partner *identity, count int) (*libas2Receiver, error) {
	out := filepath.Join(dir, "received")
	if err := os.MkdirAll(out, 0o750); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, node, "--security-revert=CVE-2023-46809", "peer.js", "receive", "--port", "0",
		"--as2-id", self.id, "--cert", self.certPath, "--key", self.keyPath,
		"--partner-id", partner.id, "--partner-cert", partner.certPath, "--out", out,
		"--count", strconv.Itoa(count), "--timeout", "1800", "--fix", "all")
	cmd.Dir = peerDir
	stderr, err := os.Create(filepath.Join(dir, "peer-receive.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting peer.js receive: %w", err)
	}
	p := &libas2Receiver{cmd: cmd, done: make(chan struct{})}
	port := make(chan int, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
		for sc.Scan() {
			var ev struct {
				Listening int `json:"listening"`
			}
			if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Listening > 0 {
				port <- ev.Listening
			}
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		stderr.Close()
	}()
	select {
	case pt := <-port:
		p.url = fmt.Sprintf("http://127.0.0.1:%d/as2", pt)
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("peer.js receive exited before listening; see %s", stderr.Name())
	case <-time.After(time.Minute):
		p.stop()
		return nil, fmt.Errorf("peer.js receive not listening after a minute; see %s", stderr.Name())
	}
}

// libas2Send runs n `peer.js send`, conc at once, from self to partner at url, and counts
// the exchanges libas2 confirmed (processed MDN, signature and MIC verified).
func libas2Send(ctx context.Context, node, peerDir string, self, partner *identity, url, file string, n, conc int) (throughputResult, error) {
	var next, ok atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				cmd := exec.CommandContext(ctx, node, "peer.js", "send", "--url", url,
					"--from", self.id, "--to", partner.id, "--cert", self.certPath, "--key", self.keyPath,
					"--partner-cert", partner.certPath, "--sign", "sha-256", "--encrypt", "aes256-CBC",
					"--mdn", "sync", "--mdn-sign", "sha-256", "--file", file, "--timeout", "120", "--fix", "all")
				cmd.Dir = peerDir
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				cmd.Run()
				confirmed := false
				for line := range bytes.Lines(stdout.Bytes()) {
					var ev struct {
						Result *struct {
							OK    bool   `json:"ok"`
							Error string `json:"error"`
						} `json:"result"`
					}
					if json.Unmarshal(line, &ev) == nil && ev.Result != nil {
						confirmed = ev.Result.OK
						if !confirmed {
							once.Do(func() { firstErr = fmt.Errorf("libas2 did not confirm an exchange: %s", ev.Result.Error) })
						}
					}
				}
				if confirmed {
					ok.Add(1)
				} else {
					once.Do(func() { firstErr = fmt.Errorf("peer.js send: %s", bytes.TrimSpace(stderr.Bytes())) })
				}
			}
		}()
	}
	wg.Wait()
	return throughputResult{n: n, exchanged: int(ok.Load()), elapsed: time.Since(start)}, firstErr
}
