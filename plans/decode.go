package plans

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// The decoder walks yaml.v3's node tree against the schema structs by
// reflection over their yaml tags, rather than using yaml.v3's own
// KnownFields decoding, so that every problem carries the node's line and
// column and the field path, and so that decoding goes on after the first
// problem and reports them all.

// maxSteps bounds the nodes visited, so aliases that expand exponentially
// ("billion laughs") end in an error, not an exhausted machine.
const maxSteps = 200000

// scalarType is implemented (on the pointer) by types decoded from one
// scalar; parseScalar returns "" or what is wrong.
type scalarType interface {
	want() string
	parseScalar(s string) string
}

// nodeType is implemented (on the pointer) by types that decode themselves.
type nodeType interface {
	want() string
	decodeNode(d *decoder, n *yaml.Node, path string)
}

// enum is implemented by string types with a fixed set of values.
type enum interface{ enumValues() []string }

type decoder struct {
	file    string
	errs    Errors
	pos     map[string]Pos
	steps   int
	aborted bool
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, pos: map[string]Pos{}}
}

func (d *decoder) at(n *yaml.Node) Pos {
	line, col := n.Line, n.Column
	if line < 1 {
		line = 1
	}
	if col < 1 {
		col = 1
	}
	return Pos{File: d.file, Line: line, Col: col}
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: d.at(n), Path: displayPath(path), Msg: fmt.Sprintf(format, args...)})
}

// displayPath names the document root, which has the empty path.
func displayPath(path string) string {
	if path == "" {
		return "(plan)"
	}
	return path
}

func join(path, key string) string {
	key = safeKey(key)
	if path == "" {
		return key
	}
	return path + "." + key
}

// safeKey quotes a key that would break a one-line path (blanks, control
// characters, dots, brackets, or nothing at all).
func safeKey(key string) string {
	if key == "" || strings.IndexFunc(key, func(r rune) bool {
		return r <= ' ' || r == 0x7f || r == '.' || r == '[' || r == ']' || r == '"' || !unicode.IsPrint(r)
	}) >= 0 {
		return strconv.Quote(key)
	}
	return key
}

// deref follows aliases.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node is, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("the string %q", clip(n.Value))
		case "!!int", "!!float":
			return "the number " + clip(n.Value)
		case "!!bool":
			return "the boolean " + n.Value
		case "!!null":
			return "nothing"
		case "!!timestamp":
			return "the timestamp " + n.Value
		}
		return fmt.Sprintf("%q", clip(n.Value))
	}
	return "something else"
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

var (
	timeType    = reflect.TypeOf(time.Time{})
	scalarIface = reflect.TypeOf((*scalarType)(nil)).Elem()
	nodeIface   = reflect.TypeOf((*nodeType)(nil)).Elem()
	enumIface   = reflect.TypeOf((*enum)(nil)).Elem()
)

// want says in words what a Go type accepts.
func want(t reflect.Type) string {
	if pt := reflect.PointerTo(t); pt.Implements(nodeIface) {
		return reflect.Zero(pt).Interface().(nodeType).want()
	} else if pt.Implements(scalarIface) {
		return reflect.Zero(pt).Interface().(scalarType).want()
	}
	if t.Implements(enumIface) {
		return "one of " + strings.Join(reflect.Zero(t).Interface().(enum).enumValues(), ", ")
	}
	switch {
	case t == timeType:
		return "an RFC 3339 time like 2027-02-05T18:00:00+08:00"
	case t.Kind() == reflect.Pointer:
		return want(t.Elem())
	case t.Kind() == reflect.Struct, t.Kind() == reflect.Map:
		return "a mapping"
	case t.Kind() == reflect.Slice:
		return "a list of " + plural(t.Elem())
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Int:
		return "a number"
	case t.Kind() == reflect.Bool:
		return "true or false"
	}
	return t.String()
}

func plural(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeOf(Prefix{}):
		return "CIDRs or addresses"
	case t.Kind() == reflect.Struct:
		return "mappings"
	case t.Kind() == reflect.String:
		return "strings"
	}
	return t.String() + "s"
}

// field is one yaml key of a struct.
type field struct {
	name     string
	index    []int
	required bool
}

var fieldCache sync.Map // reflect.Type → []field

func fieldsOf(t reflect.Type) []field {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]field)
	}
	var fs []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		if tag == "-" || !sf.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "inline" {
			for _, inner := range fieldsOf(sf.Type) {
				inner.index = append([]int{i}, inner.index...)
				fs = append(fs, inner)
			}
			continue
		}
		if name == "" {
			continue
		}
		fs = append(fs, field{name: name, index: []int{i}, required: sf.Tag.Get("plan") == "required"})
	}
	fieldCache.Store(t, fs)
	return fs
}

// requiredHint words the message for a missing required key.
var requiredHint = map[string]string{
	"version":    "start the plan with `version: 1`",
	"management": "list the ranges operators and monitoring reach hosts from (bastion, VPN, on-call), e.g. management: [10.0.0.0/24]; lockdown never cuts them off",
	"name":       "add name: (a unique name)",
	"url":        "add url: (a local path or s3:https://host/bucket/prefix)",
	"model":      "add model: (cisco-ios, junos, arista-eos, routeros, fortios, huawei-vrp or h3c-comware)",
	"days":       "add days: (how long every file stays retained, e.g. days: 60)",
}

// pair is one key and value of a mapping, after merge keys are applied.
type pair struct{ key, val *yaml.Node }

// pairs returns a mapping's entries with `<<:` merges applied (explicit
// keys win; among merged mappings the first wins, as YAML says) and
// reports duplicate keys.
func (d *decoder) pairs(n *yaml.Node, path string, depth int) []pair {
	if d.aborted {
		return nil
	}
	if d.steps += len(n.Content)/2 + 1; d.steps > maxSteps {
		d.aborted = true
		d.errorf(n, path, "plan too large: more than %d values (aliases expanding too far?)", maxSteps)
		return nil
	}
	var explicit, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			d.errorf(n.Content[i], path, "keys must be plain words, not %s", describe(orNode(k, n.Content[i])))
			continue
		}
		if k.ShortTag() == "!!merge" {
			if depth > 20 {
				d.errorf(k, path, "merge keys nested too deep")
				continue
			}
			v = deref(v)
			if v == nil {
				continue
			}
			var srcs []*yaml.Node
			switch v.Kind {
			case yaml.MappingNode:
				srcs = []*yaml.Node{v}
			case yaml.SequenceNode:
				for _, s := range v.Content {
					srcs = append(srcs, deref(s))
				}
			default:
				srcs = []*yaml.Node{v}
			}
			for _, s := range srcs {
				if s == nil || s.Kind != yaml.MappingNode {
					d.errorf(k, path, "<< needs a mapping (or a list of them) to merge, got %s", describe(orNode(s, v)))
					continue
				}
				merged = append(merged, d.pairs(s, path, depth+1)...)
			}
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, join(path, k.Value), "duplicate key %q (first set at line %d); keep one", k.Value, first.Line)
			continue
		}
		seen[k.Value] = k
		explicit = append(explicit, pair{k, v})
	}
	for _, m := range merged {
		if seen[m.key.Value] != nil {
			continue
		}
		seen[m.key.Value] = m.key
		explicit = append(explicit, m)
	}
	return explicit
}

func orNode(a, b *yaml.Node) *yaml.Node {
	if a != nil {
		return a
	}
	return b
}

// decode fills v from n, recording positions and problems under path.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.aborted {
		return
	}
	if d.steps++; d.steps > maxSteps {
		d.aborted = true
		d.errorf(n, path, "plan too large: more than %d values (aliases expanding too far?)", maxSteps)
		return
	}
	orig := n
	if n = deref(n); n == nil {
		d.errorf(orig, path, "alias to nothing")
		return
	}
	if _, ok := d.pos[path]; !ok {
		d.pos[path] = d.at(orig)
	}
	t := v.Type()
	if isNull(n) {
		d.errorf(n, path, "no value; want %s (or remove the key)", want(t))
		return
	}
	if v.CanAddr() {
		switch p := v.Addr().Interface().(type) {
		case nodeType:
			p.decodeNode(d, n, path)
			return
		case scalarType:
			if n.Kind != yaml.ScalarNode {
				d.errorf(n, path, "want %s, got %s", p.want(), describe(n))
				return
			}
			if msg := p.parseScalar(n.Value); msg != "" {
				d.errorf(n, path, "%s", msg)
			}
			return
		}
	}
	if t == timeType {
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "want %s, got %s", want(t), describe(n))
			return
		}
		tm, err := time.Parse(time.RFC3339, n.Value)
		if err != nil {
			d.errorf(n, path, "%q is not an RFC 3339 time with an offset, like 2027-02-05T18:00:00+08:00", clip(n.Value))
			return
		}
		v.Set(reflect.ValueOf(tm))
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		nv := reflect.New(t.Elem())
		d.decode(n, nv.Elem(), path)
		v.Set(nv)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.errorf(n, path, "want %s, got %s", want(t), describe(n))
			return
		}
		m := reflect.MakeMap(t)
		for _, p := range d.pairs(n, path, 0) {
			ev := reflect.New(t.Elem()).Elem()
			d.decode(p.val, ev, join(path, p.key.Value))
			m.SetMapIndex(reflect.ValueOf(p.key.Value), ev)
		}
		v.Set(m)
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!bool" {
			d.errorf(n, path, "want %s, got %s", want(t), describe(n))
			return
		}
		if e, ok := v.Interface().(enum); ok {
			vals := e.enumValues()
			if !contains(vals, n.Value) {
				msg := fmt.Sprintf("%q is not allowed; want one of %s", clip(n.Value), strings.Join(vals, ", "))
				if s := suggest(n.Value, vals); s != "" {
					msg += fmt.Sprintf(" (did you mean %s?)", s)
				}
				d.errorf(n, path, "%s", msg)
				return
			}
		}
		v.SetString(n.Value)
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.errorf(n, path, "want %s, got %s", want(t), describe(n))
			return
		}
		i, err := strconv.ParseInt(n.Value, 0, 32)
		if err != nil {
			d.errorf(n, path, "%s is not a number in range", clip(n.Value))
			return
		}
		v.SetInt(i)
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.errorf(n, path, "want true or false, got %s", describe(n))
			return
		}
		v.SetBool(n.Value == "true" || n.Value == "True" || n.Value == "TRUE")
	default:
		d.errorf(n, path, "internal: cannot decode into %s", t)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping, got %s", describe(n))
		return
	}
	fs := fieldsOf(t)
	set := map[string]bool{}
	for _, p := range d.pairs(n, path, 0) {
		key := p.key.Value
		f, ok := lookupField(fs, key)
		if !ok && path == "" && strings.HasPrefix(key, "x-") {
			continue // extension keys, a place for anchors (as in Compose files)
		}
		if !ok {
			if s := d.unknownKey(p.key, path, key, fs); s != "" {
				// The typo already says it; "missing" would be noise, here
				// and in later checks, which look for the path.
				set[s] = true
				if _, ok := d.pos[join(path, s)]; !ok {
					d.pos[join(path, s)] = d.at(p.key)
				}
			}
			continue
		}
		set[key] = true
		d.decode(p.val, v.FieldByIndex(f.index), join(path, key))
	}
	for _, f := range fs {
		if f.required && !set[f.name] {
			msg := requiredHint[f.name]
			if msg == "" {
				msg = fmt.Sprintf("add %s: (required here)", f.name)
			}
			d.errorf(n, join(path, f.name), "missing; %s", msg)
		}
	}
}

func lookupField(fs []field, key string) (field, bool) {
	for _, f := range fs {
		if f.name == key {
			return f, true
		}
	}
	return field{}, false
}

// unknownKey reports a key the schema lacks and returns the key it
// suggested instead, if any.
func (d *decoder) unknownKey(k *yaml.Node, path, key string, fs []field) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	if isSecretKey(key) {
		d.errorf(k, join(path, key), "literal secrets are not allowed in plans; %s", secretFix(key, names))
		return ""
	}
	msg := fmt.Sprintf("unknown key %q", clip(key))
	s := suggest(key, names)
	if s != "" {
		msg += fmt.Sprintf("; did you mean `%s`?", s)
	} else {
		sorted := append([]string(nil), names...)
		sort.Strings(sorted)
		msg += "; valid keys here: " + strings.Join(sorted, ", ")
	}
	d.errorf(k, join(path, key), "%s", msg)
	return s
}

// isSecretKey reports whether a key looks like it holds a secret inline.
func isSecretKey(key string) bool {
	k := strings.ToLower(key)
	if strings.HasSuffix(k, "_env") || strings.HasSuffix(k, "_file") {
		return false
	}
	switch k {
	case "password", "passwd", "pass", "secret", "token", "key", "passphrase", "apikey",
		"api_key", "private_key", "credentials", "community":
		return true
	}
	for _, suf := range []string{"_password", "_passwd", "_secret", "_token", "_key", "_passphrase", "password"} {
		if strings.HasSuffix(k, suf) {
			return true
		}
	}
	return false
}

// secretFix says which fields to use instead of a literal secret.
func secretFix(key string, names []string) string {
	for _, base := range []string{strings.ToLower(key), "password"} {
		if contains(names, base+"_env") && contains(names, base+"_file") {
			return fmt.Sprintf("use %s_env: VAR or %s_file: PATH", base, base)
		}
	}
	return "secrets come only from *_env or *_file fields (e.g. password_env: VAR or password_file: PATH), and none belongs here"
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	t := v.Type()
	if n.Kind != yaml.SequenceNode {
		if t == reflect.TypeOf(StringList{}) && n.Kind == yaml.ScalarNode {
			n = &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{n}, Line: n.Line, Column: n.Column}
		} else {
			hint := ""
			if n.Kind == yaml.MappingNode {
				hint = "; put `- ` before each item"
			}
			d.errorf(n, path, "want %s, got %s%s", want(t), describe(n), hint)
			return
		}
	}
	named := hasNameField(t.Elem())
	used := map[string]bool{}
	s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
	for i, en := range n.Content {
		label := strconv.Itoa(i)
		if named {
			if name := peekName(en); name != "" && !used[name] {
				label = name
			}
		}
		used[label] = true
		d.decode(en, s.Index(i), fmt.Sprintf("%s[%s]", path, label))
	}
	v.Set(s)
}

func hasNameField(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return false
	}
	_, ok := lookupField(fieldsOf(t), "name")
	return ok
}

// peekName returns the name: of a list item, when it is a usable label.
func peekName(n *yaml.Node) string {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k != nil && v != nil && k.Value == "name" && v.Kind == yaml.ScalarNode && validName(v.Value) {
			return v.Value
		}
	}
	return ""
}

// validName reports whether s is a usable host, device or group name.
func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

func (b *Backup) want() string { return `a list of sources, or none` }

func (b *Backup) decodeNode(d *decoder, n *yaml.Node, path string) {
	switch {
	case n.Kind == yaml.ScalarNode && n.Value == "none":
		b.None = true
	case n.Kind == yaml.SequenceNode:
		if len(n.Content) == 0 {
			d.errorf(n, path, "empty list; list what to back up, or write `backup: none` to say this host has no backups")
			return
		}
		d.decodeSlice(n, reflect.ValueOf(&b.Sources).Elem(), path)
	case n.Kind == yaml.MappingNode:
		d.errorf(n, path, "want a list of sources, got a mapping; put `- ` before each source")
	default:
		d.errorf(n, path, "want a list of sources or `none`, got %s", describe(n))
	}
}

func (p *Ports) decodeNode(d *decoder, n *yaml.Node, path string) {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		if len(n.Content) == 0 {
			d.errorf(n, path, "empty list of ports")
			return
		}
		items = n.Content
	}
	for i, it := range items {
		it = deref(it)
		ipath := path
		if n.Kind == yaml.SequenceNode {
			ipath = fmt.Sprintf("%s[%d]", path, i)
		}
		if it == nil || it.Kind != yaml.ScalarNode || (it.ShortTag() != "!!int" && it.ShortTag() != "!!str") {
			d.errorf(orNode(it, n), ipath, "want %s, got %s", p.want(), describe(orNode(it, n)))
			continue
		}
		r, msg := parsePortRange(it.Value)
		if msg != "" {
			d.errorf(it, ipath, "%s", msg)
			continue
		}
		*p = append(*p, r)
	}
}

// suggest returns the candidate closest to s by edit distance, if close
// enough to be a likely typo.
func suggest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if dd := editDistance(strings.ToLower(s), c); dd < bestD {
			best, bestD = c, dd
		}
	}
	limit := 2
	if len(s) <= 4 {
		limit = 1
	}
	if bestD <= limit || (len(best) > 3 && strings.HasPrefix(strings.ToLower(s), best)) {
		return best
	}
	return ""
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of neighbours each count as one.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 20
	}
	dist := make([][]int, len(a)+1)
	for i := range dist {
		dist[i] = make([]int, len(b)+1)
		dist[i][0] = i
	}
	for j := range dist[0] {
		dist[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			dist[i][j] = min(dist[i-1][j]+1, dist[i][j-1]+1, dist[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				dist[i][j] = min(dist[i][j], dist[i-2][j-2]+1)
			}
		}
	}
	return dist[len(a)][len(b)]
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
