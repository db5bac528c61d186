package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var errInjected = errors.New("injected failure")

func TestWrite(t *testing.T) {
	old := []byte("old content\n")
	for _, tc := range []struct {
		name     string
		new      bool   // WriteNew instead of Write
		existing bool   // path holds old before the call
		fail     string // the step in ops that fails, if any
		perm     os.FileMode
		wantErr  error  // errors.Is target; errInjected for an injected failure
		want     []byte // path's content afterwards; nil: absent
	}{
		{name: "create", perm: 0o600, want: []byte("new")},
		{name: "replace", existing: true, perm: 0o600, want: []byte("new")},
		{name: "mode is exact, umask does not apply", perm: 0o666, want: []byte("new")},
		{name: "new: create", new: true, perm: 0o640, want: []byte("new")},
		{name: "new: never replaces", new: true, existing: true, perm: 0o600, wantErr: fs.ErrExist, want: old},

		{name: "write fails, old kept", existing: true, fail: "write", perm: 0o600, wantErr: errInjected, want: old},
		{name: "fsync fails, old kept", existing: true, fail: "sync", perm: 0o600, wantErr: errInjected, want: old},
		{name: "close fails, old kept", existing: true, fail: "close", perm: 0o600, wantErr: errInjected, want: old},
		{name: "rename fails, old kept", existing: true, fail: "rename", perm: 0o600, wantErr: errInjected, want: old},
		{name: "rename fails, nothing created", fail: "rename", perm: 0o600, wantErr: errInjected},
		{name: "new: link fails, nothing created", new: true, fail: "link", perm: 0o600, wantErr: errInjected},
		{name: "new: fsync fails, nothing created", new: true, fail: "sync", perm: 0o600, wantErr: errInjected},
		// The data is in place but not known durable: the caller hears of it.
		{name: "directory fsync fails", existing: true, fail: "syncDir", perm: 0o600, wantErr: errInjected, want: []byte("new")},
		{name: "new: directory fsync fails", new: true, fail: "syncDir", perm: 0o600, wantErr: errInjected, want: []byte("new")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "state.json")
			if tc.existing {
				if err := os.WriteFile(path, old, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			inject(t, tc.fail)
			var err error
			if tc.new {
				err = WriteNew(path, []byte("new"), tc.perm)
			} else {
				err = Write(path, []byte("new"), tc.perm)
			}
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			case err != nil && !strings.Contains(err.Error(), path):
				t.Errorf("error %q does not name %s", err, path)
			}
			got, rerr := os.ReadFile(path)
			switch {
			case tc.want == nil && !errors.Is(rerr, fs.ErrNotExist):
				t.Errorf("%s exists (%q, %v), want it absent", path, got, rerr)
			case tc.want != nil && string(got) != string(tc.want):
				t.Errorf("%s holds %q (%v), want %q", path, got, rerr, tc.want)
			}
			if tc.want != nil && string(tc.want) == "new" {
				if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != tc.perm {
					t.Errorf("mode %v (%v), want %v", fi.Mode().Perm(), err, tc.perm)
				}
			}
			if tc.want == nil {
				assertOnly(t, dir)
			} else {
				assertOnly(t, dir, "state.json")
			}
		})
	}
}

// TestWriteRealFailures fails without injection: the directory is
// missing, or path is a directory that rename cannot replace.
func TestWriteRealFailures(t *testing.T) {
	t.Run("no directory", func(t *testing.T) {
		dir := t.TempDir()
		for _, f := range []func(string, []byte, os.FileMode) error{Write, WriteNew} {
			if err := f(filepath.Join(dir, "missing", "x"), []byte("x"), 0o600); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %v, want ErrNotExist", err)
			}
		}
		assertOnly(t, dir)
	})
	t.Run("path is a directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "x", "sub"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := Write(filepath.Join(dir, "x"), []byte("x"), 0o600); err == nil {
			t.Fatal("Write replaced a directory")
		}
		if err := WriteNew(filepath.Join(dir, "x"), []byte("x"), 0o600); !errors.Is(err, fs.ErrExist) {
			t.Errorf("WriteNew: %v, want ErrExist", err)
		}
		assertOnly(t, dir, "x")
	})
	t.Run("relative path", func(t *testing.T) {
		t.Chdir(t.TempDir())
		if err := Write("rel", []byte("r"), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile("rel"); err != nil || string(b) != "r" {
			t.Fatalf("%q %v", b, err)
		}
		assertOnly(t, ".", "rel")
	})
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Errorf("SyncDir of a directory: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	if err := SyncDir(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("SyncDir of a missing directory: %v", err)
	}
}

// inject makes the step of ops called step fail for the rest of the test.
func inject(t *testing.T, step string) {
	if step == "" {
		return
	}
	saved := ops
	t.Cleanup(func() { ops = saved })
	switch step {
	case "write":
		ops.write = func(*os.File, []byte) (int, error) { return 0, errInjected }
	case "sync":
		ops.sync = func(*os.File) error { return errInjected }
	case "close":
		// The file really closes (no descriptor leaks), and the close reports an error.
		ops.close = func(f *os.File) error { f.Close(); return errInjected }
	case "rename":
		ops.rename = func(string, string) error { return &os.LinkError{Op: "rename", Err: errInjected} }
	case "link":
		ops.link = func(string, string) error { return &os.LinkError{Op: "link", Err: errInjected} }
	case "syncDir":
		ops.syncDir = func(string) error { return errInjected }
	default:
		t.Fatalf("no step %q", step)
	}
}

// assertOnly checks that dir holds exactly names: no temporary file left.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %q, want %q (a temporary file left behind?)", dir, got, names)
	}
}
