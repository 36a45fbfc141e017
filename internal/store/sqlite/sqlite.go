// Package sqlite is the embedded store.Store: one SQLite database file, opened with the pure
// Go driver modernc.org/sqlite, its schema kept by numbered SQL migrations embedded in the
// binary.
//
// The database runs in WAL mode with synchronous=FULL, so a committed transaction survives a
// power cut, and with foreign keys on. All writes go through one connection: SQLite admits one
// writer at a time anyway, and funnelling them through a pool of one turns lock contention
// into an orderly queue in the process instead of SQLITE_BUSY retries. The queue commits in
// groups: the store methods waiting at one moment share a transaction, each in a savepoint
// of its own, and so one fsync (see Store.write). Write transactions
// start with BEGIN IMMEDIATE, so a transaction that reads and then writes (Claim, Finish)
// holds the write lock from its first statement and cannot be overtaken by another process
// that opened the same file. Reads use a separate pool of read-only connections, which WAL
// lets run beside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/as2gate/as2gate/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DefaultBusyTimeout is how long a statement waits for a lock held by another process before
// it fails with SQLITE_BUSY.
const DefaultBusyTimeout = 5 * time.Second

// defaultReaders bounds the read pool: enough for the console, the API and the workers to
// read at once on a small machine.
const defaultReaders = 4

// Option changes how Open sets up the store.
type Option func(*options)

type options struct {
	now         func() time.Time
	busyTimeout time.Duration
	readers     int
}

// WithNow sets the clock the store reads for CreatedAt, UpdatedAt, the due time of a
// released row and the default time of attempts and events. The default is time.Now.
func WithNow(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithBusyTimeout sets how long a statement waits for a lock that another process holds.
// The default is DefaultBusyTimeout.
func WithBusyTimeout(d time.Duration) Option {
	return func(o *options) { o.busyTimeout = d }
}

// WithReaders sets the number of read connections (default 4).
func WithReaders(n int) Option {
	return func(o *options) { o.readers = n }
}

// Store is a store.Store on one SQLite database file.
type Store struct {
	w   *sql.DB // the one writer connection
	r   *sql.DB // read-only connections
	now func() time.Time

	writes    chan *writeReq // units waiting for the committer
	closing   chan struct{}  // closed by Close: the committer stops
	committed chan struct{}  // closed when the committer has stopped
	closeOnce sync.Once

	queued  atomic.Int64 // callers handing a unit to the committer, for tests
	commits atomic.Int64 // transactions committed, for tests
}

var _ store.Store = (*Store)(nil)

// Open opens the database at path, creating the file if needed, and brings its schema up to
// date. Close releases it.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := options{now: time.Now, busyTimeout: DefaultBusyTimeout, readers: defaultReaders}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case path == "":
		return nil, errors.New("sqlite: no database path")
	case o.now == nil:
		return nil, errors.New("sqlite: WithNow needs a clock")
	case o.busyTimeout < 0:
		return nil, fmt.Errorf("sqlite: negative busy timeout %v", o.busyTimeout)
	case o.readers < 1:
		return nil, fmt.Errorf("sqlite: %d read connections, need at least one", o.readers)
	}

	w, err := sql.Open("sqlite", dsn(path, o.busyTimeout, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}

	// The read pool opens only after the writer has created the file and switched it to WAL.
	r, err := sql.Open("sqlite", dsn(path, o.busyTimeout, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	r.SetMaxOpenConns(o.readers)
	r.SetMaxIdleConns(o.readers)
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("sqlite: opening %s for reading: %w", path, err)
	}
	s := &Store{w: w, r: r, now: o.now, writes: make(chan *writeReq), closing: make(chan struct{}), committed: make(chan struct{})}
	go s.commitLoop()
	return s, nil
}

// dsn is the driver's connection string for path. The file: URI form keeps a path with '?'
// or '#' in it from being read as parameters; the _pragma settings run on every new
// connection of the pool.
func dsn(path string, busy time.Duration, readOnly bool) string {
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	if readOnly {
		// query_only refuses writes on this pool, so a write that lands on it by mistake
		// fails loudly instead of racing the writer. It does not change the journal mode,
		// which the writer set and the file keeps.
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	}
	return "file:" + escaped + "?" + q.Encode()
}

// migrate applies the embedded migrations that the database has not seen yet. goose records
// each applied version, so running it on an up-to-date database changes nothing.
func migrate(ctx context.Context, db *sql.DB) error {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, dir)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	return nil
}

// Ping implements store.Store: it runs a query on both pools.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	if err := s.w.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping writer: %w", err)
	}
	return nil
}

// Close implements store.Store. The writer closes last so that its connection, the last one
// to the file, checkpoints the WAL into the database.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.closing) })
	<-s.committed
	return errors.Join(s.r.Close(), s.w.Close())
}

// maxBatch bounds how many callers' transactions share one commit, so that a burst of writers
// cannot hold the write lock for long against other processes on the same file.
const maxBatch = 128

// errClosed is the answer to a write after Close.
var errClosed = errors.New("sqlite: store closed")

// writeReq is one caller's transaction waiting for the committer.
type writeReq struct {
	ctx  context.Context
	fn   func(tx *sql.Tx) error
	done chan writeResult
}

type writeResult struct {
	err   error
	panic any // a panic of fn, raised again in the caller's goroutine
}

// write runs fn as one atomic unit of work and returns once it is durably committed, or with
// fn's error and nothing of fn's work kept.
//
// Group commit: an fsync costs far more than the statements of a store method, so the
// committer runs the units of every caller waiting at that moment inside one transaction,
// each in its own savepoint, and commits them with a single fsync. A unit whose fn fails is
// rolled back to its savepoint; the others commit. No caller returns before the commit that
// holds its work is durable. When a statement interrupted by its caller's cancelled context
// makes SQLite roll back the whole transaction, the units that had succeeded in it run again
// in a new one, so fn may run more than once; store methods' fns only assign their results.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan writeResult, 1)}
	s.queued.Add(1)
	select {
	case s.writes <- req:
		s.queued.Add(-1)
	case <-s.closing:
		s.queued.Add(-1)
		return errClosed
	case <-ctx.Done():
		s.queued.Add(-1)
		return ctx.Err()
	}
	// Once queued, the answer is awaited whatever ctx does: returning early could report a
	// failure for work that then commits.
	res := <-req.done
	if res.panic != nil {
		panic(res.panic)
	}
	return res.err
}

// commitLoop is the committer: it takes the queued units in batches until Close.
func (s *Store) commitLoop() {
	defer close(s.committed)
	batch := make([]*writeReq, 0, maxBatch)
	for {
		select {
		case req := <-s.writes:
			batch = append(batch[:0], req)
		case <-s.closing:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case req := <-s.writes:
				batch = append(batch, req)
			default:
				break fill
			}
		}
		s.commitBatch(batch)
		clear(batch)
	}
}

// commitBatch commits batch in as few transactions as it takes and answers every caller.
func (s *Store) commitBatch(batch []*writeReq) {
	for len(batch) > 0 {
		batch = s.commitOnce(batch)
	}
}

// commitOnce runs the units of batch in one transaction and answers those it settled; it
// returns the units to run again because the transaction was lost under them.
func (s *Store) commitOnce(batch []*writeReq) (again []*writeReq) {
	tx, err := s.w.BeginTx(context.Background(), nil)
	if err != nil {
		for _, r := range batch {
			r.done <- writeResult{err: err}
		}
		return nil
	}
	var ok []*writeReq // units whose work is in tx, answered after the commit
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- writeResult{err: err}
			continue
		}
		res, lost := s.unit(tx, r)
		if res.err == nil && res.panic == nil {
			ok = append(ok, r)
			continue
		}
		r.done <- res
		if lost {
			// SQLite rolled the whole transaction back: the units before this one run
			// again, the ones after it were not run yet.
			ignoreDone(tx.Rollback())
			return append(ok, batch[i+1:]...)
		}
	}
	if err = tx.Commit(); err == nil {
		s.commits.Add(1)
	}
	for _, r := range ok {
		r.done <- writeResult{err: err}
	}
	return nil
}

// unit runs one caller's fn inside tx under a savepoint. lost reports that the transaction
// itself is gone, so that the rollback to the savepoint could not be made.
func (s *Store) unit(tx *sql.Tx, r *writeReq) (res writeResult, lost bool) {
	if _, err := tx.Exec("SAVEPOINT unit"); err != nil {
		return writeResult{err: err}, true
	}
	func() {
		defer func() {
			if p := recover(); p != nil {
				res.panic = p
			}
		}()
		res.err = r.fn(tx)
	}()
	if res.err == nil && res.panic == nil {
		if _, err := tx.Exec("RELEASE unit"); err != nil {
			return writeResult{err: err}, true
		}
		return res, false
	}
	if _, err := tx.Exec("ROLLBACK TO unit"); err != nil {
		return res, true
	}
	if _, err := tx.Exec("RELEASE unit"); err != nil {
		return res, true
	}
	return res, false
}

// ignoreDone drops the error of a rollback after the driver has already ended the
// transaction (a cancelled context rolls it back by itself).
func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// clock returns the store's time, in UTC with no monotonic reading, so that values written
// and read back compare equal.
func (s *Store) clock() time.Time {
	return s.now().UTC().Round(0)
}
