// Package store is the gateway's storage seam: the records the gateway keeps (messages,
// attempts, events) and the Store interface that each database driver implements
// (store/sqlite, and store/postgres for several nodes). One conformance suite,
// store/storetest, runs against every driver.
//
// The message row is the queue's job: outbound messages are claimed with a lease, sent,
// and rescheduled or finished by the send worker; asynchronous MDNs we owe a partner are
// outbound rows of kind "mdn" and go through the same queue, retries included.
package store

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("store: not found")

// DuplicateError is returned by CreateInbound for a message received before.
type DuplicateError struct {
	Existing *Message
}

func (e *DuplicateError) Error() string {
	return "store: message " + e.Existing.MessageID + " was received before"
}

// Unwrap makes a DuplicateError an ErrConflict.
func (e *DuplicateError) Unwrap() error { return ErrConflict }

// ErrConflict is returned when a change is not allowed in the record's current state (for
// example, a lease that another worker holds, or an action on a message in the wrong state).
var ErrConflict = errors.New("store: conflict")

// Direction of a message.
const (
	Outbound = "out"
	Inbound  = "in"
)

// Kind of an outbound row.
const (
	KindMessage = "message" // an AS2 message with payloads
	KindMDN     = "mdn"     // an asynchronous MDN we send for an inbound message
)

// Message states. Outbound: queued -> sending -> (awaiting_mdn ->) sent | failed, with
// sending -> queued again for a retry. Inbound: received, or suspended when the message could
// not be unpacked or was weaker than the agreement (kept, visible, never delivered).
const (
	StateQueued      = "queued"
	StateSending     = "sending"
	StateAwaitingMDN = "awaiting_mdn"
	StateSent        = "sent"
	StateFailed      = "failed"
	StateReceived    = "received"
	StateSuspended   = "suspended"
)

// Failure classes of an attempt (DESIGN.md §3).
const (
	ClassTransient  = "transient"  // the partner did not get it: retried under the failed policy
	ClassIncomplete = "incomplete" // the partner may hold it: retried only if enabled
	ClassPermanent  = "permanent"  // never retried
)

// File is one payload of a message, kept in the payload store under its SHA-256.
type File struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"` // hex; also the payload store key
}

// MDN is the receipt of a message: the one we received for an outbound message, or the one we
// returned for an inbound message.
type MDN struct {
	Disposition string    `json:"disposition"`          // as in the MDN, e.g. "automatic-action/MDN-sent-automatically; processed"
	Positive    bool      `json:"positive"`             // processed, possibly with a warning
	MICOK       bool      `json:"mic_ok"`               // the Received-Content-MIC matched (outbound)
	MIC         string    `json:"mic,omitempty"`        // Received-Content-MIC value
	Signed      bool      `json:"signed"`               // the MDN was signed (and verified, for received ones)
	MessageID   string    `json:"message_id,omitempty"` // the MDN's own Message-ID
	Header      string    `json:"header,omitempty"`     // HTTP/MIME headers of the MDN as sent or received
	Key         string    `json:"sha256,omitempty"`     // payload store key of the MDN body
	At          time.Time `json:"at"`
}

// Message is one AS2 message, inbound or outbound, or an asynchronous MDN to deliver.
type Message struct {
	ID        int64
	Direction string // Outbound or Inbound
	Kind      string // KindMessage or KindMDN (outbound only)
	MessageID string // the AS2 Message-ID, with angle brackets
	Station   string // our AS2 id
	Partner   string // the partner's AS2 id
	Subject   string
	Tag       string // transaction tag (a submission id carried by several messages)
	// Profile is the send profile the submission named, "" for none: its headers are added
	// to the partner's when the message is packed (outbound only).
	Profile string
	State   string
	Files   []File

	// Wire is the payload store key of the packed message as sent (outbound, set once the
	// message is packed so that every retry sends the same bytes) or as received (inbound).
	Wire       string
	WireHeader http.Header // the HTTP headers sent or received with Wire
	// MIC is the Received-Content-MIC expected (outbound) or returned (inbound), in its
	// header form "base64, sha-256".
	MIC string
	// MDNMode is "sync", "async" or "none": what the message asked for.
	MDNMode string
	MDN     *MDN // the receipt, once there is one

	// URL is where an outbound row is POSTed: the partner URL, or the Receipt-Delivery-Option
	// of an asynchronous MDN.
	URL string
	// RelatedID links an MDN row to its inbound message, and a resent message to its original.
	RelatedID int64

	Attempts      int       // failed attempts so far
	NextAttemptAt time.Time // when a queued message is due; the MDN deadline while awaiting_mdn
	LeaseOwner    string
	LeaseUntil    time.Time
	LastError     string // the last failure, in words
	LastCode      string // the last failure code
	// DeliveredAt is when an inbound message's payloads reached the inbox; zero before.
	DeliveredAt time.Time
	// RetriedAt is when an operator last put the message back in the queue from failed:
	// the retry policy counts only the failed attempts after it.
	RetriedAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time

	// ClaimedFrom is, while a row is in StateSending, the state Claim took it from:
	// StateQueued when it is due to be sent, StateAwaitingMDN when its MDN deadline passed.
	// A claim of an expired lease keeps it, so the next worker knows what the row was due for.
	ClaimedFrom string
}

// Attempt is one try at sending an outbound row that failed; a success leaves no attempt.
type Attempt struct {
	ID          int64
	MessageRow  int64 // Message.ID
	At          time.Time
	Class       string // ClassTransient, ClassIncomplete or ClassPermanent
	Code        string // stable code, e.g. "connect_refused", "http_503", "mdn_negative"
	HTTPStatus  int    // 0 when there was no response
	Header      http.Header
	BodyExcerpt string
	Error       string // the error as the program saw it
	Action      string // the corrective action in plain words
}

// Event is one line of the timeline.
type Event struct {
	ID         int64
	At         time.Time
	MessageRow int64 // 0 for events not about one message
	Direction  string
	Partner    string
	Tag        string
	Type       string // "submitted", "sent", "attempt_failed", "received", "duplicate", "suspended", "mdn_received", ...
	Detail     string
}

// Outcome is what the send worker records after trying an outbound row, in one transaction:
// the attempt (when it failed), the new state and when it is next due.
//
// The store fills in the Attempt and Event written with an outcome: their IDs, their
// MessageRow, At when it is zero, and the event's Direction, Partner and Tag from the
// message when they are empty. It refuses an outcome with a state the method does not
// allow, an attempt without a known Class or a Code, or an event without a Type.
type Outcome struct {
	State         string    // StateQueued (retry), StateAwaitingMDN, StateSent or StateFailed
	NextAttemptAt time.Time // for StateQueued: when to retry; for StateAwaitingMDN: the MDN deadline
	Attempt       *Attempt  // the failed attempt; nil on success
	MDN           *MDN      // the receipt, when one came
	Event         *Event    // the timeline entry
}

// ClaimRequest asks for due outbound rows. Now, Owner, a positive Lease and a positive Limit
// are required.
type ClaimRequest struct {
	Now        time.Time
	Owner      string        // this worker's name, written into the lease
	Lease      time.Duration // how long the claim holds before another worker may take it
	Limit      int           // at most this many rows
	PerPartner int           // at most this many rows of one partner in sending state at once; 0: no limit
	// PartnerLimits overrides PerPartner for the partners it names (their concurrency
	// setting); a value <= 0 there means no limit for that partner.
	PartnerLimits map[string]int
}

// RequeueRequest asks Requeue to put an outbound row back in the queue: an operator's retry,
// retry-now, Message-ID refresh or replay.
type RequeueRequest struct {
	// From lists the states the row may be in; any other state is ErrConflict, and
	// StateSending always is (a worker holds the row).
	From []string
	// Due is when the row is next due; zero means at once.
	Due time.Time
	// ClearWire drops the packed wire message (Wire, WireHeader and MIC), so that the next
	// attempt packs the message again. Only a row of KindMessage can be packed again.
	ClearWire bool
	// MessageID, when set, replaces the row's Message-ID; it needs ClearWire, since the
	// stored bytes carry the old one.
	MessageID string
	// URL, when set, replaces where the row is POSTed (the partner's URL as configured now).
	URL string
	// Event is written in the same transaction, filled in as for an Outcome.
	Event *Event
}

// ReprocessRequest is the outcome of unpacking an inbound message again, for Reprocess.
type ReprocessRequest struct {
	State               string // StateReceived or StateSuspended
	Files               []File // the payloads, when received
	MIC                 string // the MIC computed over the message, in its header form
	LastCode, LastError string // why it is suspended; empty when received
	Event               *Event
}

// Filter selects messages for a list; the fields that are set must all match.
//
// The boxes are the console's mailboxes. The four outbound ones hold rows of KindMessage
// (asynchronous MDNs we owe are found through their inbound message): "outbox" has rows in
// StateQueued, StateSending or StateAwaitingMDN without a failed attempt, "queued" the same
// states after at least one failed attempt, "sent" and "failed" their states. "received"
// holds inbound rows, StateReceived and StateSuspended.
type Filter struct {
	Box       string // "outbox", "queued", "sent", "failed", "received" ("" = all)
	Direction string
	Partner   string
	State     string
	Tag       string
	// Q searches the subject, the file names and the AS2 Message-ID for this text, case
	// insensitively for ASCII letters.
	Q string
	// From and To bound CreatedAt: at or after From, before To; a zero time leaves that
	// side open.
	From, To time.Time
	Limit    int   // 0: 50
	Before   int64 // cursor: only rows with a smaller ID
}

// FailureFilter selects failed attempts for the failure log; the fields that are set must
// all match.
type FailureFilter struct {
	Partner string // the message's partner
	Class   string // ClassTransient, ClassIncomplete or ClassPermanent
	Code    string
	// From and To bound the attempt's At: at or after From, before To; a zero time leaves
	// that side open.
	From, To time.Time
	Limit    int   // 0: 50
	Before   int64 // cursor: only attempts with a smaller ID
}

// Failure is a failed attempt with the message it was an attempt at, for the failure log.
type Failure struct {
	Attempt
	MessageID string // the message's AS2 Message-ID
	Partner   string
	Direction string
}

// EventFilter selects timeline events; the fields that are set must all match.
type EventFilter struct {
	Partner   string
	Direction string
	// State is the current state of the message an event is about; events not about one
	// message never match it.
	State string
	Tag   string
	// From and To bound the event's At: at or after From, before To; a zero time leaves
	// that side open.
	From, To time.Time
	Limit    int   // 0: 50
	Before   int64 // cursor: only events with a smaller ID
}

// Stats is a snapshot of the messages and the queue, for metrics.
type Stats struct {
	// Messages counts messages by direction and state: outbound rows of KindMessage and
	// inbound rows (the asynchronous MDNs we owe are work in the queue, not messages).
	// Combinations with no message are left out.
	Messages []StateCount
	// Queues has an entry for each partner with outbound rows (of either kind) in StateQueued
	// or StateSending, ordered by partner.
	Queues []PartnerQueue
}

// StateCount is the number of messages in one direction and state.
type StateCount struct {
	Direction string
	State     string
	Count     int64
}

// PartnerQueue is one partner's part of the send queue.
type PartnerQueue struct {
	Partner string
	// Depth is the rows waiting to go out or going out: StateQueued and StateSending.
	Depth int64
	// OldestDue is the earliest NextAttemptAt of the partner's rows in StateQueued: how long
	// the oldest has waited once it is in the past. Zero when all of them are being sent.
	OldestDue time.Time
}

// Store is the gateway's persistent state. Every method is one transaction.
type Store interface {
	Users
	ConfigEntries

	// CreateMessage inserts m and sets m.ID, CreatedAt and UpdatedAt. With ev, the event is
	// written in the same transaction, filled in as for an Outcome (its MessageRow set to
	// m.ID). It refuses a message without a Message-ID, or whose direction, kind (for an
	// outbound row) and state do not go together.
	CreateMessage(ctx context.Context, m *Message, ev *Event) error
	// CreateInbound inserts a received message and, when mdnJob is not nil, the outbound
	// KindMDN row that delivers its asynchronous MDN (mdnJob.RelatedID set to m.ID), with ev,
	// in one transaction: a receipt owed is never lost. When an inbound message with the same
	// station, partner and Message-ID was created at or after dedupSince, nothing is written
	// and the error is a *DuplicateError: the check and the insert are one transaction, so two
	// copies arriving at once are never both kept. A zero dedupSince skips the check.
	CreateInbound(ctx context.Context, m *Message, mdnJob *Message, ev *Event, dedupSince time.Time) error
	// MarkDelivered records that an inbound message's payloads reached its inbox.
	MarkDelivered(ctx context.Context, id int64, at time.Time) error
	// Undelivered returns received (not suspended) inbound messages whose delivery was never
	// recorded, oldest first: after a crash between the commit and the delivery, the gateway
	// delivers them at start.
	Undelivered(ctx context.Context, limit int) ([]*Message, error)
	// Reprocess records the outcome of unpacking an inbound message again (an operator's
	// reprocess): its new state (StateReceived or StateSuspended), files, MIC and last
	// failure, with ev filled in as for an Outcome. The delivery record is cleared, since new
	// files are not in the inbox yet. It returns the row as stored; ErrConflict unless the row
	// is inbound and received or suspended.
	Reprocess(ctx context.Context, id int64, r ReprocessRequest) (*Message, error)
	// GetMessage returns one message, or ErrNotFound.
	GetMessage(ctx context.Context, id int64) (*Message, error)
	// ListMessages returns messages matching f, newest first.
	ListMessages(ctx context.Context, f Filter) ([]*Message, error)
	// FindByMessageID returns the newest message with this AS2 Message-ID and direction
	// (angle brackets included as stored), or ErrNotFound.
	FindByMessageID(ctx context.Context, direction, messageID string) (*Message, error)
	// FindDuplicate returns an inbound message from partner to station with this Message-ID
	// received at or after since, or ErrNotFound.
	FindDuplicate(ctx context.Context, station, partner, messageID string, since time.Time) (*Message, error)

	// Claim leases due outbound rows to a worker and moves them to StateSending: rows in
	// StateQueued whose NextAttemptAt is not after Now, rows in StateSending whose lease has
	// expired (a crashed worker), and rows in StateAwaitingMDN whose MDN deadline has passed
	// (the worker records the timeout). Oldest due first.
	Claim(ctx context.Context, r ClaimRequest) ([]*Message, error)
	// SetWire records the packed wire message of a claimed row, once (ErrConflict if the
	// row's lease is not owner's).
	SetWire(ctx context.Context, id int64, owner string, wire string, header http.Header, mic string) error
	// Finish records the outcome of a claimed row and drops the lease (ErrConflict if the
	// lease is not owner's any more).
	Finish(ctx context.Context, id int64, owner string, o Outcome) error
	// Release returns a claimed row to StateQueued, due now, without counting an attempt:
	// for a graceful stop. A row claimed from StateAwaitingMDN returns there with its passed
	// deadline instead, so that the next worker records the timeout rather than resending
	// (ErrConflict if the lease is not owner's).
	Release(ctx context.Context, id int64, owner string) error
	// CompleteMDN records an asynchronous MDN received for an outbound message in
	// StateAwaitingMDN (or StateSending, when the MDN overtakes the worker) and moves it to
	// state (StateSent, StateFailed or StateQueued for a retry), with an attempt for a
	// failure. ErrConflict when the message is not waiting for an MDN.
	CompleteMDN(ctx context.Context, id int64, o Outcome) error
	// NextDue returns when the earliest queued or awaiting row becomes due, and false when
	// there is none.
	NextDue(ctx context.Context) (time.Time, bool, error)

	// Requeue returns an outbound row to StateQueued as r asks, drops its lease fields and
	// its receipt (the next attempt brings a new one), and keeps its attempts. It returns the
	// row as stored. ErrConflict when the row is inbound, in a state r does not allow, or of
	// KindMDN and r asks to clear the wire; ErrNotFound when there is no such row.
	Requeue(ctx context.Context, id int64, r RequeueRequest) (*Message, error)
	// Stop ends an outbound row in StateQueued or StateAwaitingMDN: it moves to StateFailed
	// with reason as its LastError and LastCode "stopped", without counting an attempt, and
	// ev (filled in as for an Outcome) is written with it. It returns the row as stored;
	// ErrConflict in any other state.
	Stop(ctx context.Context, id int64, reason string, ev *Event) (*Message, error)
	// DeleteMessage removes a message with its attempts and events, and returns it as it
	// was. Rows that refer to it (a resent message, an MDN job) lose the reference. With ev,
	// an event not about one message is written in the same transaction (its Direction,
	// Partner and Tag taken from the message when empty), so the timeline keeps the
	// deletion. ErrConflict while a worker holds the row (StateSending).
	DeleteMessage(ctx context.Context, id int64, ev *Event) (*Message, error)

	// Attempts returns the failed attempts of a message, oldest first.
	Attempts(ctx context.Context, messageRow int64) ([]*Attempt, error)
	// AddEvent writes a timeline event and sets ev.ID, and ev.At when it is zero.
	AddEvent(ctx context.Context, ev *Event) error
	// Events returns the newest events, filtered by partner and direction when given, with
	// IDs below before when it is not 0 (a cursor); limit 0 means 50.
	Events(ctx context.Context, partner, direction string, limit int, before int64) ([]*Event, error)
	// Timeline returns the events matching f, newest first.
	Timeline(ctx context.Context, f EventFilter) ([]*Event, error)
	// Failures returns the failed attempts matching f across all messages, newest first.
	Failures(ctx context.Context, f FailureFilter) ([]*Failure, error)

	// Stats returns the counts of messages by direction and state and each partner's queue,
	// read in one transaction.
	Stats(ctx context.Context) (*Stats, error)

	// Ping checks that the database answers (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}
