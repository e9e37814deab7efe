package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// A command is one of vog's commands or subcommands, as its arguments
// begin: "run", "schedule trigger", "watch --finish" (vog watch's control
// form, with flags of its own).
type command []string

func (c command) String() string { return strings.Join(c, " ") }

// allCommands lists every command and subcommand of vog; the test fails
// where main's command table has one it lacks.
func allCommands(t *testing.T) []command {
	var cs []command
	for name := range commands {
		switch name {
		case "schedule":
			for _, sub := range scheduleSubs {
				cs = append(cs, command{"schedule", sub})
			}
		case "watch":
			cs = append(cs, command{"watch"}, command{"watch", "--finish"})
		default:
			cs = append(cs, command{name})
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].String() < cs[j].String() })
	return cs
}

// quietEnv clears what vog's flags take defaults from, so that tests see
// the defaults a bare environment gives.
func quietEnv(t *testing.T) {
	for _, k := range []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY",
		"TEMPORAL_TLS_CA", "TEMPORAL_TLS_SERVER_NAME", "TEMPORAL_API_KEY", "VOG_STATE_DIR", "XDG_STATE_HOME"} {
		t.Setenv(k, "")
	}
}

// runIn runs vog with args in this process and returns its exit status,
// its usage output and the error the command returned; a panic fails the
// test.
func runIn(t *testing.T, args ...string) (code int, out string, err error) {
	t.Helper()
	var buf bytes.Buffer
	stdout = &buf
	stderr := os.Stderr
	os.Stderr, _ = os.Open(os.DevNull)
	defer func() {
		stdout = os.Stdout
		os.Stderr.Close()
		os.Stderr = stderr
		if p := recover(); p != nil {
			t.Fatalf("vog %s: panic: %v", strings.Join(args, " "), p)
		}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	name, err := dispatch(ctx, args)
	return exitCode(name, err), buf.String(), err
}

// flagsOf returns the flag set of command c, as its --help shows it.
func flagsOf(t *testing.T, c command) *flags {
	t.Helper()
	var fs *flags
	parsed = func(f *flags) { fs = f }
	defer func() { parsed = nil }()
	if code, _, err := runIn(t, append(slices.Clone(c), "--help")...); code != 0 || fs == nil {
		t.Fatalf("vog %s --help: exit %d, %v", c, code, err)
	}
	return fs
}

// TestHelp: every command and subcommand answers -h and --help, before or
// after its arguments, and vog help CMD, with its usage on stdout and exit
// status 0.
func TestHelp(t *testing.T) {
	quietEnv(t)
	for _, c := range allCommands(t) {
		for _, args := range [][]string{
			append(slices.Clone(c), "--help"),
			append(slices.Clone(c), "-h"),
			append(slices.Clone(c), "NAME", "--help"),
			append([]string{"help"}, c...),
		} {
			if c.String() == "watch --finish" && args[0] == "help" {
				continue
			}
			code, out, _ := runIn(t, args...)
			if code != 0 || !strings.HasPrefix(out, "Usage: vog "+args[0]) && !strings.HasPrefix(out, "Usage: vog "+args[1]) {
				t.Errorf("vog %s: exit %d, stdout:\n%s", strings.Join(args, " "), code, out)
			}
		}
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"schedule", "--help"}, {"schedule", "-h"},
		{"schedule", "help"}, {"version", "--help"}, {"help", "version"}} {
		code, out, _ := runIn(t, args...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("vog %s: exit %d, stdout:\n%s", strings.Join(args, " "), code, out)
		}
	}
	// Each command's flags are in its usage.
	for _, c := range allCommands(t) {
		fs := flagsOf(t, c)
		_, out, _ := runIn(t, append(slices.Clone(c), "--help")...)
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(out, "-"+f.Name) {
				t.Errorf("vog %s --help does not show --%s:\n%s", c, f.Name, out)
			}
		})
	}
}

// TestFlagsAfterArguments: flags are read wherever they stand among the
// arguments. Each case gives --temporal and a --tls-cert without its key
// after the positional arguments; the command answers the TLS mistake
// (found before any server is dialled) only where it read both flags and
// took its arguments.
func TestFlagsAfterArguments(t *testing.T) {
	quietEnv(t)
	tls := []string{"--temporal", "127.0.0.1:1", "--tls-cert", "c.pem"}
	job := []string{"--format", "idx", "--dataset", "d", "--checkpoints", "c"}
	cases := [][]string{
		append([]string{"status", "JOB"}, tls...),
		append([]string{"wait", "JOB"}, tls...),
		append([]string{"resume", "JOB"}, tls...),
		{"status", "--temporal", "127.0.0.1:1", "JOB", "--tls-cert", "c.pem"},
		{"wait", "--tls-cert=c.pem", "--temporal", "127.0.0.1:1", "--", "-JOB"},
		append([]string{"schedule", "list"}, tls...),
		append(append([]string{"schedule", "create", "nightly", "--every", "1h", "--runs", "r", "--out-prefix", "o"}, job...), tls...),
		append(append([]string{"schedule", "create", "--every", "1h", "--runs", "r", "--out-prefix", "o"}, job...), append(tls, "nightly")...),
		append(append([]string{"submit", "--out", "o"}, job...), tls...),
		append([]string{"watch", "--finish", "--run", "r", "--out", "o"}, tls...),
		append([]string{"watch", "--run", "r", "--out", "o", "--add", "r/c.pt"}, tls...),
	}
	for _, sub := range []string{"describe", "pause", "unpause", "trigger", "delete"} {
		cases = append(cases, append([]string{"schedule", sub, "nightly"}, tls...))
	}
	for _, args := range cases {
		code, _, err := runIn(t, args...)
		if code != 2 || err == nil || !strings.Contains(err.Error(), "--tls-cert and --tls-key") {
			t.Errorf("vog %s: exit %d, %v; want the --tls-cert mistake", strings.Join(args, " "), code, err)
		}
	}
	// Arguments a command does not take are refused, wherever they stand.
	for _, args := range [][]string{
		{"status", "JOB", "--temporal", "127.0.0.1:1", "JOB2"},
		{"schedule", "trigger", "a", "b", "--temporal", "127.0.0.1:1"},
		append(append([]string{"run", "--out", "o"}, job...), "extra"),
		{"worker", "extra", "--temporal", "127.0.0.1:1"},
		{"server", "extra"},
		{"report", "vog-out"},
		{"eval", "--out", "o", "--truth", "t.csv", "extra"},
	} {
		code, _, err := runIn(t, args...)
		if code != 2 || err == nil || !strings.Contains(err.Error(), "unexpected argument") {
			t.Errorf("vog %s: exit %d, %v; want an unexpected argument", strings.Join(args, " "), code, err)
		}
	}
}

func TestInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.String("s", "", "")
	fs.Bool("b", false, "")
	fs.Duration("d", 0, "")
	for _, tt := range []struct {
		args, flags, positional []string
		complete                bool
	}{
		{[]string{"a", "--s", "v", "b"}, []string{"--s", "v"}, []string{"a", "b"}, true},
		{[]string{"--b", "a", "-s=v", "--d", "-1s"}, []string{"--b", "-s=v", "--d", "-1s"}, []string{"a"}, true},
		{[]string{"--s", "--", "a", "--", "--b"}, []string{"--s", "--"}, []string{"a", "--b"}, true},
		{[]string{"a", "-", "--unknown", "b"}, []string{"--unknown"}, []string{"a", "-", "b"}, true},
		{[]string{"a", "--s"}, []string{"--s"}, []string{"a"}, false},
		{[]string{"--b=false", "a"}, []string{"--b=false"}, []string{"a"}, true},
	} {
		f, p, complete := interspersed(fs, tt.args)
		if !slices.Equal(f, tt.flags) || !slices.Equal(p, tt.positional) || complete != tt.complete {
			t.Errorf("%q: flags %q, positional %q, complete %v; want %q, %q, %v", tt.args, f, p, complete, tt.flags, tt.positional, tt.complete)
		}
	}
	cmd := newFlags("example", "JOB [flags]")
	cmd.maxArgs = 1
	temporal := cmd.String("temporal", "", "")
	if err := parse(cmd, []string{"JOB", "--temporal", "host:7233"}); err != nil || cmd.Arg(0) != "JOB" || *temporal != "host:7233" {
		t.Errorf("JOB --temporal host:7233: %v, JOB %q, --temporal %q", err, cmd.Arg(0), *temporal)
	}
}

// TestBadValues gives every numeric and duration flag of every command a
// negative number, 0 where it must be positive, and a word: each is a
// usage error (exit 2) that names the flag, never a panic.
func TestBadValues(t *testing.T) {
	quietEnv(t)
	for _, c := range allCommands(t) {
		fs := flagsOf(t, c)
		fs.VisitAll(func(f *flag.Flag) {
			g, ok := f.Value.(flag.Getter)
			if !ok {
				return
			}
			var bad []string
			switch g.Get().(type) {
			case int, int64, float64:
				bad = []string{"-1", "x"}
			case time.Duration:
				bad = []string{"-1s", "1"}
			default:
				return
			}
			if limits[f.Name] == positive {
				bad = append(bad, "0")
			}
			if _, ok := g.Get().(float64); ok {
				bad = append(bad, "NaN", "+Inf")
			}
			if err := checkLimit(f); err != nil {
				t.Errorf("vog %s: the default of --%s is out of its range: %v", c, f.Name, err)
			}
			for _, v := range bad {
				args := append(slices.Clone(c), "--"+f.Name, v)
				code, _, err := runIn(t, args...)
				var usage usageError
				if code != 2 || !errors.As(err, &usage) || !strings.Contains(err.Error(), "--"+f.Name) {
					t.Errorf("vog %s: exit %d, %v; want a usage error naming --%s", strings.Join(args, " "), code, err, f.Name)
				}
			}
		})
	}
	for _, tt := range []struct{ args, want string }{
		{"run --progress 0", "--progress 0s: must be positive"},
		{"status JOB --progress 0s", "--progress 0s: must be positive"},
		{"watch --poll 0s", "--poll 0s: must be positive"},
		{"run --max-bad-fraction 1.5", "--max-bad-fraction 1.5: must be a fraction"},
		{"server --port 70000", "--port 70000: must be a port number"},
		{"run --threads -2", "--threads -2: must not be negative"},
		{"run --progress", "flag needs an argument: --progress"},
		{"schedule --temporal 127.0.0.1:1 list", "the subcommand comes first"},
		{"schedule lsit", "unknown subcommand \"lsit\""},
	} {
		code, _, err := runIn(t, strings.Fields(tt.args)...)
		if code != 2 || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("vog %s: exit %d, %v; want %q", tt.args, code, err, tt.want)
		}
	}
}
