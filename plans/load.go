package plans

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Options change how a plan is loaded. The zero value reads files from disk
// and checks nothing outside the plan and its inventory.
type Options struct {
	// CheckFiles makes Load check that the files a plan names
	// (password_file, identity, known_hosts, …) exist. They are never
	// read: secrets are read by the command that needs them, when it does.
	CheckFiles bool
	// ReadFile reads the plan and its inventory; nil means os.ReadFile.
	ReadFile func(name string) ([]byte, error)
}

// Load reads, decodes and validates the plan at path, reads the inventory
// it names and resolves its hosts. It does not lint: call [Lint] too.
//
// If the plan has problems the error is an [Errors] holding every one,
// sorted by position, and the returned plan is the part that decoded
// (fit for Lint, not for running). Only an unreadable file yields a nil
// plan.
func Load(path string) (*Plan, error) { return LoadWith(path, Options{}) }

// LoadWith is Load with options.
func LoadWith(path string, opt Options) (*Plan, error) {
	read := opt.ReadFile
	if read == nil {
		read = os.ReadFile
	}
	data, err := read(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read plan: %w", err)
	}
	return Parse(path, data, opt)
}

// Parse is Load for a plan already in memory; name is used in positions
// and to find the inventory relative to it.
func Parse(name string, data []byte, opt Options) (*Plan, error) {
	p := &Plan{File: name, pos: map[string]Pos{}}
	d := newDecoder(name)
	root, errs := parseYAML(name, data)
	if errs != nil {
		return p, errs
	}
	d.decode(root, reflect.ValueOf(p).Elem(), "")
	p.pos = d.pos
	if d.aborted {
		return p, d.errs
	}
	v := &validator{p: p, errs: d.errs, opt: opt}
	v.validate()
	v.loadInventory(opt)
	v.resolve()
	errs = v.errs.dedup()
	errs.Sort()
	if len(errs) > 0 {
		return p, errs
	}
	return p, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses one YAML document into its root node.
func parseYAML(name string, data []byte) (root *yaml.Node, errs Errors) {
	syntax := func(line int, msg string) Errors {
		return Errors{{Pos: Pos{File: name, Line: line, Col: 1}, Path: "(yaml)", Msg: msg}}
	}
	defer func() {
		if r := recover(); r != nil { // yaml.v3 has panicked on odd input before
			root, errs = nil, syntax(1, fmt.Sprintf("YAML parser failed: %v", r))
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, syntax(1, "empty plan; start with `version: 1`")
		}
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 1
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
			// yaml.v3 counts parser (not scanner) error lines from 0.
			if strings.HasPrefix(msg, "did not find expected") {
				line++
			}
		}
		return nil, syntax(max(line, 1), "YAML syntax: "+msg)
	}
	var second yaml.Node
	if err := dec.Decode(&second); err == nil {
		return nil, syntax(max(second.Line, 1), "a plan is one YAML document; remove the second `---`")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, syntax(1, "empty plan; start with `version: 1`")
	}
	return doc.Content[0], nil
}

// validator checks what the decoder cannot see field by field.
type validator struct {
	p    *Plan
	errs Errors
	opt  Options
}

// at returns the position of path's value, or of its nearest ancestor
// that has one (a missing field is reported at the mapping that lacks it).
func (p *Plan) at(path string) Pos {
	for q := path; ; {
		if pos, ok := p.pos[q]; ok {
			return pos
		}
		if q == "" {
			return Pos{File: p.File, Line: 1, Col: 1}
		}
		q = parentPath(q)
	}
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func (v *validator) errorf(path, format string, args ...any) {
	v.errs = append(v.errs, &Error{Pos: v.p.at(path), Path: displayPath(path), Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) loadInventory(opt Options) {
	p := v.p
	if p.Inventory == "" {
		return
	}
	path := p.Inventory
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(p.File), path)
	}
	read := opt.ReadFile
	if read == nil {
		read = os.ReadFile
	}
	data, err := read(path)
	if err != nil {
		v.errorf("inventory", "cannot read inventory %s (paths are relative to the plan file): %v", path, unwrapPathError(err))
		return
	}
	inv, err := ParseINI(path, bytes.NewReader(data))
	var es Errors
	if errors.As(err, &es) {
		v.errs = append(v.errs, es...)
	}
	p.inv = inv
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ParsedInventory returns the inventory the plan names, parsed, or nil.
func (p *Plan) ParsedInventory() *Inventory { return p.inv }
