package store

import (
	"context"
	"time"
)

// Waker is implemented by a store that several nodes share: it tells a node that another
// one committed work that may be due (a submission, a retry, a freed partner slot), so that
// its send worker claims at once instead of at its next poll.
type Waker interface {
	// Wakeups returns a channel that receives when work may be due. Signals coalesce: one
	// pending value stands for any number of commits. It also receives after the store
	// lost and regained its connection to the notifications, since some may have been
	// missed in between. The channel is the same on every call and is never closed.
	Wakeups() <-chan struct{}
}

// Elector is implemented by a store that several nodes share: it elects one node at a time
// for work that must run once per cluster. A store without it serves one node, which always
// leads.
type Elector interface {
	// Campaign blocks until this node leads for role, or ctx ends (then it returns
	// ctx's error). lost is closed when the leadership ends without resign: the node's
	// hold on it broke (its connection to the database dropped) or the store closed; another
	// node may lead then. resign gives the leadership up; call it once the work is done.
	Campaign(ctx context.Context, role string) (lost <-chan struct{}, resign func(), err error)
}

// campaignRetry is how long Lead waits after a campaign failed for another reason than its
// context (the database unreachable) before it tries again.
const campaignRetry = 5 * time.Second

// Lead runs fn while this node leads for role, and returns when ctx ends or fn returns while
// leading. With a store that is not an Elector, fn runs at once. When the leadership is lost,
// fn's context is cancelled, Lead waits for fn to return and campaigns again. onError, when
// not nil, hears about failed campaigns.
func Lead(ctx context.Context, s any, role string, fn func(context.Context), onError func(error)) {
	e, ok := s.(Elector)
	if !ok {
		fn(ctx)
		return
	}
	for ctx.Err() == nil {
		lost, resign, err := e.Campaign(ctx, role)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if onError != nil {
				onError(err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(campaignRetry):
			}
			continue
		}
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			fn(runCtx)
		}()
		select {
		case <-done:
			// fn finished its work (or ctx ended) while leading.
			cancel()
			resign()
			return
		case <-lost:
			cancel()
			<-done
			resign()
		}
	}
}
