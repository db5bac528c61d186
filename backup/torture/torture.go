// Package torture generates the torture corpus that the interop tests back
// up and restore with holiday and with stock restic, and the manifest that
// decides whether two trees are equal: per entry the type, Go mode bits,
// uid/gid, mtime in ns, size and SHA-256, link target, device number,
// user.* xattrs and hardlink group.
//
// It is test support; it must never import anything of holiday's above
// backup.
package torture

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Options choose what to generate.
type Options struct {
	SparseSize int64 // size of the sparse file (0: none); the issue asks for 1 GiB
}

// Generate writes the corpus into dir (which must exist and be empty).
// Entries that need root (devices, foreign owners) are made only as root.
// It returns what it could not make (as root: nothing).
func Generate(dir string, opts Options) (skipped []string, err error) {
	root := os.Geteuid() == 0
	rng := rand.New(rand.NewPCG(1, 2))
	p := func(rel string) string { return filepath.Join(dir, rel) }
	mk := func(rel string, data []byte, mode os.FileMode) error {
		return os.WriteFile(p(rel), data, mode)
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"dirs", func() error {
			for _, d := range []string{"a", "b", "a/deep/er/still", "empty-dir", "sticky", "names"} {
				if err := os.MkdirAll(p(d), 0o755); err != nil {
					return err
				}
			}
			return os.Chmod(p("sticky"), 0o777|fs.ModeSticky)
		}},
		{"names", func() error {
			names := []string{`back\slash`, `double"quote`, "new\nline", "bad-utf8-\xff\xfe", "tab\there", "unicode-ünï-😀",
				strings.Repeat("n", 255), "-starts-with-dash", " space ", "<html>&amp;"}
			for i, n := range names {
				if err := mk(filepath.Join("names", n), []byte(fmt.Sprintf("name %d\n", i)), 0o644); err != nil {
					return fmt.Errorf("%q: %w", n, err)
				}
			}
			return nil
		}},
		{"sizes", func() error {
			if err := mk("empty-file", nil, 0o644); err != nil {
				return err
			}
			if err := mk("a/eight-mib-plus-one", random(8<<20+1), 0o640); err != nil {
				return err
			}
			if err := mk("a/deep/er/still/small", random(1000), 0o600); err != nil {
				return err
			}
			// 3 MiB of text-like data that compresses well
			txt := []byte(strings.Repeat("the quick brown fox jumps over the lazy dog\n", 3<<20/44))
			return mk("b/text", txt, 0o644)
		}},
		{"modes", func() error {
			for _, x := range []struct {
				n string
				m fs.FileMode
			}{{"setuid", 0o755 | fs.ModeSetuid}, {"setgid", 0o755 | fs.ModeSetgid}, {"all-bits", 0o777 | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky}, {"no-perms", 0}} {
				if err := mk(x.n, []byte(x.n), 0o600); err != nil {
					return err
				}
				if err := os.Chmod(p(x.n), x.m); err != nil {
					return err
				}
			}
			return nil
		}},
		{"hardlinks", func() error {
			if err := mk("a/hard1", []byte("linked content\n"), 0o644); err != nil {
				return err
			}
			if err := os.Link(p("a/hard1"), p("b/hard2")); err != nil {
				return err
			}
			return os.Link(p("a/hard1"), p("a/deep/hard3"))
		}},
		{"symlinks", func() error {
			for _, x := range [][2]string{{"dangling", "does/not/exist"}, {"absolute", "/etc/hostname"}, {"relative", "a/hard1"}, {"to-dir", "a"}, {"b/up", "../names"}} {
				if err := os.Symlink(x[1], p(x[0])); err != nil {
					return err
				}
			}
			return nil
		}},
		{"fifo", func() error { return unix.Mkfifo(p("fifo"), 0o640) }},
		{"devices", func() error {
			if !root {
				skipped = append(skipped, "char and block devices (need root)")
				return nil
			}
			if err := unix.Mknod(p("chardev"), unix.S_IFCHR|0o620, int(unix.Mkdev(1, 3))); err != nil {
				return err
			}
			return unix.Mknod(p("blockdev"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 200)))
		}},
		{"xattrs", func() error {
			for _, x := range []struct{ f, n, v string }{{"b/text", "user.holiday", "yes"}, {"a", "user.dir-attr", "on a dir"}, {"empty-file", "user.bin", "\x00\x01\xff"}} {
				if err := unix.Lsetxattr(p(x.f), x.n, []byte(x.v), 0); err != nil {
					return fmt.Errorf("%s: %w (does the filesystem support user xattrs?)", x.f, err)
				}
			}
			return nil
		}},
		{"sparse", func() error {
			if opts.SparseSize == 0 {
				return nil
			}
			f, err := os.Create(p("sparse"))
			if err != nil {
				return err
			}
			defer f.Close()
			for _, off := range []int64{0, opts.SparseSize / 3, opts.SparseSize/2 + 12345} {
				if _, err := f.WriteAt(random(4096), off); err != nil {
					return err
				}
			}
			if err := f.Truncate(opts.SparseSize); err != nil {
				return err
			}
			return f.Close()
		}},
		{"owners", func() error {
			if !root {
				skipped = append(skipped, "foreign owners (need root)")
				return nil
			}
			for _, x := range []struct {
				f        string
				uid, gid int
			}{{"b/text", 1234, 5678}, {"a/deep", 4321, 0}, {"dangling", 777, 888}, {"setgid", 0, 1234}} {
				if err := os.Lchown(p(x.f), x.uid, x.gid); err != nil {
					return err
				}
			}
			// chown clears setgid; put it back
			return os.Chmod(p("setgid"), 0o755|fs.ModeSetgid)
		}},
		{"times", func() error {
			// distinct ns times on everything, deepest first so that
			// setting a child does not move its parent's mtime
			var paths []string
			_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err == nil && path != dir {
					paths = append(paths, path)
				}
				return nil
			})
			sort.Sort(sort.Reverse(sort.StringSlice(paths)))
			base := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC).UnixNano()
			for i, path := range paths {
				ns := base + int64(i)*1_000_000_123
				ts := []unix.Timespec{unix.NsecToTimespec(ns + 1), unix.NsecToTimespec(ns)}
				if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
			}
			return nil
		}},
	}
	for _, s := range steps {
		if err := s.fn(); err != nil {
			return skipped, fmt.Errorf("torture corpus, %s: %w", s.name, err)
		}
	}
	return skipped, nil
}

// Entry is one manifest line.
type Entry struct {
	Type     string
	Mode     fs.FileMode
	UID, GID uint32
	MtimeNS  int64 // not for symlinks when Options say so
	Size     int64
	SHA256   string
	Link     string
	Rdev     uint64
	Xattrs   string // sorted user.* name=hex pairs
	HardLink string // for nlink > 1: the first path of the group
}

// Manifest describes the tree under dir, keyed by slash paths relative to
// dir ("" is dir itself, left out).
func Manifest(dir string) (map[string]Entry, error) {
	out := map[string]Entry{}
	groups := map[[2]uint64]string{}
	var paths []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	for _, path := range paths {
		rel, _ := filepath.Rel(dir, path)
		fi, err := os.Lstat(path)
		if err != nil {
			return nil, err
		}
		st := fi.Sys().(*syscall.Stat_t)
		e := Entry{Type: fi.Mode().Type().String(), Mode: fi.Mode() & (fs.ModePerm | fs.ModeType | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky),
			UID: st.Uid, GID: st.Gid, MtimeNS: st.Mtim.Nano()}
		switch {
		case fi.Mode().IsRegular():
			e.Size = fi.Size()
			h := sha256.New()
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return nil, err
			}
			e.SHA256 = hex.EncodeToString(h.Sum(nil))
			if st.Nlink > 1 {
				k := [2]uint64{st.Dev, st.Ino}
				if first, ok := groups[k]; ok {
					e.HardLink = first
				} else {
					groups[k] = rel
					e.HardLink = rel
				}
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Link, _ = os.Readlink(path)
		case fi.Mode()&fs.ModeDevice != 0:
			e.Rdev = st.Rdev
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			e.Xattrs = userXattrs(path)
		}
		out[filepath.ToSlash(rel)] = e
	}
	return out, nil
}

func userXattrs(path string) string {
	sz, err := unix.Llistxattr(path, nil)
	if err != nil || sz == 0 {
		return ""
	}
	buf := make([]byte, sz)
	sz, _ = unix.Llistxattr(path, buf)
	var pairs []string
	for _, n := range strings.Split(string(buf[:sz]), "\x00") {
		if !strings.HasPrefix(n, "user.") {
			continue
		}
		v := make([]byte, 4096)
		vn, err := unix.Lgetxattr(path, n, v)
		if err != nil {
			continue
		}
		pairs = append(pairs, n+"="+hex.EncodeToString(v[:vn]))
	}
	sort.Strings(pairs)
	return strings.Join(pairs, ",")
}

// Diff lists the differences between two manifests, empty when equal.
func Diff(want, got map[string]Entry) []string {
	var out []string
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			out = append(out, fmt.Sprintf("%q: missing", p))
			continue
		}
		if w != g {
			out = append(out, fmt.Sprintf("%q:\n   want %+v\n   got  %+v", p, w, g))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			out = append(out, fmt.Sprintf("%q: unexpected", p))
		}
	}
	sort.Strings(out)
	return out
}
