// Package postgres is the store.Store for several gateway nodes sharing one PostgreSQL
// database, with pgx v5. Its schema follows the embedded SQLite store's migration for
// migration, so that a schema version means the same on both, and it passes the same
// conformance suite.
//
// What one SQLite writer gets from serialised writes, this driver gets from row locks and
// advisory locks, so that nodes never step on each other:
//
//   - Claim locks the due rows it takes with FOR UPDATE SKIP LOCKED, so concurrent claims
//     take disjoint rows without waiting on each other; a lease makes a row claimable again
//     once its node stops renewing it (a node that died).
//   - With a per-partner limit, Claim first takes a transaction advisory lock on each partner
//     it may claim for, in name order, and counts that partner's rows in flight after it: two
//     nodes never both see the last free slot.
//   - CreateInbound takes a transaction advisory lock on the Message-ID before it looks for
//     a copy, so two copies arriving at two nodes at once are never both kept.
//   - SetUserRole and DeleteUser take a transaction advisory lock on the store's admins
//     before they count the other admins, so two nodes demoting or removing the last two
//     admins at once never leave none.
//
// The transactions that make work due send a NOTIFY; Wakeups (store.Waker) listens on a
// connection of its own, so a message submitted on one node is picked up by another at once.
// Campaign (store.Elector) elects one node for the work that runs once per cluster, with a
// session advisory lock on a connection of its own.
//
// Advisory lock keys and the notification channel are scoped by the schema the store works
// in (the first schema of the connection's search_path), so several gateways may share one
// database in schemas of their own.
package postgres

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/as2gate/as2gate/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Namespaces of the two-key advisory locks (the first key); the second key is a hash of
// the store's scope and the locked name.
const (
	lockInbound   = 1 // CreateInbound: one Message-ID of one partner to one station
	lockPartner   = 2 // Claim: one partner's slots
	lockLeader    = 3 // Campaign: one role's leadership
	lockMigration = 4 // Open: one schema's migrations
	lockAdmins    = 5 // SetUserRole, DeleteUser: the set of admins
)

// defaultMaxConns is the pool size unless the URL sets pool_max_conns.
const defaultMaxConns = 16

// DefaultElectionInterval is how often a node that does not lead tries to take the lead,
// how often a leader checks that its connection, and with it the lock, is still there, and
// how long a listener whose connection broke waits before it dials again.
const DefaultElectionInterval = 5 * time.Second

// Option changes how Open sets up the store.
type Option func(*options)

type options struct {
	now      func() time.Time
	election time.Duration
}

// WithNow sets the clock the store reads for CreatedAt, UpdatedAt, the due time of a
// released row and the default time of attempts and events. The default is time.Now.
func WithNow(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithElectionInterval sets how often Campaign retries, a leader checks its lock, and a
// listener whose connection broke dials again (default DefaultElectionInterval).
func WithElectionInterval(d time.Duration) Option {
	return func(o *options) { o.election = d }
}

// Store is a store.Store on a PostgreSQL database.
type Store struct {
	pool     *pgxpool.Pool
	now      func() time.Time
	election time.Duration
	scope    string // the schema the store works in
	channel  string // the notification channel of due work

	// done ends the listener and the elections when the store closes; bg counts the
	// goroutines that own a connection of their own (the listener, leaders).
	done      chan struct{}
	closeOnce sync.Once
	bg        sync.WaitGroup

	listenOnce sync.Once
	wakeups    chan struct{}
}

var (
	_ store.Store   = (*Store)(nil)
	_ store.Waker   = (*Store)(nil)
	_ store.Elector = (*Store)(nil)
)

// Open connects to the database at url (postgres://user:password@host:port/db?...; the
// parameters of libpq's connection URIs apply, search_path among them), brings its schema
// up to date, and returns the store. Close releases it. Errors never include the password.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	o := options{now: time.Now, election: DefaultElectionInterval}
	for _, opt := range opts {
		opt(&o)
	}
	switch {
	case o.now == nil:
		return nil, errors.New("postgres: WithNow needs a clock")
	case o.election <= 0:
		return nil, fmt.Errorf("postgres: election interval %v is not positive", o.election)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx names the URL with its password masked; the cause may quote it whole.
		return nil, errors.New("postgres: the database URL does not parse")
	}
	if !strings.Contains(url, "pool_max_conns=") {
		// pgx's default (the number of CPUs, at least 4) is short of what the send worker,
		// the receiving side and the API use at once on a small machine.
		cfg.MaxConns = max(cfg.MaxConns, defaultMaxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool, now: o.now, election: o.election, done: make(chan struct{}),
		wakeups: make(chan struct{}, 1)}
	var scope *string
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&scope); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connecting to %s: %w", target(cfg.ConnConfig), err)
	}
	if scope == nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %s: no schema of the search_path exists", target(cfg.ConnConfig))
	}
	s.scope = *scope
	// A channel name is an identifier of at most 63 bytes: the schema goes in as a digest.
	sum := sha256.Sum256([]byte(s.scope))
	s.channel = "as2gate_due_" + hex.EncodeToString(sum[:8])
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %s: %w", target(cfg.ConnConfig), err)
	}
	return s, nil
}

// target names a database for errors, without the password.
func target(c *pgx.ConnConfig) string {
	return fmt.Sprintf("database %s on %s:%d as %s", c.Database, c.Host, c.Port, c.User)
}

// migrate applies the embedded migrations the schema has not seen yet. Nodes starting at
// once run them one at a time: a session advisory lock on the schema is held around goose,
// which records each version it applied.
func (s *Store) migrate(ctx context.Context) error {
	dir, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, hashtext($2))`, lockMigration, s.scope); err != nil {
		return fmt.Errorf("migrations: waiting for another node's: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, hashtext($2))`, lockMigration, s.scope)
	db := stdlib.OpenDBFromPool(s.pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, dir)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	return nil
}

// Ping implements store.Store.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close implements store.Store. It ends the listener and any leadership this store holds:
// closing a leader's connection releases its lock, and another node takes over.
func (s *Store) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	s.bg.Wait()
	s.pool.Close()
	return nil
}

func (s *Store) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// dial opens a connection outside the pool, for LISTEN and for a leader's session lock.
func (s *Store) dial(ctx context.Context, purpose string) (*pgx.Conn, error) {
	if s.isClosed() {
		return nil, errClosed
	}
	cfg := s.pool.Config().ConnConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = s.applicationName(purpose)
	return pgx.ConnectConfig(ctx, cfg)
}

// applicationName names a dedicated connection in pg_stat_activity, with the schema, so
// that an operator sees which gateway holds which lock.
func (s *Store) applicationName(purpose string) string {
	return "as2gate " + purpose + " (" + s.scope + ")"
}

var errClosed = errors.New("postgres: the store is closed")

// write runs fn in one transaction and commits it when fn returns nil. A transaction that
// lost a deadlock or a serialisation check is run again: it wrote nothing.
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	for try := 1; ; try++ {
		err := pgx.BeginFunc(ctx, s.pool, fn)
		var pe *pgconn.PgError
		if try < 3 && errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001") {
			continue
		}
		return err
	}
}

// notifyDue tells every node, once tx commits, that work may be due.
func (s *Store) notifyDue(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, s.channel)
	return err
}

// clock returns the store's time, in UTC with no monotonic reading, so that values written
// and read back compare equal.
func (s *Store) clock() time.Time {
	return s.now().UTC().Round(0)
}
