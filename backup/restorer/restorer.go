// Package restorer is the read side of a repository: walking a
// snapshot's trees (ls), writing one file's content to a stream (dump),
// and restoring a tree to disk with full metadata (owners, modes with
// setuid/setgid/sticky, ns times, symlinks, hardlinks, devices, fifos,
// xattrs), writing runs of zeros as holes.
//
// It must never import anything of holiday's above backup; it may import
// backup/repo, backup/backend and internal/....
package restorer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/holiday-ops/holiday/backup/crypto"
	"github.com/holiday-ops/holiday/backup/repo"
)

// Walk calls fn for every node under tree in depth-first order, with the
// node's slash-separated path relative to the snapshot root (starting
// with "/"). fn returning filepath.SkipDir skips a directory's contents.
func Walk(ctx context.Context, r *repo.Repository, tree repo.ID, fn func(p string, n *repo.Node) error) error {
	return walk(ctx, r, tree, "/", fn)
}

func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.Contains(name, "/") && !strings.Contains(name, "\x00")
}

func walk(ctx context.Context, r *repo.Repository, id repo.ID, dir string, fn func(string, *repo.Node) error) error {
	t, err := r.LoadTree(ctx, id)
	if err != nil {
		return fmt.Errorf("tree of %s: %w", dir, err)
	}
	for _, n := range t.Nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !validName(n.Name) {
			return fmt.Errorf("tree of %s holds an unsafe name %q", dir, n.Name)
		}
		p := path.Join(dir, n.Name)
		err := fn(p, n)
		if err == filepath.SkipDir {
			continue
		}
		if err != nil {
			return err
		}
		if n.Type == repo.NodeDir && n.Subtree != nil {
			if err := walk(ctx, r, *n.Subtree, p, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// FindNode returns the node at p ("/a/b") in a snapshot.
func FindNode(ctx context.Context, r *repo.Repository, tree repo.ID, p string) (*repo.Node, error) {
	parts := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	id := tree
	var n *repo.Node
	for i, part := range parts {
		if part == "" {
			return nil, fmt.Errorf("%s names the snapshot root, not a file", p)
		}
		t, err := r.LoadTree(ctx, id)
		if err != nil {
			return nil, err
		}
		n = t.Find(part)
		if n == nil {
			return nil, fmt.Errorf("%s: not in the snapshot", "/"+strings.Join(parts[:i+1], "/"))
		}
		if i < len(parts)-1 {
			if n.Type != repo.NodeDir || n.Subtree == nil {
				return nil, fmt.Errorf("%s: not a directory", "/"+strings.Join(parts[:i+1], "/"))
			}
			id = *n.Subtree
		}
	}
	return n, nil
}

// Dump writes a file node's content to w, blob by blob.
func Dump(ctx context.Context, r *repo.Repository, n *repo.Node, w io.Writer) error {
	if n.Type != repo.NodeFile {
		return fmt.Errorf("%s is a %s, not a file", n.Name, n.Type)
	}
	var buf []byte
	var written uint64
	for _, id := range n.Content {
		var err error
		buf, err = r.LoadBlob(ctx, repo.DataBlob, id, buf)
		if err != nil {
			return err
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		written += uint64(len(buf))
	}
	if written != n.Size {
		return fmt.Errorf("%s: content holds %d bytes, the node says %d", n.Name, written, n.Size)
	}
	return nil
}

// Options shape a restore.
type Options struct {
	Include []string // restore only these snapshot paths (and what is under them)
	Warn    func(path string, err error)
}

// Stats counts a restore's work.
type Stats struct {
	Files, Dirs, Others int64
	Bytes               int64
	Errors              int
}

func included(p string, include []string) (match, descend bool) {
	if len(include) == 0 {
		return true, true
	}
	for _, inc := range include {
		inc = path.Clean("/" + inc)
		if p == inc || strings.HasPrefix(p, inc+"/") {
			return true, true
		}
		if strings.HasPrefix(inc, p+"/") {
			descend = true
		}
	}
	return false, descend
}

type inodeKey struct{ dev, ino uint64 }

// Restore writes a snapshot's tree (or the included parts) under target.
// Files are restored by two workers; directories get their metadata last
// so that writing into them does not change their times.
func Restore(ctx context.Context, r *repo.Repository, tree repo.ID, target string, opts Options) (Stats, error) {
	var st Stats
	var mu sync.Mutex
	warn := func(p string, err error) {
		mu.Lock()
		st.Errors++
		mu.Unlock()
		if opts.Warn != nil {
			opts.Warn(p, err)
		}
	}
	if err := os.MkdirAll(target, 0o700); err != nil {
		return st, fmt.Errorf("restore target %s: %w", target, err)
	}
	type dirMeta struct {
		path string
		n    *repo.Node
	}
	var dirs []dirMeta
	type link struct{ path, first string }
	var links []link
	firsts := map[inodeKey]string{}

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	err := Walk(ctx, r, tree, func(p string, n *repo.Node) error {
		if err := gctx.Err(); err != nil {
			return err
		}
		match, descend := included(p, opts.Include)
		if !match {
			if n.Type == repo.NodeDir && descend {
				if err := os.MkdirAll(filepath.Join(target, p), 0o700); err != nil {
					return err
				}
				return nil
			}
			return filepath.SkipDir
		}
		dst := filepath.Join(target, filepath.FromSlash(p))
		switch n.Type {
		case repo.NodeDir:
			if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
				warn(p, err)
				return filepath.SkipDir
			}
			dirs = append(dirs, dirMeta{dst, n})
			st.Dirs++
		case repo.NodeFile:
			if n.Links > 1 && n.Inode != 0 {
				k := inodeKey{n.DeviceID, n.Inode}
				if first, ok := firsts[k]; ok {
					links = append(links, link{dst, first})
					return nil
				}
				firsts[k] = dst
			}
			st.Files++
			g.Go(func() error {
				nb, err := restoreFile(gctx, r, n, dst)
				mu.Lock()
				st.Bytes += nb
				mu.Unlock()
				if err != nil {
					if gctx.Err() != nil {
						return err
					}
					warn(p, err)
					return nil
				}
				if err := SetMeta(dst, n); err != nil {
					warn(p, err)
				}
				return nil
			})
		default:
			st.Others++
			if err := CreateSpecial(dst, n); err != nil {
				warn(p, err)
				return nil
			}
			if err := SetMeta(dst, n); err != nil {
				warn(p, err)
			}
		}
		return nil
	})
	if werr := g.Wait(); err == nil {
		err = werr
	}
	if err != nil {
		return st, err
	}
	for _, l := range links {
		if err := os.Link(l.first, l.path); err != nil {
			warn(l.path, err)
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := SetMeta(dirs[i].path, dirs[i].n); err != nil {
			warn(dirs[i].path, err)
		}
	}
	if st.Errors > 0 {
		return st, fmt.Errorf("%d entries could not be restored", st.Errors)
	}
	return st, nil
}

// AllZero reports whether b holds only zero bytes.
func AllZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// restoreFile writes content, skipping over all-zero blocks so they
// become holes, and sets the size at the end (a trailing hole). Blob
// sizes come from the index, so every blob's offset is known up front and
// several blobs are loaded, decrypted, verified and written at once; a
// blob seen to be all zeros is not loaded again.
func restoreFile(ctx context.Context, r *repo.Repository, n *repo.Node, dst string) (int64, error) {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	offs := make([]int64, len(n.Content))
	var off int64
	for i, id := range n.Content {
		pb, ok := r.Index().Lookup(repo.BlobHandle{ID: id, Type: repo.DataBlob})
		if !ok {
			return 0, fmt.Errorf("data blob %s is not in the index", id.Str())
		}
		offs[i] = off
		if pb.UncompressedLength > 0 {
			off += int64(pb.UncompressedLength)
		} else {
			off += int64(pb.Length) - crypto.Extension
		}
	}
	if uint64(off) != n.Size {
		return 0, fmt.Errorf("content holds %d bytes, the node says %d", off, n.Size)
	}
	var mu sync.Mutex
	zeros := map[repo.ID]bool{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(blobWorkers)
	for i, id := range n.Content {
		mu.Lock()
		z := zeros[id]
		mu.Unlock()
		if z {
			continue
		}
		g.Go(func() error {
			bp := blobBufs.Get().(*[]byte)
			defer blobBufs.Put(bp)
			buf, err := r.LoadBlob(gctx, repo.DataBlob, id, *bp)
			if err != nil {
				return err
			}
			*bp = buf[:0]
			if AllZero(buf) {
				mu.Lock()
				zeros[id] = true
				mu.Unlock()
				return nil
			}
			return WriteSparse(f, buf, offs[i])
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	if err := f.Truncate(off); err != nil {
		return off, err
	}
	return off, f.Close()
}

// blobWorkers is how many blobs of one file are restored at once.
const blobWorkers = 3

var blobBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1<<20); return &b }}

// holeBlock is the granularity at which zeros inside a blob become holes.
const holeBlock = 4096

// WriteSparse writes buf at off, skipping the filesystem blocks that are
// all zeros so that they stay holes. The caller sets the final size
// (Truncate) so that a trailing hole exists.
func WriteSparse(f *os.File, buf []byte, off int64) error {
	start := -1 // start of the pending non-zero run in buf
	i := 0
	for i < len(buf) {
		end := i + holeBlock - int((off+int64(i))%holeBlock)
		if end > len(buf) {
			end = len(buf)
		}
		if AllZero(buf[i:end]) {
			if start >= 0 {
				if _, err := f.WriteAt(buf[start:i], off+int64(start)); err != nil {
					return err
				}
				start = -1
			}
		} else if start < 0 {
			start = i
		}
		i = end
	}
	if start >= 0 {
		if _, err := f.WriteAt(buf[start:], off+int64(start)); err != nil {
			return err
		}
	}
	return nil
}

// CreateSpecial creates a node that is neither a file nor a directory
// (symlink, fifo, device) at dst, which must not exist. Its metadata is
// SetMeta's.
func CreateSpecial(dst string, n *repo.Node) error {
	return CreateSpecialAt(unix.AT_FDCWD, dst, n)
}

// CreateSpecialAt is CreateSpecial for name in the directory dirfd
// (unix.AT_FDCWD: name is a path).
func CreateSpecialAt(dirfd int, name string, n *repo.Node) error {
	switch n.Type {
	case repo.NodeSymlink:
		return unix.Symlinkat(n.LinkTarget, dirfd, name)
	case repo.NodeFifo:
		return unix.Mkfifoat(dirfd, name, 0o600)
	case repo.NodeDev:
		return unix.Mknodat(dirfd, name, unix.S_IFBLK|0o600, int(n.Device))
	case repo.NodeCharDev:
		return unix.Mknodat(dirfd, name, unix.S_IFCHR|0o600, int(n.Device))
	case repo.NodeSocket:
		return nil // a socket is recreated by its server, as restic does
	}
	return fmt.Errorf("unknown node type %q", n.Type)
}

// SetMeta restores owner, mode (after chown, which clears setuid), xattrs
// and times, never following a symlink. It is exact: xattrs dst holds
// that n does not are removed (a new file has none; a file put back in
// place may carry ones added since). The same code serves a local
// restore and the host side of `holiday rollback`.
func SetMeta(dst string, n *repo.Node) error {
	return SetMetaAt(unix.AT_FDCWD, dst, n)
}

// SetMetaAt is SetMeta for name in the directory dirfd (unix.AT_FDCWD:
// name is a path). Every change is made on name itself, never through a
// symlink: the mode and xattrs through a handle on the file opened
// without following one (a file that became a symlink is refused), owner
// and times with AT_SYMLINK_NOFOLLOW.
func SetMetaAt(dirfd int, name string, n *repo.Node) error {
	var errs []error
	if err := unix.Fchownat(dirfd, name, int(n.UID), int(n.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil && !errors.Is(err, syscall.EPERM) {
		errs = append(errs, &os.PathError{Op: "lchown", Path: name, Err: err})
	}
	if n.Type != repo.NodeSymlink {
		if err := onHandle(dirfd, name, func(p string) error {
			var errs []error
			if err := os.Chmod(p, n.Mode&(os.ModePerm|os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
				errs = append(errs, err)
			}
			if err := dropXattrs(p, n.ExtendedAttributes); err != nil {
				errs = append(errs, err)
			}
			for _, xa := range n.ExtendedAttributes {
				if err := unix.Setxattr(p, xa.Name, xa.Value, 0); err != nil {
					errs = append(errs, fmt.Errorf("xattr %s: %w", xa.Name, err))
				}
			}
			return errors.Join(errs...)
		}); err != nil {
			errs = append(errs, err)
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(n.AccessTime.UnixNano()), unix.NsecToTimespec(n.ModTime.UnixNano())}
	if err := unix.UtimesNanoAt(dirfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		errs = append(errs, &os.PathError{Op: "utimensat", Path: name, Err: err})
	}
	return errors.Join(errs...)
}

// onHandle runs fn on a path to name's own inode: name opened O_PATH
// without following a symlink, reached through /proc/self/fd (which
// chmod and the xattr calls follow to that inode, and only to it). A
// name that is a symlink is refused: what was a file or a directory when
// it was listed was swapped since, and what the link points to is not
// the rollback's to change.
func onHandle(dirfd int, name string, fn func(p string) error) error {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "stat", Path: name, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return fmt.Errorf("%s is a symbolic link now, not what was listed: it is not followed", name)
	}
	if err := fn(fmt.Sprintf("/proc/self/fd/%d", fd)); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// dropXattrs removes the xattrs of p (followed: a /proc/self/fd path)
// that keep does not name.
func dropXattrs(p string, keep []repo.ExtendedAttribute) error {
	size, err := unix.Listxattr(p, nil)
	if err != nil || size == 0 {
		return nil // no xattrs, or a filesystem without them
	}
	buf := make([]byte, size)
	if size, err = unix.Listxattr(p, buf); err != nil {
		return fmt.Errorf("list xattrs: %w", err)
	}
	var errs []error
outer:
	for _, name := range strings.Split(string(buf[:size]), "\x00") {
		if name == "" {
			continue
		}
		for _, xa := range keep {
			if xa.Name == name {
				continue outer
			}
		}
		if err := unix.Removexattr(p, name); err != nil {
			errs = append(errs, fmt.Errorf("remove xattr %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
