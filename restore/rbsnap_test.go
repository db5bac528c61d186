package restore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/backend/mem"
	"github.com/holiday-ops/holiday/backup/repo"
)

// TestFindRollbackSnapshot: which snapshot a rollback writes back, and
// the refusal of another host's.
func TestFindRollbackSnapshot(t *testing.T) {
	ctx := context.Background()
	r, err := repo.Init(ctx, mem.New(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	tree, err := r.SaveTree(ctx, &repo.Tree{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var shopPaths []string
	at := time.Date(2026, 2, 5, 18, 0, 0, 0, time.UTC)
	save := func(host string, tags ...string) string {
		at = at.Add(time.Minute)
		paths := []string{"/etc"}
		if shopPaths != nil {
			paths = shopPaths
		}
		sn := &repo.Snapshot{Time: at, Tree: &tree, Paths: paths, Hostname: host, Tags: tags}
		id, err := r.SaveSnapshot(ctx, sn)
		if err != nil {
			t.Fatal(err)
		}
		return id.String()
	}
	lockdown1 := save("web1", "holiday", "run:R1", "kind:files")
	disk := save("web1", "holiday", "run:R1", "kind:disk")
	lockdown2 := save("web1", "holiday", "run:R2", "kind:files")
	db1 := save("db1", "holiday", "run:R2", "kind:files")
	shopPaths = []string{"/postgres/sh%2Fop"}
	shop := save("web1", "holiday", "run:R2", "kind:postgres")
	shopPaths = []string{"/mysql/other"}
	_ = save("web1", "holiday", "run:R2", "kind:mysql")
	shopPaths = nil
	pre := save("web1", "holiday", "kind:files", "rollback-of:"+lockdown2, "run:R3") // newest of web1, but a pre-rollback one
	_ = save("web1", "kind:files")                                                   // not a holiday snapshot
	files := Want{Kinds: []string{"files"}}
	for _, tc := range []struct {
		name, host, id, run string
		pick                Want
		want, err           string
	}{
		{"default: newest lockdown files snapshot, not a pre-rollback one", "web1", "", "", files, lockdown2, ""},
		{"by run", "web1", "", "R1", files, lockdown1, ""},
		{"by run: a pre-rollback snapshot's own run", "web1", "", "R3", files, pre, ""},
		{"named", "web1", lockdown1[:10], "", files, lockdown1, ""},
		{"a pre-rollback snapshot named: the rollback of the rollback", "web1", pre, "", files, pre, ""},
		{"another host's refused", "web1", db1[:10], "", files, "", `is of host "db1", not web1: refusing`},
		{"a disk snapshot named", "web1", disk, "", files, disk, ""},
		{"the newest disk snapshot", "web1", "", "", Want{Kinds: []string{"disk"}}, disk, ""},
		{"a database's newest dump, by its name", "web1", "", "", Want{Kinds: []string{"postgres", "mysql"}, Database: "sh/op"}, shop, ""},
		{"no dump of that database", "web1", "", "", Want{Kinds: []string{"postgres", "mysql"}, Database: "shop"}, "", "no lockdown postgres/mysql shop snapshot of web1"},
		{"no snapshot in the run", "web1", "", "R9", files, "", "no files snapshot of web1 from run R9"},
		{"no lockdown snapshot", "mail1", "", "", files, "", "no lockdown files snapshot of mail1"},
		{"unknown id", "web1", "ffffffff", "", files, "", "snapshot ffffffff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sn, err := FindRollbackSnapshot(ctx, r, tc.host, tc.id, tc.run, tc.pick)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want an error with %q", sn, err, tc.err)
				}
				return
			}
			if err != nil || sn.ID.String() != tc.want {
				t.Fatalf("got %v, %v; want %s", sn, err, tc.want)
			}
		})
	}
}
