package store

import (
	"context"
	"testing"
)

// A store that is not an Elector serves one node, which always leads: fn runs at once, with
// Lead's context.
func TestLeadWithoutElector(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	ran := false
	Lead(ctx, struct{}{}, "role", func(c context.Context) {
		ran = true
		cancel()
		<-c.Done()
	}, func(err error) { t.Errorf("campaign error %v without an Elector", err) })
	if !ran {
		t.Fatal("fn did not run")
	}
}
