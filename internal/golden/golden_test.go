package golden

import (
	"os"
	"path/filepath"
	"testing"
)

// recorder is a testing.TB that keeps failures instead of failing the
// test that holds it.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true; panic(r) }
func (r *recorder) Fatal(...any)          { r.failed = true; panic(r) }

func check(path string, got []byte) (failed bool) {
	r := &recorder{}
	defer func() {
		if p := recover(); p != nil && p != r {
			panic(p)
		}
		failed = r.failed
	}()
	Check(r, path, got)
	return
}

func TestCheck(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "out.golden")
	if !check(p, []byte("x\n")) {
		t.Error("a missing golden file passed")
	}
	*update = true
	if check(p, []byte("x\n")) {
		t.Error("-update failed")
	}
	*update = false
	if b, err := os.ReadFile(p); err != nil || string(b) != "x\n" {
		t.Errorf("-update wrote %q, %v", b, err)
	}
	if check(p, []byte("x\n")) {
		t.Error("the same output failed")
	}
	if !check(p, []byte("y\n")) {
		t.Error("other output passed")
	}
}
