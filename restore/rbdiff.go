package restore

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/holiday-ops/holiday/backup/repo"
)

// Item is one node at its absolute path: a snapshot's (what the host
// should hold) or the host's (what it holds now).
type Item struct {
	Path string     `json:"path"`
	Node *repo.Node `json:"node"`
}

// Change operations, in the order a host applies them.
const (
	OpRemove  = "remove"  // on the host, not in the snapshot: removed (with what is under it)
	OpReplace = "replace" // another type on the host: removed, then created
	OpCreate  = "create"  // in the snapshot, missing on the host
	OpWrite   = "write"   // a file whose content differs: written anew
	OpLink    = "link"    // a hard link the host lost: linked again
	OpMeta    = "meta"    // same content, other owner, mode, times or xattrs
)

// Change is one thing a rollback does to one path.
type Change struct {
	Path   string `json:"path"`
	Op     string `json:"op"`
	Why    string `json:"why,omitempty"` // what differs, for the operator
	LinkTo string `json:"link_to,omitempty"`
	Size   uint64 `json:"size,omitempty"` // bytes to write
}

// Roots are the paths a rollback restores: those asked for, else the
// snapshot's own paths (never "/": that would remove everything the
// snapshot did not hold). Each must be absolute, and one under another
// is dropped.
func Roots(asked, snapshotPaths []string) ([]string, error) {
	src := asked
	if len(src) == 0 {
		src = snapshotPaths
	}
	if len(src) == 0 {
		return nil, fmt.Errorf("the snapshot names no paths: give --path")
	}
	var out []string
	for _, p := range src {
		if !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("--path %s: not an absolute path", p)
		}
		c := path.Clean(p)
		if c == "/" {
			return nil, fmt.Errorf("--path %s: refusing to roll back the whole root; name the directories", p)
		}
		out = append(out, c)
	}
	sort.Strings(out)
	var kept []string
	for _, p := range out {
		if len(kept) > 0 && under(p, kept[len(kept)-1]) {
			continue
		}
		kept = append(kept, p)
	}
	return kept, nil
}

// under reports whether p is root or below it.
func under(p, root string) bool {
	return p == root || strings.HasPrefix(p, root+"/")
}

// underAny reports whether p is one of roots or below one.
func underAny(p string, roots []string) bool {
	for _, r := range roots {
		if under(p, r) {
			return true
		}
	}
	return false
}

type inodeKey struct{ dev, ino uint64 }

// Diff is what makes the host's items (under roots) exactly the
// snapshot's: removals first (top-most only; what is below goes with
// them), then creations, writes, links and metadata in the snapshot's
// order. Access times are not compared: reading a file moves them.
func Diff(want, have []Item) []Change {
	haveBy := make(map[string]*repo.Node, len(have))
	for _, it := range have {
		haveBy[it.Path] = it.Node
	}
	wantBy := make(map[string]bool, len(want))
	for _, it := range want {
		wantBy[it.Path] = true
	}

	var out []Change
	// Extras: on the host, not in the snapshot.
	var removed []string
	hs := append([]Item(nil), have...)
	sort.Slice(hs, func(i, j int) bool { return hs[i].Path < hs[j].Path })
	for _, it := range hs {
		if wantBy[it.Path] {
			continue
		}
		if len(removed) > 0 && under(it.Path, removed[len(removed)-1]) {
			continue
		}
		removed = append(removed, it.Path)
		out = append(out, Change{Path: it.Path, Op: OpRemove, Why: typeWord(it.Node) + " not in the snapshot"})
	}

	// Hard links: the first path of each inode group in the snapshot,
	// and the host's inode at that path.
	firstOf := map[inodeKey]string{}
	for _, it := range want {
		n := it.Node
		if n.Type != repo.NodeFile || n.Links < 2 || n.Inode == 0 {
			continue
		}
		if k := (inodeKey{n.DeviceID, n.Inode}); firstOf[k] == "" {
			firstOf[k] = it.Path
		}
	}
	rewritten := map[string]bool{}
	for _, it := range want {
		w := it.Node
		h := haveBy[it.Path]
		if w.Type == repo.NodeFile && w.Links > 1 && w.Inode != 0 {
			first := firstOf[inodeKey{w.DeviceID, w.Inode}]
			if first != it.Path {
				hf := haveBy[first]
				if h == nil || hf == nil || h.Type != repo.NodeFile || rewritten[first] || h.Inode != hf.Inode || h.DeviceID != hf.DeviceID {
					out = append(out, Change{Path: it.Path, Op: OpLink, LinkTo: first, Why: "hard link to " + first})
				}
				continue
			}
		}
		switch {
		case h == nil:
			out = append(out, Change{Path: it.Path, Op: OpCreate, Why: typeWord(w) + " missing", Size: fileSize(w)})
			rewritten[it.Path] = true
		case h.Type != w.Type:
			out = append(out, Change{Path: it.Path, Op: OpReplace, Why: typeWord(h) + " where the snapshot has a " + typeWord(w), Size: fileSize(w)})
			rewritten[it.Path] = true
		case w.Type == repo.NodeFile && h.Links != w.Links && (h.Links > 1 || w.Links > 1):
			// The host's inode is shared with other names (or not shared
			// as it was): setting its metadata would change theirs too.
			out = append(out, Change{Path: it.Path, Op: OpWrite, Why: fmt.Sprintf("%d hard links, the snapshot's %d", h.Links, w.Links), Size: w.Size})
			rewritten[it.Path] = true
		case w.Type == repo.NodeFile && !sameContent(w, h):
			out = append(out, Change{Path: it.Path, Op: OpWrite, Why: contentWhy(w, h), Size: w.Size})
			rewritten[it.Path] = true
		case w.Type == repo.NodeSymlink && w.LinkTarget != h.LinkTarget,
			(w.Type == repo.NodeDev || w.Type == repo.NodeCharDev) && w.Device != h.Device:
			why := "another device number"
			if w.Type == repo.NodeSymlink {
				why = fmt.Sprintf("points to %s, the snapshot's to %s", h.LinkTarget, w.LinkTarget)
			}
			out = append(out, Change{Path: it.Path, Op: OpReplace, Why: why})
			rewritten[it.Path] = true
		default:
			if why := metaDiff(w, h); why != "" {
				out = append(out, Change{Path: it.Path, Op: OpMeta, Why: why})
			}
		}
	}
	return out
}

func fileSize(n *repo.Node) uint64 {
	if n.Type == repo.NodeFile {
		return n.Size
	}
	return 0
}

func typeWord(n *repo.Node) string {
	switch n.Type {
	case repo.NodeDir:
		return "directory"
	case repo.NodeCharDev:
		return "char device"
	case repo.NodeDev:
		return "block device"
	}
	return n.Type
}

func sameContent(w, h *repo.Node) bool {
	if w.Size != h.Size || len(w.Content) != len(h.Content) {
		return false
	}
	for i := range w.Content {
		if w.Content[i] != h.Content[i] {
			return false
		}
	}
	return true
}

func contentWhy(w, h *repo.Node) string {
	if w.Size != h.Size {
		return fmt.Sprintf("content (%d bytes, the snapshot's %d)", h.Size, w.Size)
	}
	return "content"
}

// permBits are the mode bits a rollback restores (type bits are the
// node's type).
const permBits = os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky

// metaDiff names what differs in owner, mode, mtime and xattrs; "" if
// nothing does.
func metaDiff(w, h *repo.Node) string {
	var d []string
	if w.UID != h.UID || w.GID != h.GID {
		d = append(d, fmt.Sprintf("owner %d:%d (snapshot %d:%d)", h.UID, h.GID, w.UID, w.GID))
	}
	if w.Type != repo.NodeSymlink && w.Mode&permBits != h.Mode&permBits {
		d = append(d, fmt.Sprintf("mode %v (snapshot %v)", h.Mode&permBits, w.Mode&permBits))
	}
	if !w.ModTime.Equal(h.ModTime) {
		d = append(d, "mtime")
	}
	if w.Type != repo.NodeSymlink && !sameXattrs(w.ExtendedAttributes, h.ExtendedAttributes) {
		d = append(d, "xattrs")
	}
	return strings.Join(d, ", ")
}

func sameXattrs(a, b []repo.ExtendedAttribute) bool {
	if len(a) != len(b) {
		return false
	}
	m := make(map[string][]byte, len(a))
	for _, x := range a {
		m[x.Name] = x.Value
	}
	for _, x := range b {
		v, ok := m[x.Name]
		if !ok || !bytes.Equal(v, x.Value) {
			return false
		}
	}
	return true
}

// Summary counts a list of changes.
type Summary struct {
	Written int    `json:"written"` // created, replaced, rewritten or linked
	Meta    int    `json:"meta"`    // metadata only
	Removed int    `json:"removed"` // top-most paths removed
	Bytes   uint64 `json:"bytes"`   // content bytes to write
}

// Summarize counts changes.
func Summarize(cs []Change) Summary {
	var s Summary
	for _, c := range cs {
		switch c.Op {
		case OpRemove:
			s.Removed++
		case OpMeta:
			s.Meta++
		default:
			s.Written++
		}
		s.Bytes += c.Size
	}
	return s
}

// RenderChanges prints a rollback's changes, one line each, and the
// counts: the dry run's output and the record of a real one.
func RenderChanges(w io.Writer, host, snapshot string, roots []string, cs []Change) {
	fmt.Fprintf(w, "%s: roll back %s from snapshot %s\n", host, strings.Join(roots, " "), snapshot)
	if len(cs) == 0 {
		fmt.Fprintln(w, "  nothing differs: the host already holds the snapshot's state")
		return
	}
	for _, c := range cs {
		fmt.Fprintf(w, "  %-7s %s", c.Op, c.Path)
		if c.Why != "" {
			fmt.Fprintf(w, "  (%s)", c.Why)
		}
		fmt.Fprintln(w)
	}
	s := Summarize(cs)
	fmt.Fprintf(w, "  %d written (%s), %d metadata only, %d removed", s.Written, humanBytes(s.Bytes), s.Meta, s.Removed)
	if s.Removed > 0 {
		fmt.Fprint(w, ": files added after the snapshot under a restored directory are removed")
	}
	fmt.Fprintln(w)
}

func humanBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
