// Package storetest is the conformance suite of store.Store: every database driver runs it
// from its own tests, so that the gateway behaves the same on each.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return openTestStore(t) })
//	}
//
// The suite passes times explicitly wherever the contract takes them (Claim's Now, due
// times, deadlines) and keeps them to whole seconds, so that a driver that stores
// microseconds passes as well as one that stores nanoseconds. Where the store reads its own
// clock (CreatedAt, the due time of a released row), the suite expects a clock close to
// time.Now.
package storetest

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// Run runs the suite. open must return a new, empty store for each call and close it when
// the test ends; the subtests run in parallel, each on its own store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, store.Store)
	}{
		{"CreateAndGet", testCreateAndGet},
		{"CreateRejectsInvalid", testCreateRejectsInvalid},
		{"CreateInbound", testCreateInbound},
		{"CreateInboundDuplicate", testCreateInboundDuplicate},
		{"Delivery", testDelivery},
		{"Reprocess", testReprocess},
		{"GetNotFound", testGetNotFound},
		{"ListFilters", testListFilters},
		{"ListPaging", testListPaging},
		{"ListSearch", testListSearch},
		{"FindByMessageID", testFindByMessageID},
		{"FindDuplicate", testFindDuplicate},
		{"ClaimDue", testClaimDue},
		{"ClaimOldestFirst", testClaimOldestFirst},
		{"ClaimExpiredLease", testClaimExpiredLease},
		{"ClaimMDNDeadline", testClaimMDNDeadline},
		{"ClaimPerPartner", testClaimPerPartner},
		{"ClaimPartnerLimits", testClaimPartnerLimits},
		{"ClaimRejectsInvalid", testClaimRejectsInvalid},
		{"ClaimConcurrent", testClaimConcurrent},
		{"ClaimConcurrentPerPartner", testClaimConcurrentPerPartner},
		{"SetWire", testSetWire},
		{"FinishRetry", testFinishRetry},
		{"FinishSent", testFinishSent},
		{"FinishAwaitingMDN", testFinishAwaitingMDN},
		{"FinishFailed", testFinishFailed},
		{"FinishRejects", testFinishRejects},
		{"Release", testRelease},
		{"CompleteMDN", testCompleteMDN},
		{"CompleteMDNRejects", testCompleteMDNRejects},
		{"NextDue", testNextDue},
		{"Attempts", testAttempts},
		{"Events", testEvents},
		{"Timeline", testTimeline},
		{"Failures", testFailures},
		{"Ping", testPing},
		{"Stats", testStats},
		{"Requeue", testRequeue},
		{"RequeueConflicts", testRequeueConflicts},
		{"Stop", testStop},
		{"DeleteMessage", testDeleteMessage},
		{"Users", testUsers},
		{"UsersRejectInvalid", testUsersRejectInvalid},
		{"UserRoles", testUserRoles},
		{"UserPasswordAndDelete", testUserPasswordAndDelete},
		{"Sessions", testSessions},
		{"SessionsRejectInvalid", testSessionsRejectInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

// base is the suite's "now" for the queue: whole seconds, close to the real time so that a
// row the store makes due at its own now is due at base plus a few minutes.
func base() time.Time {
	return time.Now().UTC().Truncate(time.Second)
}

var serial atomic.Int64

// messageID returns a Message-ID no other message of the run has.
func messageID() string {
	return fmt.Sprintf("<%d-%d@as2gate.test>", time.Now().UnixNano(), serial.Add(1))
}

// outbound returns a queued outbound message to partner, due at due.
func outbound(partner string, due time.Time) *store.Message {
	return &store.Message{
		Direction:     store.Outbound,
		Kind:          store.KindMessage,
		MessageID:     messageID(),
		Station:       "GATEWAY",
		Partner:       partner,
		Subject:       "invoice",
		State:         store.StateQueued,
		Files:         []store.File{{Name: "invoice.edi", ContentType: "application/edi-x12", Size: 42, SHA256: sha("a")}},
		MDNMode:       "sync",
		URL:           "http://127.0.0.1:4081/as2",
		NextAttemptAt: due,
	}
}

// inbound returns a received message from partner to station.
func inbound(station, partner, messageID string) *store.Message {
	return &store.Message{
		Direction: store.Inbound,
		Kind:      store.KindMessage,
		MessageID: messageID,
		Station:   station,
		Partner:   partner,
		State:     store.StateReceived,
		Wire:      sha("wire"),
		MDNMode:   "sync",
	}
}

// sha returns a fake payload key: 64 hex digits derived from s.
func sha(s string) string {
	const hex = "0123456789abcdef"
	b := make([]byte, 64)
	for i := range b {
		b[i] = hex[(int(s[i%len(s)])+i)%16]
	}
	return string(b)
}

func create(t testing.TB, s store.Store, m *store.Message) *store.Message {
	t.Helper()
	if err := s.CreateMessage(context.Background(), m, nil); err != nil {
		t.Fatalf("CreateMessage(%s): %v", m.MessageID, err)
	}
	return m
}

func get(t testing.TB, s store.Store, id int64) *store.Message {
	t.Helper()
	m, err := s.GetMessage(context.Background(), id)
	if err != nil {
		t.Fatalf("GetMessage(%d): %v", id, err)
	}
	return m
}

// claim claims with a one-minute lease and no per-partner limit.
func claim(t testing.TB, s store.Store, owner string, now time.Time, limit int) []*store.Message {
	t.Helper()
	ms, err := s.Claim(context.Background(), store.ClaimRequest{Now: now, Owner: owner, Lease: time.Minute, Limit: limit})
	if err != nil {
		t.Fatalf("Claim(%s, %v): %v", owner, now, err)
	}
	return ms
}

// claimOne claims exactly the row id.
func claimOne(t testing.TB, s store.Store, owner string, now time.Time, id int64) *store.Message {
	t.Helper()
	ms := claim(t, s, owner, now, 100)
	if len(ms) != 1 || ms[0].ID != id {
		t.Fatalf("Claim(%s, %v) = %v, want [%d]", owner, now, ids(ms), id)
	}
	return ms[0]
}

func ids(ms []*store.Message) []int64 {
	out := make([]int64, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// sameIDs fails unless got holds exactly the messages want, in order.
func sameIDs(t testing.TB, what string, got []*store.Message, want ...*store.Message) {
	t.Helper()
	if g, w := ids(got), ids(want); !slices.Equal(g, w) {
		t.Errorf("%s = %v, want %v", what, g, w)
	}
}

// normalize puts every time of m in UTC, so that reflect.DeepEqual compares instants.
func normalize(m store.Message) store.Message {
	for _, t := range []*time.Time{&m.NextAttemptAt, &m.LeaseUntil, &m.CreatedAt, &m.UpdatedAt} {
		*t = utc(*t)
	}
	if m.MDN != nil {
		mdn := *m.MDN
		mdn.At = utc(mdn.At)
		m.MDN = &mdn
	}
	return m
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

func sameMessage(t testing.TB, what string, got, want *store.Message) {
	t.Helper()
	if g, w := normalize(*got), normalize(*want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, g, w)
	}
}

// sameTime fails unless got and want are the same instant.
func sameTime(t testing.TB, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

var header = http.Header{"Content-Type": {"application/pkcs7-mime"}, "Message-Id": {"<x@y>"}}
