package actions

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/faulty"
	"github.com/holiday-ops/holiday/backup/backend/mem"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/journal"
)

// asyncLocked is a repository with a shared lock taken as lockdown takes
// it (repo.LockSharedAsync); with racer, another node's exclusive lock
// appears right after this one's was written, before its second check:
// a prune that started at the same moment, whose first check missed ours.
func asyncLocked(t *testing.T, racer bool) *repo.Repository {
	t.Helper()
	ctx := context.Background()
	be := faulty.New(mem.New())
	r, err := repo.Init(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	var raced atomic.Bool
	be.AfterSave = func(h backend.Handle) {
		if !racer || h.Type != backend.LockFile || !raced.CompareAndSwap(false, true) {
			return
		}
		doc, _ := json.Marshal(repo.Lock{Time: time.Now(), Exclusive: true, Hostname: "maintenance", Username: "ops", PID: 4242})
		if _, err := r.SaveUnpacked(ctx, backend.LockFile, doc); err != nil {
			t.Error(err)
		}
	}
	h, err := r.LockSharedAsync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Unlock(context.Background()) })
	return r
}

// TestLockdownWaitsForRepositoryLock: lockdown's repository lock is
// confirmed while the hosts connect (Options.RepoLock); a conflicting
// lock found then refuses every host before anything is journaled or
// changed on it — no backup step, no service stop — and says whose lock
// it is. Without the racer the same run goes through.
func TestLockdownWaitsForRepositoryLock(t *testing.T) {
	for _, tc := range []struct {
		name   string
		racer  bool
		status string
		calls  int
	}{
		{"no conflict", false, HostDone, 4},
		{"exclusive lock during the settle wait", true, HostRefused, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := asyncLocked(t, tc.racer)
			var log []string
			var mu sync.Mutex
			fa := func(name string) Action { return fakeAction{name: name, log: &log, mu: &mu} }
			dir := t.TempDir()
			key, _ := journal.NewKey()
			jobs := []Job{{Name: "a", Connect: func(context.Context) (*Host, func(), error) { return &Host{Name: "a"}, func() {}, nil },
				Steps: []Step{
					{Slot: SlotBackups, Kind: "fake", Target: "backup", Action: fa("backup")},
					{Slot: SlotServices, Kind: "fake", Target: "nginx", Action: fa("nginx")},
				}}}
			res, err := Lockdown(context.Background(), Options{StateDir: dir, Key: key, NoHostCopy: true, RepoLock: r.LockValid}, jobs)
			if err != nil {
				t.Fatal(err)
			}
			h := res.Hosts[0]
			if h.Status != tc.status || len(log) != tc.calls {
				t.Fatalf("host %s (%s), calls %q; want %s with %d calls", h.Status, h.Error, log, tc.status, tc.calls)
			}
			if !tc.racer {
				return
			}
			for _, want := range []string{"nothing was changed on it", "repository is locked", "an exclusive lock", "on maintenance"} {
				if !strings.Contains(h.Error, want) {
					t.Errorf("error %q does not say %q", h.Error, want)
				}
			}
			if _, err := os.Stat(filepath.Join(RunDir(dir, res.Run), "a.journal")); !os.IsNotExist(err) {
				t.Errorf("a refused host has a journal: %v", err)
			}
		})
	}
}
