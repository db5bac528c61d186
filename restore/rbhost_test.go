package restore

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/agentproto"
)

// TestApplyNotThroughSwappedLinks: rollback-apply makes its changes under
// the roots only. A directory under a root swapped for a symlink to a
// directory outside while the rollback ran (by a user who owns it:
// uploads -> /etc) is not followed — nothing is removed, written or
// chmod-ed out there, and the apply fails — and a file swapped for a
// symlink gets no metadata through it. The same changes in a real
// directory go through.
func TestApplyNotThroughSwappedLinks(t *testing.T) {
	now := time.Now()
	file := func(content string) *repo.Node {
		return &repo.Node{Type: repo.NodeFile, Mode: 0o644, Size: uint64(len(content)), ModTime: now, AccessTime: now,
			UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	}
	dir := &repo.Node{Type: repo.NodeDir, Mode: os.ModeDir | 0o777, ModTime: now, AccessTime: now, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	cases := []struct {
		name    string
		remove  []string     // relative to the root
		entries []applyEntry // paths relative to the root
		content string       // of the one file entry
	}{
		{name: "remove", remove: []string{"DIR/shadow"}},
		{name: "write", entries: []applyEntry{{Item: Item{Path: "DIR/new", Node: file("abc")}, Op: OpCreate}}, content: "abc"},
		{name: "replace", entries: []applyEntry{{Item: Item{Path: "DIR/shadow", Node: file("abc")}, Op: OpReplace}}, content: "abc"},
		{name: "directory metadata", entries: []applyEntry{{Item: Item{Path: "DIR", Node: dir}, Op: OpMeta}}},
		{name: "file metadata", entries: []applyEntry{{Item: Item{Path: "DIR/shadow", Node: file("secret")}, Op: OpMeta}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, swapped := range []bool{false, true} {
				base := t.TempDir()
				root, outside := filepath.Join(base, "www"), filepath.Join(base, "etc")
				for _, d := range []string{root, outside} {
					if err := os.Mkdir(d, 0o700); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.WriteFile(filepath.Join(outside, "shadow"), []byte("secret"), 0o600); err != nil {
					t.Fatal(err)
				}
				name := "real"
				if swapped {
					name = "uploads"
					if err := os.Symlink(outside, filepath.Join(root, name)); err != nil {
						t.Fatal(err)
					}
				} else if err := os.CopyFS(filepath.Join(root, name), os.DirFS(outside)); err != nil {
					t.Fatal(err)
				}
				abs := func(rel string) string { return filepath.Join(root, strings.Replace(rel, "DIR", name, 1)) }
				var in bytes.Buffer
				cw := agentproto.NewConn(nil, &in)
				for _, e := range c.entries {
					e.Path = abs(e.Path)
					must(t, cw.WriteJSON(agentproto.FrameMessage, e))
					if e.Node.Type == repo.NodeFile && e.Op != OpMeta {
						must(t, cw.WriteFrame(agentproto.FrameData, []byte(c.content)))
						must(t, cw.WriteFrame(agentproto.FrameEOF, nil))
					}
				}
				must(t, cw.WriteJSON(agentproto.FrameMessage, Item{}))
				var remove []string
				for _, r := range c.remove {
					remove = append(remove, abs(r))
				}
				w := &hostWriter{roots: []string{root}, conn: agentproto.NewConn(&in, io.Discard), dirty: map[string]bool{}, open: map[string]*os.Root{}}
				_, err := w.run(context.Background(), remove)
				w.close()

				b, rerr := os.ReadFile(filepath.Join(outside, "shadow"))
				fi, serr := os.Stat(outside)
				_, nerr := os.Lstat(filepath.Join(outside, "new"))
				sfi, _ := os.Stat(filepath.Join(outside, "shadow"))
				if rerr != nil || string(b) != "secret" || serr != nil || fi.Mode().Perm() != 0o700 || nerr == nil || sfi.Mode().Perm() != 0o600 {
					t.Fatalf("swapped %v: outside the root: shadow %q (%v, mode %v), dir mode %v, new exists %v; want it untouched", swapped, b, rerr, sfi.Mode(), fi.Mode(), nerr == nil)
				}
				if swapped && err == nil {
					t.Errorf("apply through a swapped link: no error")
				}
				if !swapped && err != nil {
					t.Errorf("apply in a real directory: %v", err)
				}
				t.Logf("swapped %v: %v", swapped, err)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestApplyMetaNotThroughLink: a file swapped for a symlink since it was
// listed gets no metadata through the link (the mode would go to what it
// points to).
func TestApplyMetaNotThroughLink(t *testing.T) {
	base := t.TempDir()
	root, target := filepath.Join(base, "www"), filepath.Join(base, "shadow")
	must(t, os.Mkdir(root, 0o700))
	must(t, os.WriteFile(target, []byte("secret"), 0o600))
	must(t, os.Symlink(target, filepath.Join(root, "conf")))
	now := time.Now()
	var in bytes.Buffer
	cw := agentproto.NewConn(nil, &in)
	must(t, cw.WriteJSON(agentproto.FrameMessage, applyEntry{Item: Item{Path: filepath.Join(root, "conf"),
		Node: &repo.Node{Type: repo.NodeFile, Mode: 0o666, Size: 6, ModTime: now, AccessTime: now, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}}, Op: OpMeta}))
	must(t, cw.WriteJSON(agentproto.FrameMessage, Item{}))
	w := &hostWriter{roots: []string{root}, conn: agentproto.NewConn(&in, io.Discard), dirty: map[string]bool{}, open: map[string]*os.Root{}}
	_, err := w.run(context.Background(), nil)
	w.close()
	if err == nil || !strings.Contains(err.Error(), "symbolic link now") {
		t.Errorf("metadata for a file that is a symlink now: %v; want it refused", err)
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o600 {
		t.Errorf("the link's target has mode %v; want it untouched (0600)", fi.Mode())
	}
}
