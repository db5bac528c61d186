package restore

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/repo"
)

// TestContentBytes: a files rollback's total is the content it sends:
// files created, replaced or written, not those whose metadata or hard
// link alone changes, nor what it removes, nor directories.
func TestContentBytes(t *testing.T) {
	file := func(p string, size uint64) Item {
		return Item{Path: p, Node: &repo.Node{Type: repo.NodeFile, Size: size}}
	}
	want := []Item{
		{Path: "/etc", Node: &repo.Node{Type: repo.NodeDir, Size: 4096}},
		file("/etc/created", 100), file("/etc/written", 20), file("/etc/replaced", 3),
		file("/etc/meta", 5000), file("/etc/linked", 7000), file("/etc/same", 9000),
	}
	changes := []Change{
		{Path: "/etc/created", Op: OpCreate}, {Path: "/etc/written", Op: OpWrite}, {Path: "/etc/replaced", Op: OpReplace},
		{Path: "/etc/meta", Op: OpMeta}, {Path: "/etc/linked", Op: OpLink}, {Path: "/etc/gone", Op: OpRemove},
		{Path: "/etc", Op: OpMeta},
	}
	if got := contentBytes(want, changes); got != 123 {
		t.Errorf("contentBytes = %d, want 123 (created 100 + written 20 + replaced 3)", got)
	}
	if got := contentBytes(want, nil); got != 0 {
		t.Errorf("no changes: contentBytes = %d, want 0", got)
	}
}

// TestBlockBytes: a disk rollback's total is the differing blocks' bytes,
// the image's last block short.
func TestBlockBytes(t *testing.T) {
	const mib = 1 << 20
	img := DiskImage{Size: 10*mib + 1, BlockSize: mib, Blocks: make([]repo.ID, 11)}
	for _, c := range []struct {
		blocks []int
		want   int64
	}{
		{nil, 0}, {[]int{0}, mib}, {[]int{10}, 1}, {[]int{0, 3, 10}, 2*mib + 1},
		{[]int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 10*mib + 1},
	} {
		if got := blockBytes(img, c.blocks); got != c.want {
			t.Errorf("blockBytes(%v) = %d, want %d", c.blocks, got, c.want)
		}
	}
}

// TestMeter: the figures a rollback's writing reports: files, blocks and
// bytes counted, a dump's bytes through meterWriter, about once a second
// while it runs, none after end; a nil meter (a Revert's) counts nothing.
func TestMeter(t *testing.T) {
	var mu sync.Mutex
	var reports []Progress
	m := startMeter("files", 300, func(p Progress) {
		mu.Lock()
		reports = append(reports, p)
		mu.Unlock()
	})
	m.add(100)
	m.fileDone()
	m.add(150)
	m.add(50)
	m.fileDone()
	time.Sleep(1100 * time.Millisecond)
	p := m.end()
	mu.Lock()
	n := len(reports)
	mu.Unlock()
	if n == 0 {
		t.Fatal("no report within a second")
	}
	if r := reports[n-1]; r.Kind != "files" || r.Files != 2 || r.Bytes != 300 || r.Total != 300 || r.Elapsed < time.Second {
		t.Errorf("report %+v; want files 2, 300 of 300 bytes, after a second", r)
	}
	if p.Files != 2 || p.Blocks != 0 || p.Bytes != 300 || p.Total != 300 || p.Elapsed < time.Second {
		t.Errorf("final %+v; want files 2, 300 of 300 bytes, after a second", *p)
	}
	time.Sleep(1100 * time.Millisecond)
	mu.Lock()
	if len(reports) != n {
		t.Errorf("%d reports after end", len(reports)-n)
	}
	mu.Unlock()

	d := startMeter("postgres", 11, nil)
	var buf bytes.Buffer
	w := meterWriter{&buf, d}
	w.Write([]byte("hello "))
	w.Write([]byte("world"))
	if p := d.end(); p.Bytes != 11 || buf.String() != "hello world" || p.Files != 0 {
		t.Errorf("dump: %+v, %q", *p, buf.String())
	}
	b := startMeter("disk", 2, nil)
	b.block(1)
	b.block(1)
	if p := b.end(); p.Blocks != 2 || p.Bytes != 2 || p.Files != 0 {
		t.Errorf("disk: %+v", *p)
	}

	var none *meter
	none.add(5)
	none.fileDone()
	none.block(5)
	if _, err := (meterWriter{&buf, none}).Write([]byte("x")); err != nil {
		t.Error(err)
	}
}
