package lang

import (
	"fmt"
	"strings"
)

// Error is a problem in a rule string, at byte offset Off of it.
type Error struct {
	Off int
	Msg string
}

func (e *Error) Error() string { return fmt.Sprintf("at offset %d: %s", e.Off, e.Msg) }

// Errors are the problems of one string, in order. Parsing goes on after
// an error where the next word can still be understood, so that one run
// of "halo check" lists every problem.
type Errors []*Error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// errs collects Errors while a string is parsed.
type errs struct{ list Errors }

func (e *errs) at(off int, format string, args ...any) {
	e.list = append(e.list, &Error{Off: off, Msg: fmt.Sprintf(format, args...)})
}

func (e *errs) err() error {
	if len(e.list) == 0 {
		return nil
	}
	return e.list
}
