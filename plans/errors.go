package plans

import (
	"fmt"
	"sort"
	"strings"
)

// Pos is a place in a plan or inventory file. Line and Col count from 1.
type Pos struct {
	File string
	Line int
	Col  int
}

// String formats the position as FILE:LINE:COL.
func (p Pos) String() string { return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col) }

// Severity says whether a finding refuses the plan.
type Severity int

const (
	// SevError refuses the plan: no command runs with it.
	SevError Severity = iota
	// SevWarning is printed but lets the plan run.
	SevWarning
)

// Error is one problem found in a plan: where, which field, and what is
// wrong, worded for the operator. Lint returns warnings as *Error too, with
// Severity set to SevWarning.
type Error struct {
	Pos Pos
	// Path is the field path, e.g. hosts[web1].firewall.allow[0].tcp:
	// list items are named by their name: when they have one, else by
	// index. Inventory problems use the section ([web:vars]); YAML syntax
	// errors use (yaml) and problems with the whole document (plan).
	Path     string
	Msg      string
	Severity Severity
}

// Error formats the problem as one line: FILE:LINE:COL: PATH: message.
func (e *Error) Error() string {
	sev := ""
	if e.Severity == SevWarning {
		sev = "warning: "
	}
	return fmt.Sprintf("%s: %s: %s%s", e.Pos, e.Path, sev, e.Msg)
}

// Errors is every problem found in a plan, sorted by position. Load returns
// it as its error, so callers can range over the individual problems with
// errors.As.
type Errors []*Error

// Error joins the problems, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// HasErrors reports whether any finding has SevError.
func (es Errors) HasErrors() bool {
	for _, e := range es {
		if e.Severity == SevError {
			return true
		}
	}
	return false
}

// Sort orders the problems by file, line, column, then path and message,
// so output is stable and reads top to bottom.
func (es Errors) Sort() {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		if a.Pos.Col != b.Pos.Col {
			return a.Pos.Col < b.Pos.Col
		}
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.Msg < b.Msg
	})
}

// dedup drops exact repeats (same place, path and message), which arise when
// an anchor is used several times or a group's problem shows in every host.
func (es Errors) dedup() Errors {
	seen := map[string]bool{}
	out := es[:0]
	for _, e := range es {
		k := e.Error()
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	return out
}
