package archtest

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/holiday-ops/holiday"

// allowed lists, for each top-level layer, the layers it may import. A
// package's layer is the first element of its path inside the module
// (internal/x is layer "internal"). Imports inside the same layer are fine.
var allowed = map[string][]string{
	"cmd":      {"restore", "actions", "plans", "backup", "internal"},
	"restore":  {"actions", "plans", "backup", "internal"},
	"actions":  {"plans", "backup", "internal"},
	"plans":    {"internal"},
	"backup":   {"internal"},
	"internal": {},
}

type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func layer(path string) string {
	rest, ok := strings.CutPrefix(path, module+"/")
	if !ok {
		return ""
	}
	first, _, _ := strings.Cut(rest, "/")
	return first
}

func TestLayering(t *testing.T) {
	cmd := exec.Command("go", "list", "-json", module+"/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	seen := 0
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		seen++
		from := layer(p.ImportPath)
		ok, known := allowed[from]
		if !known {
			t.Errorf("%s: top-level folder %q is not a known layer; add it to the layering rules", p.ImportPath, from)
			continue
		}
		imports := append(append(append([]string{}, p.Imports...), p.TestImports...), p.XTestImports...)
		for _, imp := range imports {
			to := layer(imp)
			if to == "" || to == from {
				continue
			}
			if !contains(ok, to) {
				t.Errorf("%s imports %s: layer %q may not import %q (DESIGN §3: layers only point down)", p.ImportPath, imp, from, to)
			}
		}
	}
	if seen < 5 {
		t.Fatalf("go list found only %d packages; the test is not looking at the module", seen)
	}
}

func TestLayerOf(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{module + "/cmd/holiday", "cmd"},
		{module + "/internal/sshx", "internal"},
		{module + "/plans", "plans"},
		{"golang.org/x/crypto/ssh", ""},
	} {
		if got := layer(tc.in); got != tc.want {
			t.Errorf("layer(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
