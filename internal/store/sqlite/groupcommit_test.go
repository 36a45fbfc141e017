package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"
)

// groupFixture is a store with a table of its own for units that insert one row each.
func groupFixture(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "as2gate.db")
	s := open(t, path)
	if err := s.write(t.Context(), func(tx *sql.Tx) error {
		_, err := tx.Exec(`CREATE TABLE units (n INTEGER PRIMARY KEY)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return s, path
}

func insertUnit(ctx context.Context, tx *sql.Tx, n int) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO units (n) VALUES (?)`, n)
	return err
}

// rows lists the units stored, read through a second store on the same file so that only
// committed work counts.
func rows(t *testing.T, path string) []int {
	t.Helper()
	other := open(t, path)
	q, err := other.r.QueryContext(t.Context(), `SELECT n FROM units ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var got []int
	for q.Next() {
		var n int
		if err := q.Scan(&n); err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if err := q.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// holdCommitter runs a unit that blocks the committer until release is called, and returns
// once the committer is inside it, so that the writers started next queue up behind it.
func holdCommitter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	inside, hold := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.write(context.Background(), func(tx *sql.Tx) error {
			close(inside)
			<-hold
			return nil
		})
	}()
	<-inside
	return func() {
		close(hold)
		if err := <-done; err != nil {
			t.Errorf("holding unit: %v", err)
		}
	}
}

// waitQueued waits until n callers are blocked handing their unit to the committer.
func waitQueued(s *Store, n int64) {
	for s.queued.Load() < n {
		runtime.Gosched()
	}
}

// TestGroupCommitIsolatesFailures queues many writers behind one transaction so that they
// share the next commit, makes some of them fail in different ways, and checks that exactly
// the others' work is stored, each caller got its own answer, and the group took one commit.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	t.Parallel()
	s, path := groupFixture(t)
	release := holdCommitter(t, s)
	before := s.commits.Load()

	const writers = 40
	refused := errors.New("refused by the unit")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	errs := make([]error, writers)
	panics := make([]any, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panics[i] = recover() }()
			ctx := context.Background()
			switch i {
			case 7: // a unit whose context ends before its turn: not run at all
				ctx = cancelled
			}
			errs[i] = s.write(ctx, func(tx *sql.Tx) error {
				if err := insertUnit(ctx, tx, i); err != nil {
					return err
				}
				switch i {
				case 3: // fails after writing: its row must go, the others' stay
					return refused
				case 11: // a statement error: duplicate key
					return insertUnit(ctx, tx, i)
				case 19:
					panic("unit 19")
				}
				return nil
			})
		}()
	}
	// Unit 7 may give up before queueing (its context is done); the others queue.
	waitQueued(s, writers-1)
	release()
	wg.Wait()

	var want []int
	for i := range writers {
		switch i {
		case 3:
			if !errors.Is(errs[i], refused) {
				t.Errorf("unit 3: err = %v, want its own error", errs[i])
			}
		case 7:
			if !errors.Is(errs[i], context.Canceled) {
				t.Errorf("unit 7: err = %v, want context.Canceled", errs[i])
			}
		case 11:
			if errs[i] == nil {
				t.Error("unit 11: inserting its key twice succeeded")
			}
		case 19:
			if panics[i] != "unit 19" {
				t.Errorf("unit 19: recovered %v, want its panic raised in its caller", panics[i])
			}
		default:
			if errs[i] != nil || panics[i] != nil {
				t.Errorf("unit %d: err %v, panic %v", i, errs[i], panics[i])
			}
			want = append(want, i)
		}
	}
	if got := rows(t, path); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored units %v\nwant %v", got, want)
	}
	// The holding unit's commit and one for the whole group.
	if n := s.commits.Load() - before; n != 2 {
		t.Errorf("%d commits, want 2: the queued units did not share one", n)
	}
}

// TestGroupCommitLostTransaction covers a unit after which SQLite has rolled back the whole
// transaction (as it does when a statement of a cancelled caller is interrupted): the units
// that had succeeded in it run again and commit, the one that lost it reports its error.
func TestGroupCommitLostTransaction(t *testing.T) {
	t.Parallel()
	s, path := groupFixture(t)
	release := holdCommitter(t, s)

	const writers = 12
	errs := make([]error, writers)
	runs := make([]int, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.write(context.Background(), func(tx *sql.Tx) error {
				runs[i]++ // only the committer goroutine runs units
				if err := insertUnit(context.Background(), tx, i); err != nil {
					return err
				}
				if i == 5 {
					if _, err := tx.Exec("ROLLBACK"); err != nil {
						return err
					}
					return errors.New("transaction lost")
				}
				return nil
			})
		}()
	}
	waitQueued(s, writers)
	release()
	wg.Wait()

	var want []int
	reran := 0
	for i := range writers {
		if i == 5 {
			if errs[i] == nil {
				t.Error("unit 5: no error")
			}
			continue
		}
		if errs[i] != nil {
			t.Errorf("unit %d: %v", i, errs[i])
		}
		if runs[i] > 1 {
			reran++
		}
		want = append(want, i)
	}
	if reran == 0 {
		t.Error("no unit ran again: the lost transaction was not exercised")
	}
	got := rows(t, path)
	sort.Ints(got)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stored units %v\nwant %v", got, want)
	}
}

// TestWriteAfterClose answers a write on a closed store with an error instead of waiting.
func TestWriteAfterClose(t *testing.T) {
	t.Parallel()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "as2gate.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err = s.write(t.Context(), func(*sql.Tx) error { return nil })
	if !errors.Is(err, errClosed) {
		t.Fatalf("write after Close: %v, want errClosed", err)
	}
}
