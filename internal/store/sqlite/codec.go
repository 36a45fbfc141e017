package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
)

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
