package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// errHelp is returned once a command has printed its usage because it was
// asked to: vog exits 0.
var errHelp = errors.New("help printed")

// usageError is a mistake in the command line (an unknown flag, a bad value,
// a missing argument): vog exits 2 and points to --help.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError with a formatted message.
func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// flags are the flags of one command, and its synopsis for the usage.
type flags struct {
	*flag.FlagSet
	synopsis string
}

// newFlags returns the flags of vog NAME; synopsis is its arguments, as
// "--out URL [flags]". Parse them with parse.
func newFlags(name, synopsis string) *flags {
	fs := flag.NewFlagSet("vog "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse reports errors itself, in one line
	fs.Usage = func() {}     // and prints the usage only when asked
	return &flags{fs, synopsis}
}

// printUsage prints the usage of fs on stdout.
func (fs *flags) printUsage() {
	fmt.Printf("Usage: %s %s\n\nFlags:\n", fs.Name(), fs.synopsis)
	fs.SetOutput(os.Stdout)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// parse parses args into fs. -h and --help print the usage on stdout and
// return errHelp; a bad flag returns a usageError.
func parse(fs *flags, args []string) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.printUsage()
		return errHelp
	case err != nil:
		return usageError{err}
	}
	return nil
}

// exitCode prints err as one line on stderr, unless it is errHelp, and
// returns the process's exit status: 0 for help, 2 for a usage error, 1 for
// a failure.
func exitCode(cmd string, err error) int {
	var usage usageError
	switch {
	case err == nil || errors.Is(err, errHelp):
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(os.Stderr, "vog %s: %s (see 'vog %s --help')\n", cmd, oneLine(err.Error()), cmd)
		return 2
	default:
		fmt.Fprintf(os.Stderr, "vog %s: %s\n", cmd, oneLine(err.Error()))
		return 1
	}
}

// oneLine joins a multi-line message into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
