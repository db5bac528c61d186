// Package atomicfile writes whole files so that a crash or power cut leaves
// either the old file or the new one, never a mix, and so that the new one
// is on disk once the call returns: a temporary file in the same directory
// is written, fsynced, closed and renamed (or linked) into place, then the
// directory itself is fsynced, with every error checked. On failure the
// temporary file is removed.
//
// It is the one copy of this sequence in holiday; a hand-rolled
// temp-and-rename elsewhere is a bug (one such copy once forgot the
// directory fsync). Streams written in place of a file (the local backend's
// packs) and append-only files (the journal) fsync their directory with
// SyncDir.
//
// It imports nothing of holiday's.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ops are the file-system steps, replaced by the tests to fail each one.
var ops = struct {
	write   func(f *os.File, b []byte) (int, error)
	sync    func(f *os.File) error
	close   func(f *os.File) error
	rename  func(oldpath, newpath string) error
	link    func(oldpath, newpath string) error
	syncDir func(dir string) error
}{
	write:   (*os.File).Write,
	sync:    (*os.File).Sync,
	close:   (*os.File).Close,
	rename:  os.Rename,
	link:    os.Link,
	syncDir: SyncDir,
}

// Write replaces the file at path with data, mode perm (exactly: the
// umask does not apply). The directory must exist. When Write returns
// nil, the new content survives a crash; when it returns an error, path
// holds the old content or — only if the final directory fsync failed —
// the new content, not yet known to be durable.
func Write(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, ops.rename)
}

// WriteNew is Write for a file that must not exist yet: it never
// replaces one, and fails with an error matching fs.ErrExist when path
// exists (also when another writer got there first; its file is intact).
// The file system must support hard links.
func WriteNew(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, ops.link)
}

func write(path string, data []byte, perm os.FileMode, place func(tmp, path string) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	open := true
	defer func() {
		if err == nil {
			return
		}
		if open {
			f.Close()
		}
		os.Remove(tmp) // after a successful link, path keeps the data
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := ops.write(f, data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := ops.sync(f); err != nil {
		return fmt.Errorf("writing %s: fsync: %w", path, err)
	}
	open = false
	if err := ops.close(f); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := place(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	// After a link the temporary name is left over; after a rename it is
	// gone already.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := ops.syncDir(dir); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// SyncDir fsyncs the directory dir, so that the names created, renamed or
// removed in it survive a crash. A file system that cannot fsync a
// directory at all (EINVAL, ENOTSUP) is not an error: there is nothing
// more to do on it.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync directory: %w", err)
	}
	err = d.Sync()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		err = nil
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
