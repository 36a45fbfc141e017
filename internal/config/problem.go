package config

import (
	"fmt"
	"strings"
)

// Problem is one invalid setting.
type Problem struct {
	// Key is the key path of the setting, e.g. "partners[2].encrypt"; empty for a problem
	// with the file as a whole.
	Key string
	// Line is the line of the key in the file, 0 when unknown.
	Line int
	// Message says what is wrong and what is allowed.
	Message string
}

// String returns "key: message".
func (p Problem) String() string {
	if p.Key == "" {
		return p.Message
	}
	return p.Key + ": " + p.Message
}

// ValidationError is every problem found in a configuration. Load and Validate return it,
// read it with errors.As.
type ValidationError struct {
	File     string // the file, when the configuration came from one
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(" is invalid")
	} else {
		b.WriteString("invalid configuration")
	}
	if len(e.Problems) == 1 {
		b.WriteString(" (1 problem)")
	} else {
		fmt.Fprintf(&b, " (%d problems)", len(e.Problems))
	}
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		if e.File != "" && p.Line > 0 {
			fmt.Fprintf(&b, "%s:%d: ", e.File, p.Line)
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// problems collects Problems in the order they are found.
type problems []Problem

func (ps *problems) add(key, format string, args ...any) {
	*ps = append(*ps, Problem{Key: key, Message: fmt.Sprintf(format, args...)})
}

// addErr records err under key; errors from the loaders already say what is wrong.
func (ps *problems) addErr(key string, err error) {
	*ps = append(*ps, Problem{Key: key, Message: err.Error()})
}

func (ps problems) err(file string) error {
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{File: file, Problems: ps}
}

func keyf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// oneOf formats the allowed values of an enumeration.
func oneOf(values ...string) string { return "one of " + strings.Join(values, ", ") }
