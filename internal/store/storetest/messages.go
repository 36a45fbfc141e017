package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

func testCreateAndGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := create(t, s, inbound("GATEWAY", "PARTNERX", messageID()))

	now := base()
	m := outbound("PARTNERX", now.Add(time.Minute))
	m.Kind = store.KindMDN
	m.Tag = "batch-7"
	m.Files = []store.File{
		{Name: "a.edi", ContentType: "application/edi-x12", Size: 1, SHA256: sha("a")},
		{Name: "b.xml", ContentType: "application/xml", Size: 2, SHA256: sha("b")},
	}
	m.Wire = sha("wire")
	m.WireHeader = header
	m.MIC = "q5Y9f1Cq3jQZ1Zh2b8S1yS0M2Xn8Y3j0rQ6o1m2w3e4=, sha-256"
	m.MDNMode = "async"
	m.MDN = &store.MDN{
		Disposition: "automatic-action/MDN-sent-automatically; processed",
		Positive:    true, MICOK: true, MIC: m.MIC, Signed: true,
		MessageID: "<mdn@partnerx>", Header: "Content-Type: multipart/report\r\n",
		Key: sha("mdn"), At: now,
	}
	m.RelatedID = in.ID
	m.LastError, m.LastCode = "connection refused", "connect_refused"
	ev := &store.Event{Type: "submitted", Detail: "2 files"}

	before := time.Now()
	if err := s.CreateMessage(ctx, m, ev); err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}
	after := time.Now()
	if m.ID == 0 || m.ID == in.ID {
		t.Errorf("ID = %d after the row %d, want a new ID", m.ID, in.ID)
	}
	if m.CreatedAt.Before(before.Add(-time.Second)) || m.CreatedAt.After(after.Add(time.Second)) {
		t.Errorf("CreatedAt = %v, want between %v and %v", m.CreatedAt, before, after)
	}
	sameTime(t, "UpdatedAt", m.UpdatedAt, m.CreatedAt)
	sameMessage(t, "GetMessage", get(t, s, m.ID), m)
	sameMessage(t, "GetMessage of the inbound row", get(t, s, in.ID), in)

	if ev.ID == 0 || ev.MessageRow != m.ID {
		t.Errorf("event ID %d, MessageRow %d; want an ID and row %d", ev.ID, ev.MessageRow, m.ID)
	}
	evs, err := s.Events(ctx, "PARTNERX", store.Outbound, 10, 0)
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if len(evs) != 1 {
		t.Fatalf("Events = %d events, want the one written with the message", len(evs))
	}
	want := store.Event{ID: ev.ID, At: evs[0].At, MessageRow: m.ID, Direction: store.Outbound,
		Partner: "PARTNERX", Tag: "batch-7", Type: "submitted", Detail: "2 files"}
	if *evs[0] != want {
		t.Errorf("event = %+v, want %+v", *evs[0], want)
	}
	if !evs[0].At.Equal(ev.At) || ev.At.IsZero() {
		t.Errorf("event At = %v, stored %v; want the store's time", ev.At, evs[0].At)
	}
}

func testCreateRejectsInvalid(t *testing.T, s store.Store) {
	tests := []struct {
		name string
		edit func(m *store.Message)
	}{
		{"no direction", func(m *store.Message) { m.Direction = "" }},
		{"unknown direction", func(m *store.Message) { m.Direction = "sideways" }},
		{"unknown state", func(m *store.Message) { m.State = "lost" }},
		{"inbound state on an outbound row", func(m *store.Message) { m.State = store.StateReceived }},
		{"outbound state on an inbound row", func(m *store.Message) { m.Direction = store.Inbound }},
		{"outbound without a kind", func(m *store.Message) { m.Kind = "" }},
		{"no Message-ID", func(m *store.Message) { m.MessageID = "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := outbound("PARTNERX", base())
			tc.edit(m)
			if err := s.CreateMessage(t.Context(), m, nil); err == nil {
				t.Errorf("CreateMessage(%+v) succeeded, want an error", m)
			}
		})
	}
	ms, err := s.ListMessages(t.Context(), store.Filter{})
	if err != nil {
		t.Fatalf("ListMessages: %v", err)
	}
	if len(ms) != 0 {
		t.Errorf("ListMessages = %v after rejected creates, want none", ids(ms))
	}
}

func testGetNotFound(t *testing.T, s store.Store) {
	m := create(t, s, outbound("PARTNERX", base()))
	for _, id := range []int64{0, -1, m.ID + 1000} {
		if _, err := s.GetMessage(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetMessage(%d) = %v, want ErrNotFound", id, err)
		}
	}
}

func testListFilters(t *testing.T, s store.Store) {
	now := base()
	mk := func(edit func(m *store.Message)) *store.Message {
		m := outbound("PARTNERX", now)
		edit(m)
		return create(t, s, m)
	}
	outbox := mk(func(m *store.Message) {})
	sending := mk(func(m *store.Message) { m.State = store.StateSending; m.Partner = "PARTNERY" })
	awaiting := mk(func(m *store.Message) { m.State = store.StateAwaitingMDN; m.Tag = "t1" })
	retrying := mk(func(m *store.Message) { m.Attempts = 2; m.Tag = "t1" })
	retryingY := mk(func(m *store.Message) { m.Attempts = 1; m.Partner = "PARTNERY"; m.State = store.StateAwaitingMDN })
	sent := mk(func(m *store.Message) { m.State = store.StateSent; m.Attempts = 1 })
	failed := mk(func(m *store.Message) { m.State = store.StateFailed; m.Attempts = 3 })
	mdnQueued := mk(func(m *store.Message) { m.Kind = store.KindMDN })
	mdnFailed := mk(func(m *store.Message) { m.Kind = store.KindMDN; m.State = store.StateFailed; m.Attempts = 1 })
	received := create(t, s, inbound("GATEWAY", "PARTNERX", messageID()))
	suspended := create(t, s, func() *store.Message {
		m := inbound("GATEWAY", "PARTNERY", messageID())
		m.State = store.StateSuspended
		m.Tag = "t1"
		return m
	}())

	tests := []struct {
		name   string
		filter store.Filter
		want   []*store.Message // newest first
	}{
		{"all", store.Filter{}, []*store.Message{suspended, received, mdnFailed, mdnQueued, failed, sent, retryingY, retrying, awaiting, sending, outbox}},
		{"outbox", store.Filter{Box: "outbox"}, []*store.Message{awaiting, sending, outbox}},
		{"queued box", store.Filter{Box: "queued"}, []*store.Message{retryingY, retrying}},
		{"sent", store.Filter{Box: "sent"}, []*store.Message{sent}},
		{"failed", store.Filter{Box: "failed"}, []*store.Message{failed}},
		{"received", store.Filter{Box: "received"}, []*store.Message{suspended, received}},
		{"direction out", store.Filter{Direction: store.Outbound}, []*store.Message{mdnFailed, mdnQueued, failed, sent, retryingY, retrying, awaiting, sending, outbox}},
		{"direction in", store.Filter{Direction: store.Inbound}, []*store.Message{suspended, received}},
		{"partner", store.Filter{Partner: "PARTNERY"}, []*store.Message{suspended, retryingY, sending}},
		{"state", store.Filter{State: store.StateFailed}, []*store.Message{mdnFailed, failed}},
		{"tag", store.Filter{Tag: "t1"}, []*store.Message{suspended, retrying, awaiting}},
		{"box and partner", store.Filter{Box: "queued", Partner: "PARTNERY"}, []*store.Message{retryingY}},
		{"box and tag", store.Filter{Box: "outbox", Tag: "t1"}, []*store.Message{awaiting}},
		{"direction and state", store.Filter{Direction: store.Outbound, State: store.StateQueued}, []*store.Message{mdnQueued, retrying, outbox}},
		{"unknown partner", store.Filter{Partner: "NOBODY"}, nil},
		{"limit", store.Filter{Direction: store.Outbound, Limit: 2}, []*store.Message{mdnFailed, mdnQueued}},
		{"before", store.Filter{Box: "outbox", Before: awaiting.ID}, []*store.Message{sending, outbox}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListMessages(t.Context(), tc.filter)
			if err != nil {
				t.Fatalf("ListMessages(%+v): %v", tc.filter, err)
			}
			sameIDs(t, fmt.Sprintf("ListMessages(%+v)", tc.filter), got, tc.want...)
		})
	}
	t.Run("full records", func(t *testing.T) {
		got, err := s.ListMessages(t.Context(), store.Filter{Box: "sent"})
		if err != nil || len(got) != 1 {
			t.Fatalf("ListMessages(sent) = %v, %v; want one", ids(got), err)
		}
		sameMessage(t, "listed message", got[0], sent)
	})
	t.Run("unknown box", func(t *testing.T) {
		if _, err := s.ListMessages(t.Context(), store.Filter{Box: "trash"}); err == nil {
			t.Error("ListMessages(box trash) succeeded, want an error")
		}
	})
}

func testListPaging(t *testing.T, s store.Store) {
	var all []*store.Message
	for i := 0; i < 57; i++ {
		all = append(all, create(t, s, outbound(fmt.Sprintf("P%d", i%2), base())))
	}
	ctx := t.Context()

	got, err := s.ListMessages(ctx, store.Filter{})
	if err != nil {
		t.Fatalf("ListMessages: %v", err)
	}
	if len(got) != 50 || got[0].ID != all[56].ID || got[49].ID != all[7].ID {
		t.Errorf("ListMessages without a limit = %v, want the newest 50, %d to %d", ids(got), all[56].ID, all[7].ID)
	}

	// Walk P0's rows three at a time with the cursor: every row once, newest first.
	var walked []int64
	before := int64(0)
	for page := 0; ; page++ {
		if page > 20 {
			t.Fatal("paging does not end")
		}
		got, err := s.ListMessages(ctx, store.Filter{Partner: "P0", Limit: 3, Before: before})
		if err != nil {
			t.Fatalf("ListMessages page %d: %v", page, err)
		}
		if len(got) > 3 {
			t.Fatalf("page %d has %d rows, limit 3", page, len(got))
		}
		if len(got) == 0 {
			break
		}
		walked = append(walked, ids(got)...)
		before = got[len(got)-1].ID
	}
	var want []int64
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Partner == "P0" {
			want = append(want, all[i].ID)
		}
	}
	if fmt.Sprint(walked) != fmt.Sprint(want) {
		t.Errorf("paged IDs = %v, want %v", walked, want)
	}
}

func testFindByMessageID(t *testing.T, s store.Store) {
	ctx := t.Context()
	id := messageID()
	first := outbound("PARTNERX", base())
	first.MessageID = id
	create(t, s, first)
	resent := outbound("PARTNERX", base())
	resent.MessageID = id
	resent.RelatedID = first.ID
	create(t, s, resent)
	in := create(t, s, inbound("GATEWAY", "PARTNERX", id))
	create(t, s, outbound("PARTNERX", base())) // another Message-ID

	got, err := s.FindByMessageID(ctx, store.Outbound, id)
	if err != nil {
		t.Fatalf("FindByMessageID(out): %v", err)
	}
	sameMessage(t, "FindByMessageID(out), the newest", got, resent)
	got, err = s.FindByMessageID(ctx, store.Inbound, id)
	if err != nil {
		t.Fatalf("FindByMessageID(in): %v", err)
	}
	sameMessage(t, "FindByMessageID(in)", got, in)

	for _, tc := range []struct{ name, direction, id string }{
		{"unknown", store.Outbound, messageID()},
		{"without angle brackets", store.Outbound, id[1 : len(id)-1]},
		{"unknown direction", "sideways", id},
	} {
		if _, err := s.FindByMessageID(ctx, tc.direction, tc.id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: FindByMessageID(%s, %s) = %v, want ErrNotFound", tc.name, tc.direction, tc.id, err)
		}
	}
}

func testFindDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	id := messageID()
	older := create(t, s, inbound("GATEWAY", "PARTNERX", id))
	m := create(t, s, inbound("GATEWAY", "PARTNERX", id))
	// The same Message-ID on other routes and as our own outbound message.
	create(t, s, inbound("OTHERSTATION", "PARTNERX", messageID()))
	create(t, s, inbound("GATEWAY", "PARTNERY", id))
	out := outbound("PARTNERX", base())
	out.MessageID = id
	create(t, s, out)

	tests := []struct {
		name                        string
		station, partner, messageID string
		since                       time.Time
		want                        *store.Message
	}{
		{"in the window", "GATEWAY", "PARTNERX", id, m.CreatedAt.Add(-time.Hour), m},
		{"at the window's start", "GATEWAY", "PARTNERX", id, m.CreatedAt, m},
		{"zero since", "GATEWAY", "PARTNERX", id, time.Time{}, m},
		{"after the window", "GATEWAY", "PARTNERX", id, m.CreatedAt.Add(time.Second), nil},
		{"other station", "OTHERSTATION", "PARTNERX", id, time.Time{}, nil},
		{"other partner", "GATEWAY", "PARTNERZ", id, time.Time{}, nil},
		{"other Message-ID", "GATEWAY", "PARTNERX", messageID(), time.Time{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.FindDuplicate(ctx, tc.station, tc.partner, tc.messageID, tc.since)
			if tc.want == nil {
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("FindDuplicate = %v, %v; want ErrNotFound", got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("FindDuplicate: %v", err)
			}
			// Either row received within the window will do.
			inWindow := got.ID == tc.want.ID || (got.ID == older.ID && !older.CreatedAt.Before(tc.since))
			if !inWindow {
				t.Errorf("FindDuplicate = row %d, want %d", got.ID, tc.want.ID)
			}
			if got.Direction != store.Inbound || got.MessageID != id {
				t.Errorf("FindDuplicate = %+v, want an inbound %s", got, id)
			}
		})
	}
}

// testCreateInbound: a received message and the job that delivers its asynchronous MDN are
// written together, the job linked to the message and claimable; invalid input writes
// nothing.
func testCreateInbound(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := inbound("GATEWAY", "PARTNERX", messageID())
	in.MDNMode = "async"
	job := &store.Message{
		Direction: store.Outbound, Kind: store.KindMDN, MessageID: messageID(), Station: "GATEWAY",
		Partner: "PARTNERX", State: store.StateQueued, Wire: sha("mdn"), URL: "https://partner.example/mdn",
		MDNMode: "none", NextAttemptAt: base(),
	}
	ev := &store.Event{Type: "received", Detail: "1 file(s)"}
	if err := s.CreateInbound(ctx, in, job, ev, base().Add(-time.Hour)); err != nil {
		t.Fatalf("CreateInbound: %v", err)
	}
	if in.ID == 0 || job.ID == 0 || job.RelatedID != in.ID {
		t.Fatalf("ids: message %d, job %d related to %d", in.ID, job.ID, job.RelatedID)
	}
	if got := get(t, s, job.ID); got.Kind != store.KindMDN || got.RelatedID != in.ID || got.State != store.StateQueued {
		t.Fatalf("job read back: %+v", got)
	}
	evs, err := s.Events(ctx, "PARTNERX", "", 10, 0)
	if err != nil || len(evs) != 1 || evs[0].MessageRow != in.ID || evs[0].Type != "received" {
		t.Fatalf("events %+v, %v", evs, err)
	}
	claimed, err := s.Claim(ctx, store.ClaimRequest{Now: base().Add(time.Minute), Owner: "w", Lease: time.Minute, Limit: 10})
	if err != nil || len(claimed) != 1 || claimed[0].ID != job.ID {
		t.Fatalf("Claim = %v, %v; want the MDN job", claimed, err)
	}

	// Without a job: only the message.
	alone := inbound("GATEWAY", "PARTNERX", messageID())
	if err := s.CreateInbound(ctx, alone, nil, nil, time.Time{}); err != nil || alone.ID == 0 {
		t.Fatalf("CreateInbound without a job: id %d, %v", alone.ID, err)
	}

	// A bad job makes the whole call fail: the message is not written either.
	lost := inbound("GATEWAY", "PARTNERX", messageID())
	bad := *job
	bad.ID, bad.Kind = 0, store.KindMessage
	if err := s.CreateInbound(ctx, lost, &bad, nil, time.Time{}); err == nil {
		t.Fatal("CreateInbound accepted a job that is not an MDN")
	}
	if _, err := s.FindByMessageID(ctx, store.Inbound, lost.MessageID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the message of a failed CreateInbound was written: %v", err)
	}
	if err := s.CreateInbound(ctx, outbound("PARTNERX", base()), nil, nil, time.Time{}); err == nil {
		t.Fatal("CreateInbound accepted an outbound message")
	}
}

// testCreateInboundDuplicate: the duplicate check of CreateInbound and its insert are one
// transaction: of many copies of one message stored at once, exactly one is kept and every
// other call gets a *DuplicateError naming it.
func testCreateInboundDuplicate(t *testing.T, s store.Store) {
	ctx := t.Context()
	id := messageID()
	since := base().Add(-time.Hour)
	const copies = 8
	errs := make(chan error, copies)
	for range copies {
		go func() {
			m := inbound("GATEWAY", "PARTNERX", id)
			errs <- s.CreateInbound(ctx, m, nil, nil, since)
		}()
	}
	kept := 0
	for range copies {
		err := <-errs
		var de *store.DuplicateError
		switch {
		case err == nil:
			kept++
		case errors.As(err, &de) && errors.Is(err, store.ErrConflict) && de.Existing.MessageID == id:
		default:
			t.Fatalf("CreateInbound: %v", err)
		}
	}
	if kept != 1 {
		t.Fatalf("%d copies kept, want 1", kept)
	}
	// Outside the window, or with the check skipped, the same Message-ID is new again.
	if err := s.CreateInbound(ctx, inbound("GATEWAY", "PARTNERX", id), nil, nil, base().Add(time.Hour)); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if err := s.CreateInbound(ctx, inbound("GATEWAY", "PARTNERY", id), nil, nil, since); err != nil {
		t.Fatalf("another partner: %v", err)
	}
}

// testDelivery: received messages are undelivered until MarkDelivered; suspended ones and
// outbound ones never are.
func testDelivery(t *testing.T, s store.Store) {
	ctx := t.Context()
	a := create(t, s, inbound("GATEWAY", "PARTNERX", messageID()))
	b := create(t, s, inbound("GATEWAY", "PARTNERX", messageID()))
	susp := inbound("GATEWAY", "PARTNERX", messageID())
	susp.State = store.StateSuspended
	create(t, s, susp)
	create(t, s, outbound("PARTNERX", base()))
	got, err := s.Undelivered(ctx, 10)
	if err != nil || len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID {
		t.Fatalf("Undelivered = %v, %v; want messages %d and %d", got, err, a.ID, b.ID)
	}
	at := base()
	if err := s.MarkDelivered(ctx, a.ID, at); err != nil {
		t.Fatal(err)
	}
	if m := get(t, s, a.ID); !m.DeliveredAt.Equal(at) {
		t.Fatalf("DeliveredAt = %v, want %v", m.DeliveredAt, at)
	}
	got, err = s.Undelivered(ctx, 10)
	if err != nil || len(got) != 1 || got[0].ID != b.ID {
		t.Fatalf("Undelivered after marking = %v, %v", got, err)
	}
	if err := s.MarkDelivered(ctx, 1<<40, at); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("MarkDelivered of a missing message: %v", err)
	}
}
