package inbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/as2gate/as2gate/internal/store"
)

// deliver copies the payloads of a committed message into the partner's inbox folder and
// records the delivery. A failure is logged and recorded on the timeline: the message is safe
// in the archive and is delivered again at the next start (Redeliver). The error joins the
// failures, for an operator's action to report.
func (b *Backend) deliver(ctx context.Context, ag *Agreement, m *store.Message, log *slog.Logger) error {
	if ag.Inbox == "" {
		return nil
	}
	var errs []error
	failed := false
	defer func() {
		if !failed {
			if err := b.cfg.Store.MarkDelivered(context.WithoutCancel(ctx), m.ID, b.cfg.Now()); err != nil {
				log.Error("recording a delivery", "err", err)
			}
		}
	}()
	for i, f := range m.Files {
		path, err := b.deliverFile(ctx, ag.Inbox, f, fallbackName(m, i))
		if err != nil {
			failed = true
			errs = append(errs, fmt.Errorf("inbound: delivering %q to %s: %w", f.Name, ag.Inbox, err))
			log.Error("delivering a payload to the inbox", "file", f.Name, "err", err)
			b.cfg.Store.AddEvent(context.WithoutCancel(ctx), &store.Event{At: b.cfg.Now(), MessageRow: m.ID, Direction: store.Inbound,
				Partner: m.Partner, Type: "delivery_failed", Detail: err.Error()})
			continue
		}
		log.Info("payload delivered", "path", path)
	}
	return errors.Join(errs...)
}

// Redeliver delivers the received messages whose delivery was never recorded: those of a
// gateway that stopped between committing a message and writing it to the inbox. A file
// already in the inbox from the interrupted delivery may then appear twice, under a second
// name: never overwritten, never lost.
//
// A non-zero receivedBefore leaves out messages received at or after it: with several nodes
// sharing a database, another node may be delivering a message it has just received, so a
// sweep takes only those whose delivery is overdue.
func (b *Backend) Redeliver(ctx context.Context, receivedBefore time.Time) (int, error) {
	// One pass: a message whose delivery fails again stays undelivered for the next sweep
	// (and the operator's redeliver action) rather than being retried in a loop here.
	ms, err := b.cfg.Store.Undelivered(ctx, 10000)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range ms {
		if !receivedBefore.IsZero() && !m.CreatedAt.Before(receivedBefore) {
			break // oldest first: the rest are newer still
		}
		log := b.cfg.Log.With("message_id", m.MessageID, "partner", m.Partner)
		ag, err := b.cfg.Agreements.Agreement(ctx, m.Station, m.Partner)
		if err != nil {
			log.Warn("cannot deliver a received message: its agreement is gone", "err", err)
			continue
		}
		b.deliver(ctx, ag, m, log)
		n++
	}
	return n, nil
}

func fallbackName(m *store.Message, i int) string {
	id := SafeName(strings.Trim(m.MessageID, "<>"))
	if id == "" {
		id = fmt.Sprintf("message-%d", m.ID)
	}
	return fmt.Sprintf("%s-%d.dat", id, i+1)
}

// deliverFile writes one payload into dir under its sanitised name, never over an existing
// file: a name already taken gets " (2)", " (3)"… before its extension.
func (b *Backend) deliverFile(ctx context.Context, dir string, f store.File, fallback string) (string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	src, err := b.cfg.Payloads.Open(ctx, f.SHA256)
	if err != nil {
		return "", err
	}
	defer src.Close()
	tmp, err := os.CreateTemp(dir, ".incoming-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, io.NewSectionReader(src, 0, src.Size()))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	name := SafeName(f.Name)
	if name == "" {
		name = fallback
	}
	ext := filepath.Ext(name)
	stem := strings.TrimSuffix(name, ext)
	candidate := func(n int) string {
		if n == 1 {
			return filepath.Join(dir, name)
		}
		return filepath.Join(dir, fmt.Sprintf("%s (%d)%s", stem, n, ext))
	}
	for n := firstFree(candidate, maxNames); n < maxNames; n++ {
		dst := candidate(n)
		// A hard link fails if dst exists, unlike a rename: no overwrite even under a race.
		if err := os.Link(tmp.Name(), dst); err == nil {
			return dst, nil
		} else if !errors.Is(err, os.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("inbound: no free name for %q in %s", name, dir)
}

// maxNames bounds the numbered names of one file name in one folder.
const maxNames = 10000

// firstFree returns where to start linking: the first of the numbered names that is free
// when names are taken in order, as deliveries take them. It searches with stats, doubling
// then halving, so that a partner that sends the same file name thousands of times costs
// a few stats per delivery instead of one failed link per earlier file. A gap left by a
// consumer that removed a file may be skipped rather than filled; no name is ever reused
// while taken.
// The links that follow check again, so a race only costs another try.
func firstFree(candidate func(int) string, limit int) int {
	taken := func(n int) bool {
		_, err := os.Lstat(candidate(n))
		return err == nil
	}
	if !taken(1) {
		return 1
	}
	lo, hi := 1, 2 // lo is taken; hi is the first guess that may be free
	for hi < limit && taken(hi) {
		lo, hi = hi, min(hi*2, limit)
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if taken(mid) {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// SafeName reduces a file name from a partner to a plain name in one folder: no directory
// parts, no traversal, no control or reserved characters, no leading dot, at most 200 bytes.
// It returns "" when nothing usable is left.
func SafeName(name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	name = name[strings.LastIndex(name, "/")+1:]
	name = strings.Map(func(r rune) rune {
		switch {
		case r < 0x20 || r == 0x7f || !unicode.IsPrint(r):
			return -1
		case strings.ContainsRune(`<>:"|?*`, r):
			return '_'
		}
		return r
	}, name)
	name = strings.TrimLeft(strings.TrimSpace(name), ".")
	for len(name) > 200 {
		_, size := lastRune(name)
		name = name[:len(name)-size]
	}
	if name == "" || name == "." || name == ".." {
		return ""
	}
	return name
}

func lastRune(s string) (rune, int) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i]&0xc0 != 0x80 {
			return rune(s[i]), len(s) - i
		}
	}
	return 0, 1
}
