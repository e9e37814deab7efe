package checkpoint

import (
	"archive/zip"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// Param is a tensor a model's state dict holds: a parameter or buffer, by
// its name in state_dict() and its shape.
type Param struct {
	Name  string
	Shape []int64
}

// ModuleParams returns the parameters and buffers of a TorchScript module
// (torch.jit.save), as its state_dict() names them. It reads the module's
// pickled attributes and, for each class, the __parameters__ and
// __buffers__ lists of its code; a class whose code it cannot find keeps
// all its tensor attributes. Nothing is run.
func ModuleParams(data []byte) ([]Param, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("TorchScript module: %w (a truncated or damaged file?)", err)
	}
	a := &archive{data: data, files: map[string]*zip.File{}}
	for _, f := range zr.File {
		a.files[f.Name] = f
	}
	if len(zr.File) == 0 {
		return nil, fmt.Errorf("TorchScript module: zip: no records")
	}
	name, _, _ := strings.Cut(zr.File[0].Name, "/")
	a.prefix = name + "/"
	if a.files[a.prefix+"constants.pkl"] == nil {
		return nil, fmt.Errorf("not a TorchScript module (no constants.pkl record): save the architecture with torch.jit.script(model).save(path)")
	}
	pkl, err := a.record(a.prefix + "data.pkl")
	if err != nil {
		return nil, fmt.Errorf("TorchScript module: %w", err)
	}
	top, _, err := unpickle(pkl)
	if err != nil {
		return nil, fmt.Errorf("TorchScript module: %sdata.pkl: %w", a.prefix, err)
	}
	m := &moduleWalk{a: a, classes: map[string]map[string]bool{}}
	o, ok := top.(*object)
	if !ok {
		return nil, fmt.Errorf("TorchScript module: data.pkl holds %s, not a module", describe(top))
	}
	if err := m.walk(o, "", 0); err != nil {
		return nil, fmt.Errorf("TorchScript module: %w", err)
	}
	return m.out, nil
}

type moduleWalk struct {
	a       *archive
	visits  int                        // modules walked, bounded: the memo can share one many times
	classes map[string]map[string]bool // class -> its state's tensor names; nil: unknown
	out     []Param
}

// walk adds the tensors of module o, whose state_dict names start with
// prefix: its own parameters and buffers, then its submodules', in the
// order of its attributes, as state_dict() orders them.
func (m *moduleWalk) walk(o *object, prefix string, depth int) error {
	if depth > 256 {
		return fmt.Errorf("modules nested more than 256 deep")
	}
	if m.visits++; m.visits > 1<<20 {
		return fmt.Errorf("more than %d modules", 1<<20)
	}
	st, ok := o.state.(*dict)
	if !ok {
		return nil
	}
	keep := m.stateNames(o.class)
	// state_dict() lists a module's own tensors before its children's.
	for i, k := range st.keys {
		name, _ := k.(string)
		t, ok := st.vals[i].(*tensorRef)
		if !ok || name == "" || (keep != nil && !keep[name]) {
			continue
		}
		m.out = append(m.out, Param{Name: prefix + name, Shape: t.shape})
	}
	for i, k := range st.keys {
		name, _ := k.(string)
		sub, ok := st.vals[i].(*object)
		if !ok || name == "" || !strings.HasPrefix(sub.class, "__torch__.") {
			continue
		}
		if err := m.walk(sub, prefix+name+".", depth+1); err != nil {
			return err
		}
	}
	return nil
}

var stateList = regexp.MustCompile(`(?m)^\s+__(parameters|buffers)__ = \[([^\]]*)\]`)

// stateNames returns the names in the __parameters__ and __buffers__ of
// class (as "__torch__.a.b.C"), from its code record code/__torch__/a/b.py,
// or nil if they cannot be found.
func (m *moduleWalk) stateNames(class string) map[string]bool {
	if names, ok := m.classes[class]; ok {
		return names
	}
	m.classes[class] = nil
	dot := strings.LastIndex(class, ".")
	if dot < 0 {
		return nil
	}
	file := m.a.prefix + "code/" + strings.ReplaceAll(class[:dot], ".", "/") + ".py"
	code, err := m.a.record(file)
	if err != nil {
		return nil
	}
	src := string(code)
	start := strings.Index(src, "class "+class[dot+1:]+"(")
	if start < 0 {
		return nil
	}
	src = src[start:]
	if next := strings.Index(src[1:], "\nclass "); next >= 0 {
		src = src[:next+1]
	}
	found := stateList.FindAllStringSubmatch(src, -1)
	if len(found) == 0 {
		return nil
	}
	names := map[string]bool{}
	for _, f := range found {
		for _, n := range strings.Split(f[2], ",") {
			if n = strings.Trim(strings.TrimSpace(n), `"'`); n != "" {
				names[n] = true
			}
		}
	}
	m.classes[class] = names
	return names
}
