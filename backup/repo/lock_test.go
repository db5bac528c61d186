package repo

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/mem"
)

func TestLocks(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r, err := Init(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	a, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatalf("two shared locks: %v", err)
	}
	if _, err := r.Lock(ctx, true); !errors.Is(err, ErrLocked) {
		t.Errorf("exclusive lock beside shared ones: %v", err)
	}
	_ = a.Unlock(ctx)
	_ = b.Unlock(ctx)
	x, err := r.Lock(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lock(ctx, false); !errors.Is(err, ErrLocked) {
		t.Errorf("shared lock beside an exclusive one: %v", err)
	}
	// refresh replaces the lock file
	old := x.id
	if err := x.refresh(ctx); err != nil || x.id == old {
		t.Fatalf("refresh: %v", err)
	}
	if _, err := be.Stat(ctx, backend.Handle{Type: backend.LockFile, Name: old.String()}); !errors.Is(err, backend.ErrNotExist) {
		t.Errorf("old lock file left after refresh")
	}
	_ = x.Unlock(ctx)

	// stale locks: a dead process on this host, or too old
	host, _ := os.Hostname()
	for _, tc := range []struct {
		name  string
		lock  Lock
		stale bool
	}{
		{"live process", Lock{Time: time.Now(), Hostname: host, PID: os.Getpid()}, false},
		{"dead process", Lock{Time: time.Now(), Hostname: host, PID: 1 << 30}, true},
		{"other host", Lock{Time: time.Now(), Hostname: "elsewhere", PID: 1 << 30}, false},
		{"too old", Lock{Time: time.Now().Add(-StaleAfter - time.Minute), Hostname: "elsewhere", PID: 1}, true},
	} {
		if got := tc.lock.Stale(host); got != tc.stale {
			t.Errorf("%s: stale = %v", tc.name, got)
		}
	}
}

// A lock that could not be refreshed for too long stops index and
// snapshot writes.
func TestStaleLockStopsWrites(t *testing.T) {
	ctx := context.Background()
	r, err := Init(ctx, mem.New(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	h, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Unlock(ctx)
	h.okAt = time.Now().Add(-StaleAfter)
	if _, err := r.SaveSnapshot(ctx, &Snapshot{Tree: &ID{}}); err == nil {
		t.Error("snapshot written under a lock that may be stale")
	}
	if _, _, err := r.SaveBlob(ctx, DataBlob, []byte("x"), ID{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); err == nil {
		t.Error("index written under a lock that may be stale")
	}
}

// A lock whose file someone else removed (unlock --remove-all, a node
// that judged it stale) is lost at the next refresh: the packing under
// way stops and no index or snapshot is written, also after the refresh
// would have succeeded.
func TestRemovedLockStopsWrites(t *testing.T) {
	ctx := context.Background()
	be := mem.New()
	r, err := Init(ctx, be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	h, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Unlock(ctx)
	if _, _, err := r.SaveBlob(ctx, DataBlob, []byte("before"), ID{}); err != nil {
		t.Fatal(err)
	}
	if n, err := r.RemoveStaleLocks(ctx, true); err != nil || n != 1 {
		t.Fatalf("unlock --remove-all: %d, %v", n, err)
	}
	if err := h.refresh(ctx); err == nil || !strings.Contains(err.Error(), "removed by someone else") {
		t.Fatalf("refresh of a removed lock: %v", err)
	}
	if err := r.LockValid(); err == nil {
		t.Error("LockValid after the lock was removed")
	}
	if err := h.refresh(ctx); err == nil {
		t.Error("a lost lock was refreshed back")
	}
	if err := r.Flush(ctx); err == nil {
		t.Error("index written after the lock was removed")
	}
	if _, err := r.SaveSnapshot(ctx, &Snapshot{Tree: &ID{}}); err == nil {
		t.Error("snapshot written after the lock was removed")
	}
	n := 0
	_ = be.List(ctx, backend.IndexFile, func(backend.FileInfo) error { n++; return nil })
	_ = be.List(ctx, backend.LockFile, func(backend.FileInfo) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d index or lock files written after the lock was removed", n)
	}
}

// LockSharedAsync confirms its lock in the background: a conflicting
// lock that appears meanwhile (a racer whose first check missed ours)
// stops the index and the snapshot, not the packs, and LockValid says so.
func TestLockSharedAsync(t *testing.T) {
	defer func(d time.Duration) { lockSettle = d }(lockSettle)
	lockSettle = time.Second // the racer below comes well within it
	ctx := context.Background()
	r, err := Init(ctx, mem.New(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	h, err := r.LockSharedAsync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lock(ctx, true); !errors.Is(err, ErrLocked) {
		t.Errorf("exclusive lock beside an async shared lock: %v", err)
	}
	if err := r.LockValid(); err != nil {
		t.Fatalf("unchallenged lock: %v", err)
	}
	_ = h.Unlock(ctx)

	h, err = r.LockSharedAsync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Unlock(ctx)
	doc := newLockDoc(true, r.node())
	doc.PID = os.Getpid() // alive, so not stale
	b, _ := json.Marshal(doc)
	racer, err := r.SaveUnpacked(ctx, backend.LockFile, b)
	if err != nil {
		t.Fatal(err)
	}
	defer r.be.Remove(ctx, backend.Handle{Type: backend.LockFile, Name: racer.String()})
	if _, _, err := r.SaveBlob(ctx, DataBlob, []byte("packs may be written"), ID{}); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(ctx); !errors.Is(err, ErrLocked) {
		t.Errorf("index written beside an exclusive lock: %v", err)
	}
	if _, err := r.SaveSnapshot(ctx, &Snapshot{Tree: &ID{}}); !errors.Is(err, ErrLocked) {
		t.Errorf("snapshot written beside an exclusive lock: %v", err)
	}
	if err := r.LockValid(); !errors.Is(err, ErrLocked) {
		t.Errorf("LockValid beside an exclusive lock: %v", err)
	}
}

// A conflicting lock found by LockSharedAsync's confirmation stops the
// packing there and then: SaveBlob fails soon after, not only the index
// at the end, and so does a SaveBlob waiting for an upload.
func TestLockLostStopsSaveBlob(t *testing.T) {
	defer func(d time.Duration) { lockSettle = d }(lockSettle)
	lockSettle = 200 * time.Millisecond
	ctx := context.Background()
	r, err := Init(ctx, mem.New(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	h, err := r.LockSharedAsync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Unlock(ctx)
	doc := newLockDoc(true, r.node())
	doc.PID = os.Getpid() // alive, so not stale
	b, _ := json.Marshal(doc)
	racer, err := r.SaveUnpacked(ctx, backend.LockFile, b)
	if err != nil {
		t.Fatal(err)
	}
	defer r.be.Remove(ctx, backend.Handle{Type: backend.LockFile, Name: racer.String()})
	start := time.Now()
	blob := make([]byte, 64<<10)
	for i := 0; ; i++ {
		binary.LittleEndian.PutUint64(blob, uint64(i))
		_, _, err := r.SaveBlob(ctx, DataBlob, blob, ID{})
		if err != nil {
			if !errors.Is(err, ErrLocked) {
				t.Fatalf("SaveBlob: %v, want ErrLocked", err)
			}
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("SaveBlob still packing 5s after a conflicting exclusive lock appeared")
		}
	}
	if err := r.Flush(ctx); !errors.Is(err, ErrLocked) {
		t.Errorf("Flush beside an exclusive lock: %v", err)
	}
}

// TestSetLockHost: a node name of its own goes into the lock files, and
// only locks of that name have their PIDs looked up: a dead process's
// lock under the node's name is stale (unlock removes it), one under the
// machine's hostname is another node's and stays.
func TestSetLockHost(t *testing.T) {
	ctx := context.Background()
	r, err := Init(ctx, mem.New(), "pw")
	if err != nil {
		t.Fatal(err)
	}
	r.SetLockHost("control-b")
	h, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	_ = r.List(ctx, backend.LockFile, func(id ID, _ int64) error {
		l, err := r.LoadLock(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, l.Hostname)
		return nil
	})
	if len(names) != 1 || names[0] != "control-b" {
		t.Errorf("lock files name %v, want [control-b]", names)
	}
	_ = h.Unlock(ctx)

	machine, _ := os.Hostname()
	for _, host := range []string{"control-b", machine} {
		doc := newLockDoc(true, host)
		doc.PID = 1 << 30 // no such process
		b, _ := json.Marshal(doc)
		if _, err := r.SaveUnpacked(ctx, backend.LockFile, b); err != nil {
			t.Fatal(err)
		}
	}
	n, err := r.RemoveStaleLocks(ctx, false)
	if err != nil || n != 1 {
		t.Fatalf("removed %d stale locks (%v), want 1: the dead process of control-b", n, err)
	}
	if _, err := r.Lock(ctx, false); !errors.Is(err, ErrLocked) {
		t.Errorf("the machine-named exclusive lock (another node's) was not honoured: %v", err)
	}
}
