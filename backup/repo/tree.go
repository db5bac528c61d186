package repo

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Node types as restic names them.
const (
	NodeFile    = "file"
	NodeDir     = "dir"
	NodeSymlink = "symlink"
	NodeDev     = "dev"
	NodeCharDev = "chardev"
	NodeFifo    = "fifo"
	NodeSocket  = "socket"
)

// ExtendedAttribute is one xattr.
type ExtendedAttribute struct {
	Name  string `json:"name"`
	Value []byte `json:"value"`
}

// Node is one entry of a tree, with restic's field names. Mode holds Go
// os.FileMode bits (type bits, permissions, setuid/setgid/sticky), not
// st_mode. Device is st_rdev of device nodes; DeviceID is st_dev.
type Node struct {
	Name               string              `json:"name"`
	Type               string              `json:"type"`
	Mode               os.FileMode         `json:"mode,omitempty"`
	ModTime            time.Time           `json:"mtime"`
	AccessTime         time.Time           `json:"atime"`
	ChangeTime         time.Time           `json:"ctime"`
	UID                uint32              `json:"uid"`
	GID                uint32              `json:"gid"`
	User               string              `json:"user,omitempty"`
	Group              string              `json:"group,omitempty"`
	Inode              uint64              `json:"inode,omitempty"`
	DeviceID           uint64              `json:"device_id,omitempty"`
	Size               uint64              `json:"size,omitempty"`
	Links              uint64              `json:"links,omitempty"`
	LinkTarget         string              `json:"linktarget,omitempty"`
	LinkTargetRaw      []byte              `json:"linktarget_raw,omitempty"`
	ExtendedAttributes []ExtendedAttribute `json:"extended_attributes,omitempty"`
	Device             uint64              `json:"device,omitempty"`
	Content            []ID                `json:"content"`
	Subtree            *ID                 `json:"subtree,omitempty"`
	Error              string              `json:"error,omitempty"`
}

// fixTime keeps a time within what encoding/json can write (years 0–9999),
// as restic does.
func fixTime(t time.Time) time.Time {
	switch {
	case t.Year() < 0:
		return time.Date(0, 1, 1, 0, 0, 0, 0, t.Location())
	case t.Year() > 9999:
		return time.Date(9999, 12, 31, 23, 59, 59, 0, t.Location())
	}
	return t
}

// MarshalJSON writes the node as restic does: the name escaped with Go's
// strconv.Quote rules (without the quotes), so names that are not UTF-8
// survive; a symlink target that is not UTF-8 also goes to linktarget_raw.
func (n Node) MarshalJSON() ([]byte, error) {
	return json.Marshal(n.JSON())
}

// JSON is the node as MarshalJSON writes it, field by field.
func (n *Node) JSON() NodeJSON {
	nj := NodeJSON(*n)
	q := strconv.Quote(n.Name)
	nj.Name = q[1 : len(q)-1]
	nj.ModTime = fixTime(n.ModTime)
	nj.AccessTime = fixTime(n.AccessTime)
	nj.ChangeTime = fixTime(n.ChangeTime)
	nj.LinkTargetRaw = nil
	if !utf8.ValidString(n.LinkTarget) {
		nj.LinkTargetRaw = []byte(n.LinkTarget)
	}
	return nj
}

// NodeJSON is a Node as restic's JSON holds it — its name quoted as Go
// quotes it (without the quotes), a link target that is not UTF-8 also
// raw — without Node's JSON methods: many of them (a tree, a batch of a
// walk) are encoded and decoded in one pass, where through Node's
// methods encoding/json checks and copies each node's bytes again.
// Node.JSON makes one; NodeJSON.Node turns it back.
type NodeJSON Node

// UnmarshalJSON reverses MarshalJSON.
func (n *Node) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, (*NodeJSON)(n)); err != nil {
		return err
	}
	return n.fromJSON()
}

// Node turns nj, as decoded, into its Node in place and returns it.
func (nj *NodeJSON) Node() (*Node, error) {
	n := (*Node)(nj)
	if err := n.fromJSON(); err != nil {
		return nil, err
	}
	return n, nil
}

// fromJSON undoes what MarshalJSON did to a node decoded field by field:
// the name's quoting, a symlink target kept raw.
func (n *Node) fromJSON() error {
	name, err := strconv.Unquote(`"` + n.Name + `"`)
	if err != nil {
		return fmt.Errorf("node name %q: %w", n.Name, err)
	}
	n.Name = name
	if n.LinkTargetRaw != nil {
		n.LinkTarget = string(n.LinkTargetRaw)
		n.LinkTargetRaw = nil
	}
	return nil
}

// Tree is a directory listing: nodes sorted by name, names unique (restic
// finds nodes by binary search).
type Tree struct {
	Nodes []*Node `json:"nodes"`
}

// Insert adds a node in order, refusing a duplicate name.
func (t *Tree) Insert(n *Node) error {
	i, found := slices.BinarySearchFunc(t.Nodes, n.Name, func(a *Node, name string) int { return strings.Compare(a.Name, name) })
	if found {
		return fmt.Errorf("node %q already present", n.Name)
	}
	t.Nodes = slices.Insert(t.Nodes, i, n)
	return nil
}

// Find returns the node called name (nil on a nil tree).
func (t *Tree) Find(name string) *Node {
	if t == nil {
		return nil
	}
	i, found := slices.BinarySearchFunc(t.Nodes, name, func(a *Node, name string) int { return strings.Compare(a.Name, name) })
	if !found {
		return nil
	}
	return t.Nodes[i]
}

// Encode returns the tree's blob bytes exactly as restic writes them:
// encoding/json's output plus a newline.
func (t *Tree) Encode() ([]byte, error) {
	for i := 1; i < len(t.Nodes); i++ {
		if t.Nodes[i-1].Name >= t.Nodes[i].Name {
			return nil, fmt.Errorf("tree nodes not sorted or not unique at %q", t.Nodes[i].Name)
		}
	}
	if t.Nodes == nil {
		t.Nodes = []*Node{}
	}
	// the nodes as MarshalJSON writes them, in one Marshal: through
	// MarshalJSON, encoding/json would check and copy each node's
	// output once more
	out := struct {
		Nodes []NodeJSON `json:"nodes"`
	}{make([]NodeJSON, len(t.Nodes))}
	for i, n := range t.Nodes {
		out.Nodes[i] = n.JSON()
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// SaveTree stores a tree blob.
func (r *Repository) SaveTree(ctx context.Context, t *Tree) (ID, error) {
	b, err := t.Encode()
	if err != nil {
		return ID{}, err
	}
	id, _, err := r.SaveBlob(ctx, TreeBlob, b, ID{})
	return id, err
}

// LoadTree reads a tree blob.
func (r *Repository) LoadTree(ctx context.Context, id ID) (*Tree, error) {
	b, err := r.LoadBlob(ctx, TreeBlob, id, nil)
	if err != nil {
		return nil, err
	}
	return DecodeTree(b, id)
}

// DecodeTree parses a tree blob. Its nodes are decoded field by field in
// one pass over the blob and then fixed up as Node.UnmarshalJSON does:
// through UnmarshalJSON, encoding/json would scan each node's bytes
// twice more (to find its end, then to check it again).
func DecodeTree(b []byte, id ID) (*Tree, error) {
	var raw struct {
		Nodes []*NodeJSON `json:"nodes"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("tree %s: %w", id.Str(), err)
	}
	t := &Tree{}
	if raw.Nodes != nil {
		t.Nodes = make([]*Node, len(raw.Nodes))
	}
	for i, nj := range raw.Nodes {
		if nj == nil {
			return nil, fmt.Errorf("tree %s: node %d is null", id.Str(), i)
		}
		n, err := nj.Node()
		if err != nil {
			return nil, fmt.Errorf("tree %s: %w", id.Str(), err)
		}
		t.Nodes[i] = n
	}
	return t, nil
}
