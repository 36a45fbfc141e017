package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Times are stored as INTEGER nanoseconds since the Unix epoch, which SQLite compares and
// indexes as plain numbers. The zero time.Time is stored as 0, and 0 reads back as the zero
// time: the epoch instant itself does not occur in the gateway's records.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// unixNano is t as stored: nanoseconds since the epoch, clamped to the int64 range (about
// years 1677 to 2262) so that a "never" far in the future still sorts last.
func unixNano(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minTime):
		return math.MinInt64
	case t.After(maxTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// fromNano is the time stored as n, in UTC.
func fromNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// nullID maps the 0 of a Go record ("none") to SQL NULL, so that foreign keys hold.
func nullID(id int64) sql.NullInt64 {
	return sql.NullInt64{Int64: id, Valid: id != 0}
}

// jsonText is v encoded for a JSON column; nil slices, maps and pointers become "null" and
// read back as nil.
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// fromJSON decodes a JSON column into v, naming the column when it does not decode.
func fromJSON(column, text string, v any) error {
	if err := json.Unmarshal([]byte(text), v); err != nil {
		return fmt.Errorf("column %s: %w", column, err)
	}
	return nil
}
