package checkpoint

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Found is where Find found a model's weights in a checkpoint.
type Found struct {
	// Entry is the entry of a torch.save'd dict that holds them, as
	// "model" or "state_dict", or "" for the file's top level.
	Entry string
	// Prefix is the prefix removed from their keys, as "module.", or "".
	Prefix string
	// Tensors are the weights, named as the model names them, sorted.
	Tensors []Tensor
}

// String describes where the weights were, as `entry "model", prefix
// "module."`.
func (f Found) String() string {
	where := "the top level"
	if f.Entry != "" {
		where = fmt.Sprintf("entry %q", f.Entry)
	}
	if f.Prefix == "" {
		return where + ", no key prefix"
	}
	return fmt.Sprintf("%s, key prefix %q", where, f.Prefix)
}

// Find returns the weights of a model whose parameters and buffers are
// want in the checkpoint named path, whose bytes are data (sibling reads
// the shards of an index, as for ReadFrom). The weights are the tensors of
// a state dict, either the file's top level or one of its entries (a
// torchvision reference script's "model", timm's "state_dict", a
// tutorial's "model_state_dict", Lightning's "state_dict"; an entry of an
// entry, named by its path, as "state.model"), whose keys,
// after removing a common prefix (DistributedDataParallel's "module.",
// Lightning's "model.", torch.compile's "_orig_mod.", or any other), are
// exactly want's names with want's shapes. opts.Entry and opts.Prefix,
// where set, fix the entry and the prefix. Where several entries fit,
// those of averaged weights (EMA, SWA) give way to the plain ones, and
// among the rest the top level, then "state_dict", "model",
// "model_state_dict" are preferred; two others are ambiguous. Values that
// are not tensors (an optimizer's state, argparse.Namespace, numpy
// scalars) are passed over without running anything.
func Find(path string, data []byte, sibling func(file string) ([]byte, error), want []Param, opts Options) (Found, error) {
	f, err := find(path, data, sibling, want, opts)
	if err != nil {
		return Found{}, fmt.Errorf("%s: %w", path, err)
	}
	return f, nil
}

// candidate is a dict of tensors in a checkpoint.
type candidate struct {
	entry  string
	names  []string
	shapes map[string][]int64
	// other describes the entry when it holds no tensors.
	other string
	// read returns its tensors under prefix, stripped of it.
	read func(prefix string) ([]Tensor, error)
}

func find(path string, data []byte, sibling func(string) ([]byte, error), want []Param, opts Options) (Found, error) {
	if len(want) == 0 {
		return Found{}, fmt.Errorf("the model has no parameters or buffers to load")
	}
	cands, err := candidates(path, data, sibling)
	if err != nil {
		return Found{}, err
	}
	if opts.Entry != "" {
		i := slices.IndexFunc(cands, func(c candidate) bool { return c.entry == opts.Entry })
		if i < 0 || cands[i].other != "" {
			return Found{}, fmt.Errorf("no entry %q holding tensors (--state-dict-entry); the file has %s", opts.Entry, entryList(cands))
		}
		cands = cands[i : i+1]
	}
	wantSet := make(map[string][]int64, len(want))
	for _, p := range want {
		wantSet[p.Name] = p.Shape
	}
	var fits []fit
	var best fit
	for _, c := range cands {
		if c.other != "" {
			continue
		}
		for _, p := range prefixes(c, wantSet, opts.Prefix) {
			f := match(c, p, want, wantSet)
			if f.ok() {
				fits = append(fits, f)
			} else if best.c == nil || f.closer(best) {
				best = f
			}
		}
	}
	if len(fits) == 0 {
		return Found{}, noFit(best, cands, len(want), opts)
	}
	chosen, err := choose(fits)
	if err != nil {
		return Found{}, err
	}
	ts, err := chosen.c.read(chosen.prefix)
	if err != nil {
		return Found{}, err
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return Found{Entry: chosen.c.entry, Prefix: chosen.prefix, Tensors: ts}, nil
}

// candidates lists the dicts of tensors in a checkpoint: its top level and
// each entry of it that is a dict holding tensors.
func candidates(path string, data []byte, sibling func(string) ([]byte, error)) ([]candidate, error) {
	switch Detect(data) {
	case TorchZip, TorchLegacy:
	case Safetensors, ShardIndex:
		ts, err := ReadFrom(path, data, sibling, Options{})
		if err != nil {
			return nil, err
		}
		return []candidate{fromTensors("", ts)}, nil
	default:
		_, err := Read(data, Options{})
		return nil, err
	}
	top, st, err := openTorch(data)
	if err != nil {
		return nil, err
	}
	b := &budget{left: 4 * int64(len(data))}
	if sd, ok := moduleState(top); ok { // torch.save(model)
		return []candidate{fromDict("", sd, st, b)}, nil
	}
	d, ok := asDict(top)
	if !ok {
		_, _, err := stateDict(top, "")
		return nil, err
	}
	out := []candidate{fromDict("", d, st, b)}
	out = nested(out, "", d, st, b, 0, map[*dict]bool{d: true})
	if len(out[0].names) == 0 {
		out = out[1:]
	}
	return out, nil
}

// maxNesting is how deep Find looks for a state dict: an entry of an entry
// of an entry, as {"state": {"model": {...}}}.
const maxNesting = 3

// nested appends the candidates among d's entries, named by their path
// from the top ("model", "state.model"): each dict that holds tensors,
// and the entries of those that hold none. Top-level entries of other
// kinds are listed too, for error messages.
func nested(out []candidate, path string, d *dict, st storer, b *budget, depth int, seen map[*dict]bool) []candidate {
	for i, k := range d.keys {
		key, ok := k.(string)
		if !ok {
			continue
		}
		if path != "" {
			key = path + "." + key
		}
		sd, ok := asDict(d.vals[i])
		if m, isModule := moduleState(d.vals[i]); isModule { // {"model": model}
			sd, ok = m, true
		}
		switch {
		case ok && !seen[sd]:
			seen[sd] = true
			c := fromDict(key, sd, st, b)
			if len(c.names) > 0 {
				out = append(out, c)
				continue
			}
			if depth == 0 {
				c.other = fmt.Sprintf("a dict of %d items, none a tensor", len(sd.keys))
				out = append(out, c)
			}
			if depth+1 < maxNesting {
				out = nested(out, key, sd, st, b, depth+1, seen)
			}
		case ok:
		default:
			if _, isT := d.vals[i].(*tensorRef); !isT && depth == 0 {
				out = append(out, candidate{entry: key, other: describe(d.vals[i])})
			}
		}
	}
	return out
}

// moduleState returns the state dict of a whole pickled nn.Module, as
// torch.save(model) writes it (and some training scripts, as {"model":
// model}): its _parameters and _buffers, then its _modules', named as
// state_dict() names them. Nothing is run: the module's class is an opaque
// placeholder whose pickled attributes are read. (Buffers registered as
// non-persistent are included, since the pickle keeps that set opaque.)
func moduleState(v any) (*dict, bool) {
	o, ok := v.(*object)
	if !ok {
		return nil, false
	}
	out := &dict{}
	visits := 0
	if !walkModule(o, "", out, &visits) || len(out.keys) == 0 {
		return nil, false
	}
	return out, true
}

// walkModule adds the tensors of module o under prefix to out, and reports
// whether o is a module (its state holds _parameters and _modules).
func walkModule(o *object, prefix string, out *dict, visits *int) bool {
	if *visits++; *visits > 1<<16 {
		return false
	}
	st, ok := o.state.(*dict)
	if !ok {
		return false
	}
	params, ok1 := st.get("_parameters")
	mods, ok2 := st.get("_modules")
	if !ok1 || !ok2 {
		return false
	}
	buffers, _ := st.get("_buffers")
	for _, group := range []any{params, buffers} {
		if g, ok := asDict(group); ok {
			for i, k := range g.keys {
				if name, ok := k.(string); ok {
					if t, ok := g.vals[i].(*tensorRef); ok {
						out.set(prefix+name, t)
					}
				}
			}
		}
	}
	if m, ok := asDict(mods); ok {
		for i, k := range m.keys {
			name, ok := k.(string)
			if sub, isObj := m.vals[i].(*object); ok && isObj {
				walkModule(sub, prefix+name+".", out, visits)
			}
		}
	}
	return *visits <= 1<<16
}

// fromDict is the candidate of the tensors in sd.
func fromDict(entry string, sd *dict, st storer, b *budget) candidate {
	c := candidate{entry: entry, shapes: map[string][]int64{}}
	for i, k := range sd.keys {
		key, ok := k.(string)
		t, isT := sd.vals[i].(*tensorRef)
		if ok && isT {
			c.names = append(c.names, key)
			c.shapes[key] = t.shape
		}
	}
	where := ""
	if entry != "" {
		where = fmt.Sprintf(" of entry %q", entry)
	}
	c.read = func(prefix string) ([]Tensor, error) {
		ts, _, err := tensorsOf(sd, where, st, prefix, b, false)
		return ts, err
	}
	return c
}

// fromTensors is the candidate of tensors already read.
func fromTensors(entry string, ts []Tensor) candidate {
	c := candidate{entry: entry, shapes: map[string][]int64{}}
	for _, t := range ts {
		c.names = append(c.names, t.Name)
		c.shapes[t.Name] = t.Shape
	}
	c.read = func(prefix string) ([]Tensor, error) {
		var out []Tensor
		for _, t := range ts {
			if name, ok := strip(t.Name, prefix); ok {
				t.Name = name
				out = append(out, t)
			}
		}
		return out, nil
	}
	return c
}

// prefixes returns the key prefixes to try on c: the given one, or each
// prefix that turns some key of c into a name of want, the most common
// first and "" first among equals.
func prefixes(c candidate, want map[string][]int64, given string) []string {
	if given != "" {
		return []string{withDot(given)}
	}
	count := map[string]int{}
	for _, key := range c.names {
		for i := 0; i <= len(key); i++ {
			if i > 0 && (i == len(key) || key[i-1] != '.') {
				continue
			}
			if _, ok := want[key[i:]]; ok && i < len(key) {
				count[key[:i]]++
			}
		}
	}
	ps := make([]string, 0, len(count))
	for p := range count {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool {
		if count[ps[i]] != count[ps[j]] {
			return count[ps[i]] > count[ps[j]]
		}
		return len(ps[i]) < len(ps[j]) || (len(ps[i]) == len(ps[j]) && ps[i] < ps[j])
	})
	return ps[:min(len(ps), 16)]
}

// fit is how well a candidate under a prefix fits the model.
type fit struct {
	c       *candidate
	prefix  string
	matched int
	missing []string // the model's, not in the file
	shape   []string // in both, of other shapes
	extra   []string // in the file under the prefix, not the model's
}

func (f fit) ok() bool { return len(f.missing)+len(f.shape)+len(f.extra) == 0 }

// closer reports whether f is a nearer miss than g: more tensors fit, or
// as many with fewer missing or extra (a shape that differs is the nearest
// miss: another number of classes).
func (f fit) closer(g fit) bool {
	if f.matched != g.matched {
		return f.matched > g.matched
	}
	return len(f.missing)+len(f.extra) < len(g.missing)+len(g.extra)
}

func match(c candidate, prefix string, want []Param, wantSet map[string][]int64) fit {
	f := fit{c: &c, prefix: prefix}
	for _, key := range c.names {
		name, ok := strip(key, prefix)
		if !ok {
			continue
		}
		if _, ok := wantSet[name]; !ok {
			f.extra = append(f.extra, fmt.Sprintf("%q", key))
		}
	}
	for _, p := range want {
		s, ok := c.shapes[prefix+p.Name]
		switch {
		case !ok:
			f.missing = append(f.missing, fmt.Sprintf("%q", prefix+p.Name))
		case !slices.Equal(s, p.Shape):
			f.shape = append(f.shape, fmt.Sprintf("%q is %v in the file, %v in the model", prefix+p.Name, s, p.Shape))
		default:
			f.matched++
		}
	}
	return f
}

// preferred are the entries that hold a model's plain weights, in the
// order Find prefers them when several fit.
var preferred = []string{"", "state_dict", "model", "model_state_dict", "module", "net", "network", "weights"}

// choose picks one of several fits, or says why it cannot.
func choose(fits []fit) (fit, error) {
	if len(fits) == 1 {
		return fits[0], nil
	}
	plain := slices.DeleteFunc(slices.Clone(fits), func(f fit) bool { return averaged(f.c.entry) || averaged(f.prefix) })
	if len(plain) == 0 {
		plain = fits
	}
	if len(plain) == 1 {
		return plain[0], nil
	}
	rank := func(f fit) int {
		if i := slices.Index(preferred, f.c.entry); i >= 0 {
			return i
		}
		return len(preferred)
	}
	sort.SliceStable(plain, func(i, j int) bool { return rank(plain[i]) < rank(plain[j]) })
	if rank(plain[0]) < rank(plain[1]) {
		return plain[0], nil
	}
	var names []string
	for _, f := range fits {
		names = append(names, Found{Entry: f.c.entry, Prefix: f.prefix}.String())
	}
	return fit{}, fmt.Errorf("several state dicts hold the model's weights (%s): name one with --state-dict-entry (and --state-dict-prefix)",
		strings.Join(names, "; "))
}

// averaged reports whether an entry or prefix names averaged weights: an
// exponential moving average or stochastic weight averaging.
func averaged(name string) bool {
	for _, w := range strings.FieldsFunc(strings.ToLower(name), func(r rune) bool { return r == '_' || r == '.' || r == '-' }) {
		switch w {
		case "ema", "swa", "averaged", "avg", "average":
			return true
		}
	}
	return false
}

// noFit explains why no state dict fits.
func noFit(best fit, cands []candidate, n int, opts Options) error {
	var b strings.Builder
	b.WriteString("no state dict in it holds the model's weights")
	if best.c != nil {
		fmt.Fprintf(&b, "; the closest, %s, has %d of its %d tensors", Found{Entry: best.c.entry, Prefix: best.prefix}, best.matched, n)
		if len(best.missing) > 0 {
			fmt.Fprintf(&b, "; missing %s", few(best.missing))
		}
		if len(best.shape) > 0 {
			fmt.Fprintf(&b, "; %s (another number of classes or architecture?)", few(best.shape))
		}
		if len(best.extra) > 0 {
			fmt.Fprintf(&b, "; not in the model %s", few(best.extra))
		}
	}
	fmt.Fprintf(&b, ". The file has %s. ", entryList(cands))
	switch {
	case opts.Prefix == "" && opts.Entry == "":
		b.WriteString("--state-dict-entry NAME picks an entry and --state-dict-prefix P removes a key prefix, if the weights are there under other names; otherwise check that --model is the architecture these checkpoints were trained with")
	default:
		b.WriteString("check --state-dict-entry and --state-dict-prefix (leave them out to let vog search), and that --model is the architecture these checkpoints were trained with")
	}
	return fmt.Errorf("%s", b.String())
}

// entryList describes the dicts of tensors and other entries of a file.
func entryList(cands []candidate) string {
	var parts []string
	for _, c := range cands {
		name := "the top level"
		if c.entry != "" {
			name = fmt.Sprintf("%q", c.entry)
		}
		if c.other != "" {
			parts = append(parts, fmt.Sprintf("%s (%s)", name, c.other))
		} else {
			parts = append(parts, fmt.Sprintf("%s (%d tensors)", name, len(c.names)))
		}
		if len(parts) == 12 && len(cands) > 12 {
			parts = append(parts, fmt.Sprintf("and %d more entries", len(cands)-12))
			break
		}
	}
	if len(parts) == 0 {
		return "no tensors"
	}
	return strings.Join(parts, ", ")
}

// Classes returns the number of classes of the checkpoint's weights for a
// model whose parameters want were made with defaultClasses outputs: the
// first dimension the file gives every tensor of the model whose first
// dimension is defaultClasses, where the state dict otherwise fits want
// (the classifier's weight and bias, and an auxiliary classifier's).
func Classes(path string, data []byte, sibling func(file string) ([]byte, error), want []Param, defaultClasses int, opts Options) (int, error) {
	cands, err := candidates(path, data, sibling)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	wantSet := make(map[string][]int64, len(want))
	for _, p := range want {
		wantSet[p.Name] = p.Shape
	}
	for _, c := range cands {
		if c.other != "" || (opts.Entry != "" && c.entry != opts.Entry) {
			continue
		}
		for _, p := range prefixes(c, wantSet, opts.Prefix) {
			if n, ok := classesOf(c, p, want, int64(defaultClasses)); ok {
				return int(n), nil
			}
		}
	}
	// None fits even so: Find says why.
	_, err = Find(path, data, sibling, want, opts)
	if err == nil {
		err = fmt.Errorf("%s: the number of classes cannot be told from its weights", path)
	}
	return 0, err
}

// classesOf returns the number of classes that c under prefix has for the
// model want, if c fits want but for that.
func classesOf(c candidate, prefix string, want []Param, def int64) (int64, bool) {
	n := int64(-1)
	matched := 0
	for _, p := range want {
		s, ok := c.shapes[prefix+p.Name]
		if !ok || len(s) != len(p.Shape) {
			return 0, false
		}
		if len(s) > 0 && p.Shape[0] == def && s[0] != def {
			if (n >= 0 && s[0] != n) || !slices.Equal(s[1:], p.Shape[1:]) {
				return 0, false
			}
			n = s[0]
		} else if !slices.Equal(s, p.Shape) {
			return 0, false
		}
		matched++
	}
	if n < 0 {
		n = def
	}
	return n, matched == len(want) && n > 0
}

// few joins the first few of items.
func few(items []string) string {
	const n = 4
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
