package plans

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .golden files from the current output")

// findings is what `holiday plan validate` prints for one plan: Load's
// errors and Lint's findings, sorted, one per line.
func findings(t testing.TB, path string) (Errors, *Plan) {
	t.Helper()
	p, err := Load(path)
	var es Errors
	if err != nil && !errors.As(err, &es) {
		t.Fatalf("Load(%s): %v", path, err)
	}
	es = append(es, Lint(p)...)
	es.Sort()
	return es, p
}

var goldenLine = regexp.MustCompile(`^testdata/[^:]+:\d+:\d+: \S+: .+$`)

func TestBadPlansGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad plans: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			es, _ := findings(t, f)
			if !es.HasErrors() {
				t.Fatalf("%s: no errors; a bad plan must be refused", f)
			}
			got := es.Error() + "\n"
			for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
				if !goldenLine.MatchString(line) {
					t.Errorf("line lacks FILE:LINE:COL: PATH: %q", line)
				}
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./plans -run Golden -update)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (-update to accept)\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

// TestExamplesValidate checks every shipped example loads with no
// finding at all, not even a warning.
func TestExamplesValidate(t *testing.T) {
	files, _ := filepath.Glob("../examples/*.yaml")
	good, _ := filepath.Glob("testdata/good/*.yaml")
	files = append(files, good...)
	if len(files) < 2 {
		t.Fatalf("found only %d examples", len(files))
	}
	for _, f := range files {
		es, p := findings(t, f)
		for _, e := range es {
			t.Errorf("%v", e)
		}
		if p == nil || len(p.Hosts()) == 0 {
			t.Errorf("%s: no hosts", f)
		}
	}
}

// TestReadmePlanValidates keeps the README's example plan honest: it must
// load without errors (its one warning — a host powered off without backups
// — is the point of the example).
func TestReadmePlanValidates(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```yaml\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no ```yaml block")
	}
	p, err := Parse("README.md", []byte(block), Options{})
	if err != nil {
		t.Fatalf("README plan: %v", err)
	}
	var errs []string
	for _, e := range Lint(p) {
		if e.Severity != SevWarning {
			errs = append(errs, e.Error())
		}
	}
	if len(errs) > 0 || len(p.Hosts()) != 2 {
		t.Fatalf("README plan: %d hosts, errors: %v", len(p.Hosts()), errs)
	}
}
