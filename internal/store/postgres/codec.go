package postgres

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/as2gate/as2gate/internal/store"
)

// nullID maps the 0 of a Go record ("none") to SQL NULL, so that foreign keys hold.
func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// jsonText is v encoded for a JSONB column; nil slices, maps and pointers become "null" and
// read back as nil.
func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// fromJSON decodes a JSONB column into v, naming the column when it does not decode.
func fromJSON(column, text string, v any) error {
	if err := json.Unmarshal([]byte(text), v); err != nil {
		return fmt.Errorf("column %s: %w", column, err)
	}
	return nil
}

// where collects the conditions of a list query and their arguments, numbering the
// placeholders.
type where struct {
	conds []string
	args  []any
}

// arg adds an argument and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return fmt.Sprintf("$%d", len(w.args))
}

// equal adds column = value when value is set.
func (w *where) equal(column, value string) {
	if value != "" {
		w.conds = append(w.conds, column+" = "+w.arg(value))
	}
}

// between bounds a time column to [from, to), each side only when set.
func (w *where) between(column string, from, to time.Time) {
	if !from.IsZero() {
		w.conds = append(w.conds, column+" >= "+w.arg(store.UnixNano(from)))
	}
	if !to.IsZero() {
		w.conds = append(w.conds, column+" < "+w.arg(store.UnixNano(to)))
	}
}

// before adds the cursor condition when id is set.
func (w *where) before(column string, id int64) {
	if id != 0 {
		w.conds = append(w.conds, column+" < "+w.arg(id))
	}
}

// String is the WHERE clause, or "" without conditions.
func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// likePattern is a LIKE pattern that matches text anywhere, with LIKE's wildcards in text
// taken literally (used with ESCAPE '\').
func likePattern(text string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(text) + "%"
}
