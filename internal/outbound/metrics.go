package outbound

import (
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// Metrics is told what happens to messages as it happens, for monitoring. The send worker
// and the inbound backend report to it; its methods must be quick and safe for concurrent
// use. A nil Metrics in a Config reports nothing.
type Metrics interface {
	// Attempt counts one attempt at sending a row, by its failure class and code, or
	// AttemptOK for both when the partner took it.
	Attempt(class, code string)
	// Sent observes a message that reached StateSent: submitted is when it was created.
	Sent(submitted, at time.Time)
	// MDNReceived observes the time from sending a message to getting its MDN; mode is
	// "sync" or "async".
	MDNReceived(mode string, roundTrip time.Duration)
	// PayloadBytes counts payload bytes stored, direction store.Outbound for submissions and
	// store.Inbound for received messages.
	PayloadBytes(direction string, n int64)
}

// AttemptOK is the class and code Metrics.Attempt gets for an attempt that succeeded.
const AttemptOK = "ok"

// NoMetrics reports nothing.
type NoMetrics struct{}

// Attempt implements Metrics.
func (NoMetrics) Attempt(class, code string) {}

// Sent implements Metrics.
func (NoMetrics) Sent(submitted, at time.Time) {}

// MDNReceived implements Metrics.
func (NoMetrics) MDNReceived(mode string, roundTrip time.Duration) {}

// PayloadBytes implements Metrics.
func (NoMetrics) PayloadBytes(direction string, n int64) {}

// countAttempt reports the attempt of an outcome to Metrics.
func (w *Worker) countAttempt(out store.Outcome) {
	if out.Attempt != nil {
		w.cfg.Metrics.Attempt(out.Attempt.Class, out.Attempt.Code)
	} else {
		w.cfg.Metrics.Attempt(AttemptOK, AttemptOK)
	}
}

// filesSize is the total size of files.
func filesSize(files []store.File) int64 {
	var n int64
	for _, f := range files {
		n += f.Size
	}
	return n
}
