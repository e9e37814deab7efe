package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
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

// stdout is where usage texts go (tests capture them).
var stdout io.Writer = os.Stdout

// flags are the flags of one command, and its synopsis for the usage.
type flags struct {
	*flag.FlagSet
	synopsis string
	// maxArgs is how many positional arguments the command takes; parse
	// refuses more.
	maxArgs int
}

// newFlags returns the flags of vog NAME; synopsis is its arguments, as
// "--out URL [flags]". Parse them with parse.
func newFlags(name, synopsis string) *flags {
	fs := flag.NewFlagSet("vog "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse reports errors itself, in one line
	fs.Usage = func() {}     // and prints the usage only when asked
	return &flags{FlagSet: fs, synopsis: synopsis}
}

// printUsage prints the usage of fs on stdout.
func (fs *flags) printUsage() {
	fmt.Fprintf(stdout, "Usage: %s %s\n\nFlags may come before, between or after arguments; -- ends them.\n\nFlags:\n", fs.Name(), fs.synopsis)
	fs.SetOutput(stdout)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// parsed, when set, is given every flag set parse is about to parse: the
// README's command reference is made from them.
var parsed func(*flags)

// parse parses args into fs. Flags may come before, between and after the
// positional arguments, as in kubectl, docker or Temporal's CLI; "--" ends
// the flags. -h and --help print the usage on stdout and return errHelp; a
// bad flag, a value out of its range (limits) or an argument too many
// returns a usageError.
func parse(fs *flags, args []string) error {
	if parsed != nil {
		parsed(fs)
	}
	flagArgs, positional, complete := interspersed(fs.FlagSet, args)
	if complete {
		flagArgs = append(append(flagArgs, "--"), positional...)
	}
	// Incomplete, the last flag lacks its value: Parse says so, unless a
	// -h before it asks for the usage.
	err := fs.Parse(flagArgs)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.printUsage()
		return errHelp
	case err != nil:
		return usageError{errors.New(dashes(err.Error()))}
	}
	if err := checkLimits(fs.FlagSet); err != nil {
		return err
	}
	if fs.NArg() > fs.maxArgs {
		return usagef("unexpected argument %q", fs.Arg(fs.maxArgs))
	}
	return nil
}

// interspersed splits args into flags (with their values) and positional
// arguments, by the flag package's rules: "-x" and "--x" are flags, "-" is
// an argument, everything after "--" is an argument, and a flag that is not
// boolean takes the next argument as its value unless written "--x=v".
// Unknown flags are kept with the flags, for Parse to name. complete is
// false where the last flag lacks its value.
func interspersed(fs *flag.FlagSet, args []string) (flagArgs, positional []string, complete bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return flagArgs, append(positional, args[i+1:]...), true
		case len(a) < 2 || a[0] != '-':
			positional = append(positional, a)
			continue
		}
		flagArgs = append(flagArgs, a)
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil || isBool(f) {
			continue
		}
		if i+1 == len(args) {
			return flagArgs, positional, false
		}
		i++
		flagArgs = append(flagArgs, args[i])
	}
	return flagArgs, positional, true
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// dashes writes the flag package's "-name" in its errors as vog's usage
// texts and messages write flags, "--name".
func dashes(msg string) string {
	for _, p := range []string{"for flag -", "for -", "not defined: -", "flag needs an argument: -"} {
		if strings.Contains(msg, p) && !strings.Contains(msg, p+"-") {
			msg = strings.Replace(msg, p, p+"-", 1)
		}
	}
	return msg
}

// A limit is the range of a numeric flag's values.
type limit int

const (
	nonNegative limit = iota // the default: no vog flag takes a negative number
	positive
	fraction // 0 to 1
	port     // 0 (none) to 65535
)

// limits are the numeric flags whose values must be more than
// non-negative, by name; a name means the same in every command. Every
// int, float and duration flag is checked when it is given.
var limits = map[string]limit{
	// intervals and timeouts: 0 would spin, or time out at once
	"progress":          positive,
	"poll":              positive,
	"every":             positive,
	"heartbeat-timeout": positive,
	"retry-for":         positive,
	// sizes
	"shard-size": positive,
	"batch-size": positive,
	"max-pixels": positive,
	"grid":       positive,
	// the rest
	"max-bad-fraction": fraction,
	"port":             port,
	"ui-port":          port,
}

// checkLimits returns a usageError naming the first flag given a number
// out of its range: negative, not finite, or outside its limit.
func checkLimits(fs *flag.FlagSet) error {
	var err error
	fs.Visit(func(f *flag.Flag) {
		if err == nil {
			err = checkLimit(f)
		}
	})
	return err
}

// checkLimit checks one flag's value against its limit; flags that are
// not numbers pass.
func checkLimit(f *flag.Flag) error {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return nil
	}
	var x float64
	switch v := g.Get().(type) {
	case int:
		x = float64(v)
	case int64:
		x = float64(v)
	case float64:
		x = v
	case time.Duration:
		x = float64(v)
	default:
		return nil
	}
	lim := limits[f.Name]
	var want string
	switch {
	case math.IsNaN(x) || math.IsInf(x, 0):
		want = "must be a finite number"
	case lim == positive && x <= 0:
		want = "must be positive"
	case x < 0:
		want = "must not be negative"
	case lim == fraction && x > 1:
		want = "must be a fraction, 0 to 1"
	case lim == port && x > 65535:
		want = "must be a port number, 0 to 65535"
	default:
		return nil
	}
	return usagef("--%s %s: %s", f.Name, f.Value, want)
}

// exitCode prints err of vog CMD (cmd "": of vog itself) as one line on
// stderr, unless it is errHelp, and
// returns the process's exit status: 0 for help, 2 for a usage error, 1 for
// a failure.
func exitCode(cmd string, err error) int {
	var usage usageError
	vog := strings.TrimSpace("vog " + cmd) // "vog" for vog itself
	switch {
	case err == nil || errors.Is(err, errHelp):
		return 0
	case errors.As(err, &usage):
		fmt.Fprintf(os.Stderr, "%s: %s (see '%s --help')\n", vog, oneLine(err.Error()), vog)
		return 2
	default:
		fmt.Fprintf(os.Stderr, "%s: %s\n", vog, oneLine(err.Error()))
		return 1
	}
}

// oneLine joins a multi-line message into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}
