package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/as2gate/as2gate/as2"
	"github.com/as2gate/as2gate/cms"
)

// client talks to the gateways' APIs and AS2 listeners over kept-alive connections.
var client = &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128, IdleConnTimeout: time.Minute}}

// submitted is the API's answer to a submission.
type submitted struct {
	ID        int64  `json:"id"`
	MessageID string `json:"message_id"`
}

// submit posts one file to partner through g's API; body streams, so a large file is never
// held in memory.
func submit(ctx context.Context, g *gateway, partner, name string, body io.Reader) (submitted, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := mw.WriteField("partner", partner)
		if err == nil {
			var w io.Writer
			if w, err = mw.CreateFormFile("file", name); err == nil {
				if _, err = io.Copy(w, body); err == nil {
					err = mw.Close()
				}
			}
		}
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(ctx, "POST", g.adminURL()+"/api/v1/messages", pr)
	if err != nil {
		return submitted{}, err
	}
	req.Header.Set("Authorization", "Bearer "+g.token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := client.Do(req)
	if err != nil {
		return submitted{}, fmt.Errorf("%s: submitting %s: %w", g.name, name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return submitted{}, err
	}
	if resp.StatusCode != http.StatusAccepted {
		return submitted{}, fmt.Errorf("%s: submitting %s: HTTP %d: %s", g.name, name, resp.StatusCode, bytes.TrimSpace(b))
	}
	var s submitted
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: submitting %s: %w", g.name, name, err)
	}
	return s, nil
}

// payload1K is the 1 KB document of the small-message phases: EDI-like text.
func payload1K() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 1024; i++ {
		fmt.Fprintf(&b, "LIN+%d++4000862141404:SRS'QTY+21:%d'PRI+AAA:%d.50'\n", i, i*7%100, i*13%1000)
	}
	return b.Bytes()[:1024]
}

// submitMany submits n copies of body to partner with conc submitters at once.
func submitMany(ctx context.Context, g *gateway, partner string, n, conc int, body []byte) ([]submitted, error) {
	out := make([]submitted, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				s, err := submit(ctx, g, partner, fmt.Sprintf("doc-%06d.edi", i), bytes.NewReader(body))
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				out[i] = s
			}
		}()
	}
	wg.Wait()
	return out, firstErr
}

// waitDone polls g's database until no outbound message of ids is queued or sending.
func waitDone(ctx context.Context, g *gateway, ids []int64, timeout time.Duration) error {
	db, err := g.db()
	if err != nil {
		return err
	}
	defer db.Close()
	if len(ids) == 0 {
		return nil
	}
	lo, hi := ids[0], ids[0]
	for _, id := range ids {
		lo, hi = min(lo, id), max(hi, id)
	}
	deadline := time.Now().Add(timeout)
	for {
		var open int
		err := db.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE direction = 'out' AND kind = 'message'
			AND id BETWEEN ? AND ? AND state IN ('queued', 'sending')`, lo, hi).Scan(&open)
		if err != nil {
			return fmt.Errorf("%s: reading the queue: %w", g.name, err)
		}
		if open == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d messages still queued or sending after %v", g.name, open, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// messageIDs reads the Message-IDs of g's messages in direction and state.
func messageIDs(ctx context.Context, g *gateway, direction, state string) (map[string]bool, error) {
	db, err := g.db()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT message_id FROM messages WHERE direction = ? AND state = ? AND kind IN ('message', '')`, direction, state)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.name, err)
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids[id] = true
	}
	return ids, rows.Err()
}

// exchanged counts the submissions that ended Sent at the sender and Received at the
// receiver.
func exchanged(ctx context.Context, sender, receiver *gateway, subs []submitted) (int, error) {
	sent, err := messageIDs(ctx, sender, "out", "sent")
	if err != nil {
		return 0, err
	}
	received, err := messageIDs(ctx, receiver, "in", "received")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range subs {
		if sent[s.MessageID] && received[s.MessageID] {
			n++
		}
	}
	return n, nil
}

func ids(subs []submitted) []int64 {
	out := make([]int64, len(subs))
	for i, s := range subs {
		out[i] = s.ID
	}
	return out
}

// throughputResult is one run of many small exchanges.
type throughputResult struct {
	n         int
	exchanged int
	elapsed   time.Duration
}

func (r throughputResult) perSecond() float64 { return float64(r.exchanged) / r.elapsed.Seconds() }

// throughput submits n 1 KB messages from sender to partner and times them until none is
// left queued or sending.
func throughput(ctx context.Context, sender, receiver *gateway, partner string, n, conc int) (throughputResult, error) {
	body := payload1K()
	start := time.Now()
	subs, err := submitMany(ctx, sender, partner, n, conc, body)
	if err != nil {
		return throughputResult{}, err
	}
	if err := waitDone(ctx, sender, ids(subs), 10*time.Minute); err != nil {
		return throughputResult{}, err
	}
	r := throughputResult{n: n, elapsed: time.Since(start)}
	if receiver == nil {
		sent, err := messageIDs(ctx, sender, "out", "sent")
		if err != nil {
			return r, err
		}
		for _, s := range subs {
			if sent[s.MessageID] {
				r.exchanged++
			}
		}
		return r, nil
	}
	r.exchanged, err = exchanged(ctx, sender, receiver, subs)
	return r, err
}

// dispositionRE finds the disposition of an MDN's machine-readable part.
var dispositionRE = regexp.MustCompile(`(?im)^Disposition:\s*([^\r\n]*)`)

// processed reports whether an MDN body says processed, without error or failure.
func processed(mdn []byte) bool {
	m := dispositionRE.FindSubmatch(mdn)
	if m == nil {
		return false
	}
	d := strings.ToLower(string(m[1]))
	_, mods, _ := strings.Cut(d, ";")
	mods = strings.TrimSpace(mods)
	return strings.HasPrefix(mods, "processed") && !strings.Contains(mods, "/error") && !strings.Contains(mods, "failed")
}

// receiveResult is the receiver-role run.
type receiveResult struct {
	n, processed, stored int
	elapsed              time.Duration
}

func (r receiveResult) perSecond() float64 { return float64(r.stored) / r.elapsed.Seconds() }

// prebuilt packs one signed and encrypted 1 KB message from `from` to `to` that asks for a
// signed synchronous MDN; its body is replayed under fresh Message-IDs, which AS2 carries
// only in the HTTP header.
func prebuilt(from, to *identity) (http.Header, []byte, error) {
	mic, err := as2.ParseMICAlg("sha-256")
	if err != nil {
		return nil, nil, err
	}
	msg, err := as2.Pack([]as2.Payload{{Filename: "doc.edi", ContentType: "application/edi-x12", Body: bytes.NewReader(payload1K())}}, &as2.PackOptions{
		From: from.id, To: to.id, Sign: mic, Certificate: from.cert, Key: from.key,
		Encrypt: cms.AES256CBC, Recipients: []*x509.Certificate{to.cert},
		MDN: as2.MDNRequest{Mode: as2.MDNSync, Signed: true},
	})
	if err != nil {
		return nil, nil, err
	}
	defer msg.Close()
	body, err := io.ReadAll(msg.Body.Open())
	if err != nil {
		return nil, nil, err
	}
	return msg.Header, body, nil
}

// receive replays the pre-built message to g n times, conc at once, each with its own
// Message-ID, and counts the MDNs that say processed; then checks each is stored.
func receive(ctx context.Context, from, to *identity, g *gateway, n, conc int) (receiveResult, error) {
	header, body, err := prebuilt(from, to)
	if err != nil {
		return receiveResult{}, fmt.Errorf("packing the replayed message: %w", err)
	}
	run := time.Now().UnixNano()
	var next, ok atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				req, err := http.NewRequestWithContext(ctx, "POST", g.as2URL(), bytes.NewReader(body))
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				req.Header = header.Clone()
				req.Header.Set("Message-ID", fmt.Sprintf("<replay-%d-%d@as2bench>", run, i))
				resp, err := client.Do(req)
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				mdn, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode == http.StatusOK && processed(mdn) {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	r := receiveResult{n: n, processed: int(ok.Load()), elapsed: time.Since(start)}
	if firstErr != nil {
		return r, firstErr
	}
	received, err := messageIDs(ctx, g, "in", "received")
	if err != nil {
		return r, err
	}
	for i := range n {
		if received[fmt.Sprintf("<replay-%d-%d@as2bench>", run, i)] {
			r.stored++
		}
	}
	r.stored = min(r.stored, r.processed)
	return r, nil
}

// pickupResult holds the pick-up latencies, sorted.
type pickupResult struct {
	ms []float64
}

func (p pickupResult) quantile(q float64) float64 {
	if len(p.ms) == 0 {
		return 0
	}
	i := int(q*float64(len(p.ms))+0.5) - 1
	return p.ms[min(max(i, 0), len(p.ms)-1)]
}

// pickup submits n messages at rate per second and reads the sender's log for the time from
// each submission to its request's headers going out.
func pickup(ctx context.Context, sender *gateway, partner string, n int, rate float64) (pickupResult, error) {
	body := payload1K()
	subs := make([]submitted, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	for i := range n {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := submit(ctx, sender, partner, fmt.Sprintf("pickup-%06d.edi", i), bytes.NewReader(body))
			if err != nil {
				errs <- err
			}
			subs[i] = s
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return pickupResult{}, err
	}
	if err := waitDone(ctx, sender, ids(subs), 5*time.Minute); err != nil {
		return pickupResult{}, err
	}
	want := map[string]bool{}
	for _, s := range subs {
		want[s.MessageID] = true
	}
	f, err := os.Open(sender.log)
	if err != nil {
		return pickupResult{}, err
	}
	defer f.Close()
	var res pickupResult
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if !bytes.Contains(sc.Bytes(), []byte(`"pickup_ms"`)) {
			continue
		}
		var line struct {
			MessageID string  `json:"message_id"`
			PickupMS  float64 `json:"pickup_ms"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && want[line.MessageID] {
			res.ms = append(res.ms, line.PickupMS)
			delete(want, line.MessageID)
		}
	}
	if err := sc.Err(); err != nil {
		return res, err
	}
	if len(want) > 0 {
		return res, fmt.Errorf("%s: no pick-up time logged for %d of %d messages", sender.name, len(want), n)
	}
	sort.Float64s(res.ms)
	return res, nil
}

// bigResult is one large file sent end to end by a fresh pair of gateways.
type bigResult struct {
	bytes                  int64
	elapsed                time.Duration
	senderRSS, receiverRSS float64
}

// writeBigFile writes size pseudo-random bytes (incompressible, like most large EDI
// archives) to path.
func writeBigFile(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(int64(len(buf)), left)
		rng.Read(buf[:n])
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
		left -= n
	}
	return f.Close()
}

// bigFile sends the file at path from sender to receiver and times it from the start of the
// submission until the sender holds the MDN; then checks the receiver delivered all of it.
func bigFile(ctx context.Context, sender, receiver *gateway, partner, path string) (bigResult, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return bigResult{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return bigResult{}, err
	}
	defer f.Close()
	start := time.Now()
	s, err := submit(ctx, sender, partner, filepath.Base(path), f)
	if err != nil {
		return bigResult{}, err
	}
	if err := waitDone(ctx, sender, []int64{s.ID}, time.Hour); err != nil {
		return bigResult{}, err
	}
	r := bigResult{bytes: fi.Size(), elapsed: time.Since(start)}
	n, err := exchanged(ctx, sender, receiver, []submitted{s})
	if err != nil {
		return r, err
	}
	if n != 1 {
		return r, fmt.Errorf("the %d-byte file did not end sent at %s and received at %s; logs: %s, %s", fi.Size(), sender.name, receiver.name, sender.log, receiver.log)
	}
	delivered, err := deliveredSize(receiver, filepath.Base(path))
	if err != nil {
		return r, err
	}
	if delivered != fi.Size() {
		return r, fmt.Errorf("%s delivered %d bytes of %d", receiver.name, delivered, fi.Size())
	}
	if r.senderRSS, err = sender.peakRSS(); err != nil {
		return r, err
	}
	r.receiverRSS, err = receiver.peakRSS()
	return r, err
}

// deliveredSize is the size of the file named name in the receiver's inbox.
func deliveredSize(g *gateway, name string) (int64, error) {
	var size int64 = -1
	err := filepath.WalkDir(filepath.Join(g.dir, "data", "inbox"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.Contains(d.Name(), strings.TrimSuffix(name, filepath.Ext(name))) {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			size = fi.Size()
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if size < 0 {
		return 0, errors.New(g.name + ": " + name + " not found in the inbox")
	}
	return size, nil
}
