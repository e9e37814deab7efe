package main

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "TestREADMEFlags: rewrite README.md's command reference from the flag sets")

const (
	readmePath = "../../README.md"
	// The command reference lies between these lines of README.md.
	refBegin = "<!-- flags: generated from vog's flag sets by `go test ./cmd/vog -run TestREADMEFlags -update`; edit the flags' help, not this -->"
	refEnd   = "<!-- /flags -->"
	// regenerate says how to bring the reference up to date.
	regenerate = "go test ./cmd/vog -run TestREADMEFlags -update"
)

// TestREADMEFlags: README.md's command reference is what the flag sets of
// vog's commands generate (every flag, its default and its help), and the
// rest of README.md names only flags that exist, with their defaults.
func TestREADMEFlags(t *testing.T) {
	quietEnv(t)
	t.Setenv("HOME", "~") // defaults under the home directory read ~/...
	ref := commandReference(t)
	b, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i, j := strings.Index(readme, refBegin), strings.Index(readme, refEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the lines\n%s\n%s\naround its command reference", refBegin, refEnd)
	}
	i += len(refBegin)
	// The rest of README.md: the flags it names exist, and the defaults it
	// states are theirs.
	prose := readme[:i-len(refBegin)] + readme[j:]
	if got := readme[i:j]; got != ref {
		if *update {
			readme = readme[:i] + ref + readme[j:]
			if err := os.WriteFile(readmePath, []byte(readme), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Log("README.md's command reference rewritten")
		} else {
			t.Errorf("README.md's command reference differs from the flag sets (a flag added, removed, or its default or help changed): run\n\t%s\nand commit README.md. First difference: %s",
				regenerate, firstDifference(got, ref))
		}
	}
	defaults := map[string][]string{} // flag name: its defaults, in any command
	for _, c := range allCommands(t) {
		flagsOf(t, c).VisitAll(func(f *flag.Flag) {
			if !slices.Contains(defaults[f.Name], f.DefValue) {
				defaults[f.Name] = append(defaults[f.Name], f.DefValue)
			}
		})
	}
	for _, m := range regexp.MustCompile("`--([a-z][a-z0-9-]*)").FindAllStringSubmatch(prose, -1) {
		if defaults[m[1]] == nil {
			t.Errorf("README.md names --%s, which no vog command has", m[1])
		}
	}
	for _, s := range statedDefaults(prose) {
		if !slices.ContainsFunc(defaults[s.flag], func(d string) bool { return sameValue(d, s.value) }) {
			t.Errorf("README.md, line %d: --%s default %s; the flag's default is %q", s.line, s.flag, s.value, defaults[s.flag])
		}
	}
}

// firstDifference shows where README's text a first differs from the
// generated b.
func firstDifference(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range max(len(al), len(bl)) {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("README has\n\t%s\nthe flags give\n\t%s", x, y)
		}
	}
	return "none"
}

// A stated default is a default README.md gives a flag in its prose or
// hand-written tables.
type stated struct {
	flag, value string
	line        int
}

// statedDefaults finds the defaults README.md's prose gives flags: in a
// table row whose first cell names a flag, "(default V)", "default V" or
// "Default V" anywhere in the row; elsewhere "`--flag` (default V)" or
// "`--flag`, default V". V is a number (100,000,000; 0.001; 1m), a word
// closing a parenthesis ("(default fp32)"), or in backquotes; other
// wordings ("default: the number of CPUs") are not read.
func statedDefaults(text string) []stated {
	value := "[Dd]efault:? (`[^`]+`|[0-9][0-9.,]*[a-z]*|[a-z0-9]+\\))"
	row := regexp.MustCompile("^\\| `--([a-z][a-z0-9-]*)")
	inRow := regexp.MustCompile(value)
	inProse := regexp.MustCompile("`--([a-z][a-z0-9-]*)`,? \\(?" + value)
	var out []stated
	add := func(flag, v string, line int) {
		v = strings.Trim(strings.TrimSuffix(v, ")"), "`")
		out = append(out, stated{flag, strings.TrimRight(v, ".,"), line})
	}
	for n, line := range strings.Split(text, "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			for _, d := range inRow.FindAllStringSubmatch(line, -1) {
				add(m[1], d[1], n+1)
			}
			continue
		}
		for _, m := range inProse.FindAllStringSubmatch(line, -1) {
			add(m[1], m[2], n+1)
		}
	}
	return out
}

// sameValue says whether a flag's default def is the value v README.md
// states: as durations, numbers (100,000,000 is 100000000) or text.
func sameValue(def, v string) bool {
	if def == v {
		return true
	}
	if a, err := time.ParseDuration(def); err == nil {
		b, err := time.ParseDuration(v)
		return err == nil && a == b
	}
	a, err1 := strconv.ParseFloat(def, 64)
	b, err2 := strconv.ParseFloat(strings.ReplaceAll(v, ",", ""), 64)
	return err1 == nil && err2 == nil && a == b
}

// docOrder is the order of the commands in the reference; commands it
// lacks come after, in allCommands' order.
var docOrder = []string{"run", "submit", "watch", "watch --finish", "schedule create", "schedule list", "schedule describe",
	"schedule pause", "schedule unpause", "schedule trigger", "schedule delete", "status", "wait", "resume", "eval",
	"report", "worker", "server"}

// A flagGroup is a set of flags that several commands share: listed once.
type flagGroup struct {
	title string // "Job flags"
	link  string // "job flags"
	intro string
	flags []*flag.Flag
	of    []string // the commands that have it
}

func (g *flagGroup) anchor() string { return strings.ReplaceAll(strings.ToLower(g.title), " ", "-") }

// in says whether fs has every flag of g, as g has it.
func (g *flagGroup) in(fs *flag.FlagSet) bool {
	for _, f := range g.flags {
		h := fs.Lookup(f.Name)
		if h == nil || h.DefValue != f.DefValue || h.Usage != f.Usage {
			return false
		}
	}
	return true
}

// commandReference returns the README's command reference: for each
// command (those with the same flags together), its usage and a table of
// its flags, with the flag groups it shares linked and listed once after.
func commandReference(t *testing.T) string {
	cs := allCommands(t)
	slices.SortStableFunc(cs, func(a, b command) int {
		i, j := slices.Index(docOrder, a.String()), slices.Index(docOrder, b.String())
		if i < 0 {
			i = len(docOrder)
		}
		if j < 0 {
			j = len(docOrder)
		}
		return i - j
	})
	all := map[string]*flags{}
	for _, c := range cs {
		all[c.String()] = flagsOf(t, c)
	}
	flagList := func(fs *flag.FlagSet, skip func(*flag.Flag) bool) []*flag.Flag {
		var list []*flag.Flag
		fs.VisitAll(func(f *flag.Flag) {
			if skip == nil || !skip(f) {
				list = append(list, f)
			}
		})
		return list
	}
	temporal, engine := flag.NewFlagSet("", 0), flag.NewFlagSet("", 0)
	(&temporalFlags{}).register(temporal)
	(&engineFlags{}).register(engine)
	groups := []*flagGroup{
		{title: "Job flags", link: "job flags", intro: "What a job computes, and how it is run and followed.", flags: flagList(all["run"].FlagSet, func(f *flag.Flag) bool {
			return temporal.Lookup(f.Name) != nil || engine.Lookup(f.Name) != nil
		})},
		{title: "Engine flags", link: "engine flags", intro: "How gradient workers compute: vog worker's, and the one vog run and vog watch start beside an embedded server.", flags: flagList(engine, nil)},
		{title: "Temporal flags", link: "Temporal flags", intro: "How vog reaches a Temporal server.", flags: flagList(temporal, nil)},
	}

	// Commands with the same flags are documented together.
	type entry struct {
		names []string // "vog schedule describe", ...
		fs    *flags
		usage []string // "vog schedule describe|pause NAME --temporal HOST:PORT [flags]"
	}
	var entries []*entry
	signature := func(fs *flag.FlagSet) string {
		var s []string
		fs.VisitAll(func(f *flag.Flag) { s = append(s, f.Name+"\x00"+f.DefValue+"\x00"+f.Usage) })
		return strings.Join(s, "\x01")
	}
	for _, c := range cs {
		fs := all[c.String()]
		i := slices.IndexFunc(entries, func(e *entry) bool { return signature(e.fs.FlagSet) == signature(fs.FlagSet) })
		if i < 0 {
			entries = append(entries, &entry{fs: fs})
			i = len(entries) - 1
		}
		e := entries[i]
		name := "vog " + c.String()
		if c.String() == "watch --finish" {
			name = "vog watch --add|--finish"
		}
		e.names = append(e.names, name)
		// One usage line per synopsis: vog schedule describe|pause NAME ...
		joined := false
		for k, u := range e.usage {
			if strings.HasSuffix(u, " "+fs.synopsis) {
				head := strings.TrimSuffix(u, " "+fs.synopsis)
				e.usage[k] = head + "|" + strings.TrimPrefix(fs.Name(), commonPrefix(head, fs.Name())) + " " + fs.synopsis
				joined = true
			}
		}
		if !joined {
			e.usage = append(e.usage, fs.Name()+" "+fs.synopsis)
		}
	}

	var b strings.Builder
	b.WriteString("\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "\n### %s\n\n", titleOf(e.names))
		for _, u := range e.usage {
			fmt.Fprintf(&b, "    %s\n", u)
		}
		var shared []string
		rest := flagList(e.fs.FlagSet, nil)
		for _, g := range groups {
			if len(g.flags) > 0 && g.in(e.fs.FlagSet) {
				shared = append(shared, fmt.Sprintf("the [%s](#%s)", g.link, g.anchor()))
				g.of = append(g.of, titleOf(e.names))
				rest = slices.DeleteFunc(rest, func(f *flag.Flag) bool { return slices.Contains(g.flags, f) || g.has(f.Name) })
			}
		}
		switch {
		case len(shared) > 0 && len(rest) > 0:
			fmt.Fprintf(&b, "\nFlags: %s, and these:\n", strings.Join(shared, ", "))
		case len(shared) > 0:
			fmt.Fprintf(&b, "\nFlags: %s.\n", joinAnd(shared))
		}
		if len(rest) > 0 {
			b.WriteString("\n")
			writeTable(&b, rest)
		}
	}
	for _, g := range groups {
		if len(g.of) == 0 {
			continue
		}
		// "of vog run, submit and vog worker", or "of every command but
		// vog eval and vog report", whichever is shorter.
		of := "of " + joinAnd(g.of)
		var but []string
		for _, e := range entries {
			if t := titleOf(e.names); !slices.Contains(g.of, t) {
				but = append(but, t)
			}
		}
		if len(but) < len(g.of) {
			of = "of every command but " + joinAnd(but)
		}
		fmt.Fprintf(&b, "\n### %s\n\n%s Flags %s.\n\n", g.title, g.intro, of)
		writeTable(&b, g.flags)
	}
	b.WriteString("\n")
	return b.String()
}

// has says whether g has a flag of this name.
func (g *flagGroup) has(name string) bool {
	return slices.ContainsFunc(g.flags, func(f *flag.Flag) bool { return f.Name == name })
}

// titleOf names commands as a heading: "vog run, submit".
func titleOf(names []string) string {
	title := names[0]
	for _, n := range names[1:] {
		title += ", " + strings.TrimPrefix(n, commonPrefix(names[0], n))
	}
	return title
}

// commonPrefix is the longest prefix of a and b that ends in a space.
func commonPrefix(a, b string) string {
	n := 0
	for i := 0; i < min(len(a), len(b)) && a[i] == b[i]; i++ {
		if a[i] == ' ' {
			n = i + 1
		}
	}
	return a[:n]
}

// joinAnd joins "a", "b" and "c" as "a, b and c".
func joinAnd(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// writeTable writes a table of flags: flag and its argument, default, help.
func writeTable(b *strings.Builder, list []*flag.Flag) {
	b.WriteString("| flag | default | meaning |\n|---|---|---|\n")
	for _, f := range list {
		arg, usage := flag.UnquoteUsage(f)
		name := "--" + f.Name
		if arg != "" {
			name += " " + arg
		}
		def := defaultOf(f)
		if def != "" {
			def = "`" + def + "`"
		}
		fmt.Fprintf(b, "| `%s` | %s | %s |\n", name, def, markdown(usage))
	}
}

// defaultOf is a flag's default as the reference shows it: empty for a
// zero value (the help then says what the zero means), durations without
// trailing zero units (1m, not 1m0s).
func defaultOf(f *flag.Flag) string {
	if g, ok := f.Value.(flag.Getter); ok {
		if d, ok := g.Get().(time.Duration); ok {
			if d == 0 {
				return ""
			}
			s := d.String()
			if strings.HasSuffix(s, "m0s") {
				s = strings.TrimSuffix(s, "0s")
			}
			if strings.HasSuffix(s, "h0m") {
				s = strings.TrimSuffix(s, "0m")
			}
			return s
		}
	}
	switch f.DefValue {
	case "", "0", "false":
		return ""
	}
	return f.DefValue
}

// markdown escapes what Markdown would read in help text: table bars,
// angle brackets, asterisks and underscores that begin a word.
var markdownEscapes = strings.NewReplacer("|", "\\|", "<", "&lt;", ">", "&gt;", "*", "\\*")

func markdown(s string) string {
	s = markdownEscapes.Replace(s)
	return regexp.MustCompile(`(^|[^\w])_`).ReplaceAllString(s, `$1\_`)
}

func TestStatedDefaults(t *testing.T) {
	text := "| `--shard-size N` | examples per shard (default 10000), rounded up |\n" +
		"| `--max-pixels N` | largest image, default 100,000,000; a larger one fails |\n" +
		"| `--threads N` | libtorch threads (default: the number of CPUs) |\n" +
		"| `--precision fp32\\|bf16` | engine precision (default fp32), part of the job |\n" +
		"| `--state-dir DIR` | where (default `~/.local/state/vog`) |\n" +
		"up to `--max-classes`, default 10) as grids, after `--heartbeat-timeout` (default 1m) its shard\n" +
		"`--label true` (the default) and `--classes none` (indices); by default by a file\n"
	want := []stated{{"shard-size", "10000", 1}, {"max-pixels", "100,000,000", 2}, {"precision", "fp32", 4},
		{"state-dir", "~/.local/state/vog", 5}, {"max-classes", "10", 6}, {"heartbeat-timeout", "1m", 6}}
	if got := statedDefaults(text); !slices.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	for _, tt := range []struct {
		def, v string
		same   bool
	}{{"1m0s", "1m", true}, {"100000000", "100,000,000", true}, {"0.001", "0.001", true}, {"10m0s", "1m", false}, {"fp32", "bf16", false}} {
		if sameValue(tt.def, tt.v) != tt.same {
			t.Errorf("sameValue(%q, %q) = %v", tt.def, tt.v, !tt.same)
		}
	}
}
