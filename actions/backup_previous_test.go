package actions

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/mem"
	"github.com/holiday-ops/holiday/backup/hostbackup"
	"github.com/holiday-ops/holiday/backup/repo"
)

// listCounter counts the listings of the repository's snapshots.
type listCounter struct {
	backend.Backend
	snapshotLists atomic.Int32
}

func (b *listCounter) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	if t == backend.SnapshotFile {
		b.snapshotLists.Add(1)
	}
	return b.Backend.List(ctx, t, fn)
}

// previousRepo is a repository with snapshots of two hosts: files and
// dumps, older and newer, each dump one file of the size given
// (hostbackup.Previous and StreamSize are tested on their own in
// backup/hostbackup).
func previousRepo(t *testing.T) (*Backups, *listCounter, map[string]repo.ID) {
	t.Helper()
	ctx := context.Background()
	be := &listCounter{Backend: mem.New()}
	r, err := repo.Init(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
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
	two := tree(&repo.Node{Name: "a", Type: repo.NodeFile, Size: 1}, &repo.Node{Name: "b", Type: repo.NodeFile, Size: 2})
	shopOld, shop, other, mysqlShop, sys2Shop := dump("shop.pgdump", 1000), dump("shop.pgdump", 2000), dump("other.pgdump", 5555), dump("shop.sql", 7777), dump("shop.pgdump", 9999)
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 2, 5, 18, 0, 0, 0, time.UTC)
	ids := map[string]repo.ID{}
	save := func(name, host string, tr *repo.ID, tag string, paths ...string) {
		at = at.Add(time.Minute)
		id, err := r.SaveSnapshot(ctx, &repo.Snapshot{Time: at, Tree: tr, Paths: paths, Hostname: host, Tags: []string{"holiday", tag}})
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = id
	}
	save("shop old", "sys1", shopOld, "kind:postgres", "/postgres/shop")
	save("files old", "sys1", etc, "kind:files", "/var/www", "/etc")
	save("shop", "sys1", shop, "kind:postgres", "/postgres/shop")
	save("files", "sys1", etc, "kind:files", "/etc", "/var/www")
	save("other db", "sys1", other, "kind:postgres", "/postgres/other")
	save("mysql shop", "sys1", mysqlShop, "kind:mysql", "/mysql/shop")
	save("sys2 shop", "sys2", sys2Shop, "kind:postgres", "/postgres/shop")
	save("sys2 files", "sys2", etc, "kind:files", "/etc", "/var/www")
	save("not a dump", "sys1", two, "kind:postgres", "/postgres/odd")
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	be.snapshotLists.Store(0)
	return &Backups{Store: hostbackup.NewStore(ctx, r)}, be, ids
}

// TestDumpEstimate: with progress reports, a dump's backup expects the
// size of the host's previous dump of the database, read from the run's
// one listing of the repository's snapshots, which the hosts' known
// blobs and the files sources' parents share; without an earlier dump,
// or without progress reports, there is no estimate.
func TestDumpEstimate(t *testing.T) {
	ctx := context.Background()
	bk, be, ids := previousRepo(t)
	bk.Progress = func(string, string, hostbackup.Stats) {}
	dump := func(engine, db string) job {
		return job{kind: engine, paths: []string{"/" + engine + "/" + db},
			req: hostbackup.Request{Source: hostbackup.SourceStream, Stream: &hostbackup.StreamSpec{Engine: engine, Database: db}}}
	}
	expect := func(host string, j job) int64 {
		t.Helper()
		var o hostbackup.Options
		if err := bk.fromPrevious(ctx, host, j, &o); err != nil {
			t.Fatal(err)
		}
		if o.Expected == nil {
			t.Fatal("a dump with progress reports has no Expected")
		}
		if _, err := bk.snapshots(ctx); err != nil {
			t.Fatal(err)
		}
		// the previous dump's tree is read in the background
		deadline := time.Now().Add(5 * time.Second)
		for o.Expected() == 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		return o.Expected()
	}
	if got := expect("sys1", dump("postgres", "shop")); got != 2000 {
		t.Errorf("sys1 postgres shop: expected %d, want 2000 (its newest dump)", got)
	}
	if got := expect("sys2", dump("postgres", "shop")); got != 9999 {
		t.Errorf("sys2 postgres shop: expected %d, want 9999 (its own dump)", got)
	}
	if got := expect("sys1", dump("mysql", "shop")); got != 7777 {
		t.Errorf("sys1 mysql shop: expected %d, want 7777", got)
	}
	var files hostbackup.Options
	if err := bk.fromPrevious(ctx, "sys1", job{kind: "files", paths: []string{"/etc", "/var/www"}}, &files); err != nil {
		t.Fatal(err)
	}
	if files.Parent == nil || files.Parent.ID != ids["files"] || files.Expected != nil {
		t.Errorf("files: parent %v, Expected set %v; want %s and none", files.Parent, files.Expected != nil, ids["files"].Str())
	}
	for _, host := range []string{"sys1", "sys2", "sys3"} {
		k, err := bk.knownFor(ctx, host, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if n := be.snapshotLists.Load(); n != 1 {
		t.Errorf("the repository's snapshots were listed %d times in the run, want once", n)
	}

	// no earlier dump of this database: no estimate (the progress line
	// then has no time left)
	var o hostbackup.Options
	if err := bk.fromPrevious(ctx, "sys1", dump("postgres", "new"), &o); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if got := o.Expected(); got != 0 {
		t.Errorf("a database never dumped before: expected %d, want 0", got)
	}
	// without progress reports nothing is looked up
	bk.Progress = nil
	o = hostbackup.Options{}
	if err := bk.fromPrevious(ctx, "sys1", dump("postgres", "shop"), &o); err != nil || o.Expected != nil {
		t.Errorf("without progress reports: Expected set %v, %v", o.Expected != nil, err)
	}
}
