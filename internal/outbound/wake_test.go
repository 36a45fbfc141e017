package outbound

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/as2gate/as2gate/as2/as2test"
	"github.com/as2gate/as2gate/internal/store"
	"github.com/as2gate/as2gate/internal/store/sqlite"
)

// wakingStore is the rig's store with the store.Waker of a store shared by several nodes:
// the test plays the other node's notification. It also reports when Run has claimed and
// is about to wait, and when a row was finished.
type wakingStore struct {
	*sqlite.Store
	wakeups  chan struct{}
	waiting  chan struct{}
	finished chan int64
}

func (s *wakingStore) Wakeups() <-chan struct{} { return s.wakeups }

func (s *wakingStore) NextDue(ctx context.Context) (t time.Time, ok bool, err error) {
	t, ok, err = s.Store.NextDue(ctx)
	select {
	case s.waiting <- struct{}{}:
	default:
	}
	return t, ok, err
}

func (s *wakingStore) Finish(ctx context.Context, id int64, owner string, o store.Outcome) error {
	err := s.Store.Finish(ctx, id, owner, o)
	if err == nil {
		s.finished <- id
	}
	return err
}

// TestWorkerWakesOnOtherNodesWork: a message submitted through another node's worker (which
// wakes only that worker) is sent by this one as soon as the store signals, with an hour
// left of this worker's poll.
func TestWorkerWakesOnOtherNodesWork(t *testing.T) {
	t.Parallel()
	ws := &wakingStore{wakeups: make(chan struct{}, 1), waiting: make(chan struct{}, 1), finished: make(chan int64, 1)}
	r := newRig(t, func(c *Config) {
		ws.Store = c.Store.(*sqlite.Store)
		c.Store = ws
	})
	r.fake(t, as2test.AS2(r.as2Config()))
	other := r.cfg
	other.Owner = "node-b"
	b, err := New(other)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		r.w.Run(ctx)
	}()
	<-ws.waiting // Run found nothing due and waits for its poll (an hour)

	m, err := b.Submit(t.Context(), r.partners, Submission{
		Partner: rigPartner, Subject: "from node b",
		Files: []SubmitFile{{Name: "order.x12", Body: bytes.NewReader(rigPayload)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ws.wakeups <- struct{}{} // node b's commit, as the store's notification announces it
	if id := <-ws.finished; id != m.ID {
		t.Fatalf("finished message %d, want %d", id, m.ID)
	}
	cancel()
	<-stopped
	if got := r.get(t, m.ID); got.State != store.StateSent || got.LeaseOwner != "" {
		t.Errorf("message %d is %s, want sent by this node", m.ID, got.State)
	}
}
