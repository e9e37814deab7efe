// Package fault marks errors with a sentinel that classifies them (bad input,
// bad data) without putting the sentinel's text into the message, so that
// users read what went wrong and code can still branch with errors.Is.
package fault

import "fmt"

type marked struct {
	msg   string
	mark  error
	cause error
}

func (e *marked) Error() string        { return e.msg }
func (e *marked) Is(target error) bool { return target == e.mark }
func (e *marked) Unwrap() error        { return e.cause }

// Mark returns an error with the formatted message for which errors.Is(err,
// mark) is true. A %w verb in format wraps its operand as usual.
func Mark(mark error, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &marked{msg: err.Error(), mark: mark, cause: unwrap(err)}
}

func unwrap(err error) error {
	if u, ok := err.(interface{ Unwrap() error }); ok {
		return u.Unwrap()
	}
	return nil
}
