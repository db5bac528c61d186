package integrity

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// LogDir is where logs live. Files in it are judged by how they changed
// (grew, rotated, rewritten), not by their hash.
const LogDir = "/var/log"

// isArchive reports a rotated log (name.1, name.2.gz, name-20260101.gz):
// rotation evidence, not a log that grows.
func isArchive(name string) bool {
	for _, ext := range []string{".gz", ".xz", ".bz2", ".zst", ".old"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	if i := strings.LastIndexAny(name, ".-"); i >= 0 && i+1 < len(name) {
		tail := name[i+1:]
		return strings.Trim(tail, "0123456789") == ""
	}
	return false
}

// logs records every log under /var/log and, for the baseline's logs
// given in Args.Logs, what became of their old content.
func (c *collection) logs(ctx context.Context) error {
	base := c.args.Logs
	err := filepath.WalkDir(c.path(LogDir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		host := c.hostPath(p)
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		l := Log{Size: fi.Size()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			l.Ino = st.Ino
		}
		old, had := base[host]
		var n int64 = -1
		if had && old.Size <= l.Size {
			n = old.Size
		}
		full, prefix, err := hashWithPrefix(p, n)
		if err != nil {
			return nil // gone or unreadable: shows as missing
		}
		l.SHA256 = full
		if had {
			switch {
			case prefix == old.SHA256:
				l.Prefix = "grew"
			default:
				if r := c.rotatedTo(p, old); r != "" {
					l.Prefix = "rotated:" + r
				} else {
					l.Prefix = "rewritten"
				}
			}
		}
		c.mu.Lock()
		c.st.Logs[host] = l
		c.mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	// The baseline's logs that are gone from their path: rotated away, or
	// removed.
	for p, old := range base {
		c.mu.Lock()
		_, there := c.st.Logs[p]
		c.mu.Unlock()
		if there {
			continue
		}
		l := Log{Gone: true, Prefix: "removed"}
		if r := c.rotatedTo(c.path(p), old); r != "" {
			l.Prefix = "rotated:" + r
		}
		c.mu.Lock()
		c.st.Logs[p] = l
		c.mu.Unlock()
	}
	return nil
}

// rotatedTo looks beside a log for the file its old content went to
// (name.1, name.1.gz, name-DATE, name-DATE.gz): the one whose start is the
// baseline's bytes. Compressed files are read through gzip.
func (c *collection) rotatedTo(p string, old Log) string {
	dir, name := filepath.Split(p)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return ""
	}
	var cands []string
	for _, e := range ents {
		n := e.Name()
		if n != name && (strings.HasPrefix(n, name+".") || strings.HasPrefix(n, name+"-")) && e.Type().IsRegular() {
			cands = append(cands, n)
		}
	}
	sort.Strings(cands)
	for _, n := range cands {
		if prefixMatches(filepath.Join(dir, n), old) {
			return c.hostPath(filepath.Join(dir, n))
		}
	}
	return ""
}

func prefixMatches(p string, old Log) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(p, ".gz") {
		z, err := gzip.NewReader(f)
		if err != nil {
			return false
		}
		defer z.Close()
		r = z
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, old.Size))
	if err != nil || n != old.Size {
		return false
	}
	return hex.EncodeToString(h.Sum(nil)) == old.SHA256
}

// hashWithPrefix hashes a whole file and, when n ≥ 0, its first n bytes,
// in one read.
func hashWithPrefix(p string, n int64) (full, prefix string, err error) {
	f, err := os.Open(p)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	h := sha256.New()
	if n >= 0 {
		ph := sha256.New()
		m, err := io.Copy(io.MultiWriter(h, ph), io.LimitReader(f, n))
		if err != nil {
			return "", "", err
		}
		if m == n {
			prefix = hex.EncodeToString(ph.Sum(nil))
		}
	}
	if _, err := io.Copy(h, f); err != nil && !errors.Is(err, io.EOF) {
		return "", "", err
	}
	return hex.EncodeToString(h.Sum(nil)), prefix, nil
}
