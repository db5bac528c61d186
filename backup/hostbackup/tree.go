package hostbackup

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/holiday-ops/holiday/backup/repo"
)

// builder collects the entries of a walk by path and turns them into
// restic trees once every file's content is known.
type builder struct {
	root *dirNode
	dirs map[string]*dirNode
}

type dirNode struct {
	node     *repo.Node // nil for the root
	children map[string]*repo.Node
	subdirs  map[string]*dirNode
}

func newBuilder() *builder {
	root := &dirNode{children: map[string]*repo.Node{}, subdirs: map[string]*dirNode{}}
	return &builder{root: root, dirs: map[string]*dirNode{"/": root}}
}

// add places n at the absolute path p; its folder must have been added
// before (the walk sends folders before what they hold).
func (b *builder) add(p string, n *repo.Node) error {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
		return fmt.Errorf("bad path %q", p)
	}
	dir, name := path.Split(p)
	dir = path.Clean(dir)
	if name != n.Name || strings.Contains(name, "/") {
		return fmt.Errorf("path %q does not end in the node's name %q", p, n.Name)
	}
	d := b.dirs[dir]
	if d == nil {
		return fmt.Errorf("%s comes before its folder %s", p, dir)
	}
	if _, dup := d.children[name]; dup {
		return fmt.Errorf("%s sent twice", p)
	}
	d.children[name] = n
	if n.Type == repo.NodeDir {
		sub := &dirNode{node: n, children: map[string]*repo.Node{}, subdirs: map[string]*dirNode{}}
		d.subdirs[name] = sub
		b.dirs[p] = sub
	}
	return nil
}

// remove drops the node at p (a file that vanished before it was read).
func (b *builder) remove(p string) {
	dir, name := path.Split(p)
	if d := b.dirs[path.Clean(dir)]; d != nil {
		delete(d.children, name)
	}
}

// treeSaver stores a tree and returns its ID.
type treeSaver interface {
	SaveTree(ctx context.Context, t *repo.Tree) (repo.ID, error)
}

// save stores the trees bottom-up and returns the root's ID.
func (b *builder) save(ctx context.Context, s treeSaver) (repo.ID, error) {
	return saveDir(ctx, s, b.root)
}

func saveDir(ctx context.Context, s treeSaver, d *dirNode) (repo.ID, error) {
	t := &repo.Tree{Nodes: make([]*repo.Node, 0, len(d.children))}
	for name, n := range d.children {
		if sub := d.subdirs[name]; sub != nil {
			id, err := saveDir(ctx, s, sub)
			if err != nil {
				return repo.ID{}, err
			}
			n.Subtree = &id
			n.Content = nil
		} else if n.Type == repo.NodeFile && n.Content == nil {
			n.Content = []repo.ID{}
		}
		if err := t.Insert(n); err != nil {
			return repo.ID{}, err
		}
	}
	return s.SaveTree(ctx, t)
}

// parentTrees finds nodes of the parent snapshot by path, loading each
// of its trees once.
type parentTrees struct {
	load  func(ctx context.Context, id repo.ID) (*repo.Tree, error)
	root  *repo.ID
	trees map[string]*repo.Tree // folder path → its tree (nil: none)
}

// find returns the parent's node at p, or nil.
func (pt *parentTrees) find(ctx context.Context, p string) *repo.Node {
	if pt == nil || pt.root == nil {
		return nil
	}
	dir, name := path.Split(p)
	t := pt.tree(ctx, path.Clean(dir))
	return t.Find(name)
}

func (pt *parentTrees) tree(ctx context.Context, dir string) *repo.Tree {
	if t, ok := pt.trees[dir]; ok {
		return t
	}
	var t *repo.Tree
	if dir == "/" {
		t, _ = pt.load(ctx, *pt.root)
	} else {
		up, name := path.Split(dir)
		if n := pt.tree(ctx, path.Clean(up)).Find(name); n != nil && n.Type == repo.NodeDir && n.Subtree != nil {
			t, _ = pt.load(ctx, *n.Subtree)
		}
	}
	pt.trees[dir] = t
	return t
}

// unchanged is restic's rule for not reading a file again: the same
// type, size, mtime, ctime and inode as in the parent.
func unchanged(p, n *repo.Node) bool {
	return p != nil && p.Type == repo.NodeFile && n.Type == repo.NodeFile && p.Size == n.Size &&
		p.ModTime.Equal(n.ModTime) && p.ChangeTime.Equal(n.ChangeTime) && p.Inode == n.Inode
}
