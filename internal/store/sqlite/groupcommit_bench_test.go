package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// BenchmarkWrite measures durable single-row transactions (synchronous=FULL) by one writer
// and by 16 at once: with group commit the concurrent writers share fsyncs, so their rate is
// bounded by SQLite's statements rather than by the disk. commits/op shows how many units
// shared one commit.
func BenchmarkWrite(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := open(b, filepath.Join(b.TempDir(), "as2gate.db"))
			if err := s.write(b.Context(), func(tx *sql.Tx) error {
				_, err := tx.Exec(`CREATE TABLE units (n INTEGER PRIMARY KEY, v TEXT)`)
				return err
			}); err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			before := s.commits.Load()
			b.SetParallelism(max(writers/2, 1)) // GOMAXPROCS is 2 here: 16 goroutines
			if writers == 1 {
				b.SetParallelism(1)
			}
			b.ResetTimer()
			run := func() error {
				return s.write(b.Context(), func(tx *sql.Tx) error {
					_, err := tx.Exec(`INSERT INTO units (n, v) VALUES (?, 'x')`, n.Add(1))
					return err
				})
			}
			if writers == 1 {
				for b.Loop() {
					if err := run(); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := run(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.ReportMetric(float64(s.commits.Load()-before)/float64(b.N), "commits/op")
		})
	}
}
