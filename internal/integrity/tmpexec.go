package integrity

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
)

// TmpDirs are the world-writable drop points. Files in them that are not
// executables are churn and not recorded; executables are.
var TmpDirs = []string{"/tmp", "/var/tmp", "/dev/shm"}

// maxTmpEntries bounds the walk of one tmp directory: a host with a
// million session files must not stall the check.
const maxTmpEntries = 50000

// tmpExecs records the executables (any x bit, or ELF or #! magic) in the
// tmp directories.
func (c *collection) tmpExecs(ctx context.Context) error {
	c.st.TmpExecs = map[string]File{}
	for _, d := range TmpDirs {
		n := 0
		filepath.WalkDir(c.path(d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if n++; n > maxTmpEntries {
				return filepath.SkipAll
			}
			if !e.Type().IsRegular() {
				return nil
			}
			fi, err := e.Info()
			if err != nil {
				return nil
			}
			if fi.Mode()&0o111 == 0 && !execMagic(p) {
				return nil
			}
			sum, _, err := hashFile(p, false)
			if err != nil {
				sum = "unreadable: " + err.Error()
			}
			c.st.TmpExecs[c.hostPath(p)] = File{Mode: fi.Mode(), Size: fi.Size(), MTime: fi.ModTime().UTC(), SHA256: sum}
			return nil
		})
	}
	return nil
}

func execMagic(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 4)
	n, _ := f.Read(b)
	b = b[:n]
	return bytes.HasPrefix(b, []byte("\x7fELF")) || bytes.HasPrefix(b, []byte("#!"))
}
