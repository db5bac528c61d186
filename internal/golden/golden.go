// Package golden compares a test's output with a golden file and, under
// `go test -update`, rewrites the file with the output instead. It
// registers the -update flag, so it is for tests only, and a test package
// that imports it must not define its own. It imports nothing of
// holiday's.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files with the current output")

// Check compares got with the file at path (relative to the test's
// package directory, usually under testdata/). With -update it writes
// got there, creating the directory, and passes.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it after a deliberate change)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
