package hostbackup

import (
	"context"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/repo"
)

// TestPrevious: a host's previous snapshot of a source is the newest of
// that host, kind and paths; a dump's size is its one file's.
func TestPrevious(t *testing.T) {
	ctx := context.Background()
	_, r := testRepo(t)
	tree := func(nodes ...*repo.Node) *repo.ID {
		id, err := r.SaveTree(ctx, &repo.Tree{Nodes: nodes})
		if err != nil {
			t.Fatal(err)
		}
		return &id
	}
	dump := func(name string, size uint64) *repo.ID {
		return tree(&repo.Node{Name: name, Type: repo.NodeFile, Size: size, Content: []repo.ID{}})
	}
	etc := tree(&repo.Node{Name: "etc", Type: repo.NodeDir})
	trees := map[string]*repo.ID{
		"shop old": dump("shop.pgdump", 1000), "shop": dump("shop.pgdump", 2000), "other db": dump("other.pgdump", 5555),
		"mysql shop": dump("shop.sql", 7777), "sys2 shop": dump("shop.pgdump", 9999), "files old": etc, "files": etc,
		"not a dump": tree(&repo.Node{Name: "a", Type: repo.NodeFile, Size: 1}, &repo.Node{Name: "b", Type: repo.NodeFile, Size: 2}),
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 2, 5, 18, 0, 0, 0, time.UTC)
	ids := map[string]repo.ID{}
	var sns []*repo.Snapshot
	for _, s := range []struct {
		name, host, tag string
		paths           []string
	}{
		{"shop old", "sys1", "kind:postgres", []string{"/postgres/shop"}},
		{"files old", "sys1", "kind:files", []string{"/var/www", "/etc"}},
		{"shop", "sys1", "kind:postgres", []string{"/postgres/shop"}},
		{"files", "sys1", "kind:files", []string{"/var/www", "/etc"}},
		{"other db", "sys1", "kind:postgres", []string{"/postgres/other"}},
		{"mysql shop", "sys1", "kind:mysql", []string{"/mysql/shop"}},
		{"sys2 shop", "sys2", "kind:postgres", []string{"/postgres/shop"}},
		{"not a dump", "sys1", "kind:postgres", []string{"/postgres/odd"}},
	} {
		at = at.Add(time.Minute)
		sn := &repo.Snapshot{Time: at, Tree: trees[s.name], Paths: s.paths, Hostname: s.host, Tags: []string{"holiday", s.tag}}
		id, err := r.SaveSnapshot(ctx, sn)
		if err != nil {
			t.Fatal(err)
		}
		ids[s.name], sn.ID = id, id
		sns = append(sns, sn)
	}
	for _, c := range []struct {
		name, host, tag string
		paths           []string
		want            string // a key of ids, "" for none
		size            int64
	}{
		{"the newest dump of the database", "sys1", "kind:postgres", []string{"/postgres/shop"}, "shop", 2000},
		{"another database", "sys1", "kind:postgres", []string{"/postgres/other"}, "other db", 5555},
		{"the same name on the other engine", "sys1", "kind:mysql", []string{"/mysql/shop"}, "mysql shop", 7777},
		{"another host's dump of the same database", "sys2", "kind:postgres", []string{"/postgres/shop"}, "sys2 shop", 9999},
		{"no earlier dump of it", "sys1", "kind:postgres", []string{"/postgres/new"}, "", 0},
		{"no earlier dump of this host", "sys3", "kind:postgres", []string{"/postgres/shop"}, "", 0},
		{"a snapshot that is not one dump: no size", "sys1", "kind:postgres", []string{"/postgres/odd"}, "not a dump", 0},
		{"files: the newest with the same paths in any order", "sys1", "kind:files", []string{"/etc", "/var/www"}, "files", 0},
		{"files: other paths", "sys1", "kind:files", []string{"/etc"}, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			sn := Previous(sns, c.host, c.tag, c.paths)
			switch {
			case c.want == "" && sn != nil:
				t.Fatalf("got snapshot %s, want none", sn.ID.Str())
			case c.want != "" && (sn == nil || sn.ID != ids[c.want]):
				t.Fatalf("got %v, want %q (%s)", sn, c.want, ids[c.want].Str())
			}
			if c.tag != "kind:files" {
				if got := StreamSize(ctx, r, sn); got != c.size {
					t.Fatalf("size %d, want %d", got, c.size)
				}
			}
		})
	}
}
