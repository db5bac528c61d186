package restore

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/golden"
)

func TestRoots(t *testing.T) {
	for _, tc := range []struct {
		name         string
		asked, paths []string
		want         []string
		err          string
	}{
		{"the snapshot's paths by default", nil, []string{"/var/www", "/etc"}, []string{"/etc", "/var/www"}, ""},
		{"asked paths win", []string{"/etc/nginx/"}, []string{"/etc"}, []string{"/etc/nginx"}, ""},
		{"one under another is dropped", []string{"/etc/nginx", "/etc", "/etcetera"}, nil, []string{"/etc", "/etcetera"}, ""},
		{"relative refused", []string{"etc"}, nil, nil, "not an absolute path"},
		{"root refused", []string{"/"}, nil, nil, "whole root"},
		{"root refused after cleaning", []string{"/etc/.."}, nil, nil, "whole root"},
		{"nothing to restore", nil, nil, nil, "give --path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Roots(tc.asked, tc.paths)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Roots = %v, %v; want error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Roots = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

var t0 = time.Date(2026, 2, 5, 18, 0, 0, 123456789, time.UTC)

func id(s string) repo.ID { return repo.Hash([]byte(s)) }

func dir(mode os.FileMode) *repo.Node {
	return &repo.Node{Type: repo.NodeDir, Mode: os.ModeDir | mode, ModTime: t0}
}

func file(content string, mode os.FileMode) *repo.Node {
	return &repo.Node{Type: repo.NodeFile, Mode: mode, ModTime: t0, Size: uint64(len(content)), Content: []repo.ID{id(content)}}
}

func with(n *repo.Node, f func(*repo.Node)) *repo.Node {
	c := *n
	f(&c)
	return &c
}

// snapshotWant is the snapshot side shared by the diff and golden tests.
func snapshotWant() []Item {
	hl := func(ino uint64) *repo.Node {
		return with(file("shared", 0o644), func(n *repo.Node) { n.Links, n.Inode, n.DeviceID = 2, ino, 7 })
	}
	return []Item{
		{"/var/www", dir(0o755)},
		{"/var/www/index.html", file("hello", 0o644)},
		{"/var/www/old.txt", file("old", 0o644)},
		{"/var/www/hl1", hl(50)},
		{"/var/www/hl2", hl(50)},
		{"/var/www/same", file("same", 0o600)},
		{"/var/www/su", file("bin", os.ModeSetuid|0o755)},
		{"/var/www/ln", &repo.Node{Type: repo.NodeSymlink, Mode: os.ModeSymlink | 0o777, ModTime: t0, LinkTarget: "index.html"}},
		{"/var/www/x", with(file("x", 0o644), func(n *repo.Node) {
			n.ExtendedAttributes = []repo.ExtendedAttribute{{Name: "user.a", Value: []byte("1")}}
		})},
		{"/var/www/sub", dir(0o750)},
	}
}

// hostHave is the host after an intruder: content, mode, owner, an added
// file and dir, a deleted file, an xattr, a symlink retargeted, a hard
// link broken, a directory where a file was.
func hostHave() []Item {
	w := snapshotWant()
	m := map[string]*repo.Node{}
	for _, it := range w {
		m[it.Path] = it.Node
	}
	return []Item{
		{"/var/www", with(m["/var/www"], func(n *repo.Node) { n.ModTime = t0.Add(time.Hour) })},
		{"/var/www/index.html", with(file("hacked", 0o644), func(n *repo.Node) {})},
		{"/var/www/hl1", m["/var/www/hl1"]},
		{"/var/www/hl2", with(m["/var/www/hl2"], func(n *repo.Node) { n.Inode, n.Links = 51, 1 })},
		{"/var/www/same", m["/var/www/same"]},
		{"/var/www/shell.php", file("<?php system($_GET[c]);", 0o644)},
		{"/var/www/su", with(m["/var/www/su"], func(n *repo.Node) { n.Mode, n.UID = 0o777, 1000 })},
		{"/var/www/ln", with(m["/var/www/ln"], func(n *repo.Node) { n.LinkTarget = "/etc/shadow" })},
		{"/var/www/x", with(m["/var/www/x"], func(n *repo.Node) {
			n.ExtendedAttributes = []repo.ExtendedAttribute{{Name: "user.a", Value: []byte("2")}}
		})},
		{"/var/www/sub", file("not a dir", 0o644)},
		{"/var/www/upload", dir(0o777)},
		{"/var/www/upload/a.php", file("a", 0o644)},
	}
}

func TestDiff(t *testing.T) {
	got := Diff(snapshotWant(), hostHave())
	type opPath struct{ Op, Path string }
	var ops []opPath
	for _, c := range got {
		ops = append(ops, opPath{c.Op, c.Path})
	}
	want := []opPath{
		{OpRemove, "/var/www/shell.php"},
		{OpRemove, "/var/www/upload"}, // its a.php goes with it: not listed again
		{OpMeta, "/var/www"},
		{OpWrite, "/var/www/index.html"},
		{OpCreate, "/var/www/old.txt"},
		{OpLink, "/var/www/hl2"},
		{OpMeta, "/var/www/su"},
		{OpReplace, "/var/www/ln"},
		{OpMeta, "/var/www/x"},
		{OpReplace, "/var/www/sub"},
	}
	if !reflect.DeepEqual(ops, want) {
		t.Errorf("Diff ops:\n got %v\nwant %v", ops, want)
	}
	if s := Summarize(got); s != (Summary{Written: 5, Meta: 3, Removed: 2, Bytes: 5 + 3}) {
		t.Errorf("Summarize = %+v", s)
	}
	// The host as the snapshot has it: nothing to do, whatever the atime.
	same := snapshotWant()
	same[1].Node = with(same[1].Node, func(n *repo.Node) { n.AccessTime = t0.Add(time.Minute) })
	if d := Diff(snapshotWant(), same); len(d) != 0 {
		t.Errorf("Diff of identical trees = %v", d)
	}
	// A rewritten first link takes its other names with it.
	h := snapshotWant()
	h[3].Node = with(h[3].Node, func(n *repo.Node) { n.Content = []repo.ID{id("changed")} })
	var links []string
	for _, c := range Diff(snapshotWant(), h) {
		links = append(links, c.Op+" "+c.Path)
	}
	if !reflect.DeepEqual(links, []string{"write /var/www/hl1", "link /var/www/hl2"}) {
		t.Errorf("rewritten hard link: %v", links)
	}
}

// TestDiffSharedInode: names the host shares one inode between and the
// snapshot does not are written anew, not given metadata (which would
// reach the other names).
func TestDiffSharedInode(t *testing.T) {
	want := []Item{{"/d", dir(0o755)}, {"/d/a", file("same", 0o644)}, {"/d/b", with(file("same", 0o600), func(n *repo.Node) { n.ModTime = t0.Add(time.Hour) })}}
	shared := func(n *repo.Node) *repo.Node {
		return with(n, func(n *repo.Node) { n.Links, n.Inode, n.DeviceID = 2, 9, 1 })
	}
	have := []Item{want[0], {"/d/a", shared(want[1].Node)}, {"/d/b", shared(want[1].Node)}}
	var got []string
	for _, c := range Diff(want, have) {
		got = append(got, c.Op+" "+c.Path)
	}
	if !reflect.DeepEqual(got, []string{"write /d/a", "write /d/b"}) {
		t.Errorf("Diff = %v", got)
	}
}

func TestRenderChangesGolden(t *testing.T) {
	var b bytes.Buffer
	RenderChanges(&b, "web1", "4f1c2a9e", []string{"/var/www"}, Diff(snapshotWant(), hostHave()))
	RenderChanges(&b, "web1", "4f1c2a9e", []string{"/var/www"}, nil)
	golden.Check(t, "testdata/rollback-dry-run.golden", b.Bytes())
}
