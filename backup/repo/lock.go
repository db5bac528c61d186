package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/holiday-ops/holiday/backup/backend"
)

// Lock is a lock file's document.
type Lock struct {
	Time      time.Time `json:"time"`
	Exclusive bool      `json:"exclusive"`
	Hostname  string    `json:"hostname"`
	Username  string    `json:"username"`
	PID       int       `json:"pid"`
	UID       uint32    `json:"uid,omitempty"`
	GID       uint32    `json:"gid,omitempty"`
}

// Lock timing, restic's: a lock older than StaleAfter is stale; a held
// lock is refreshed every RefreshEvery.
const (
	StaleAfter   = 30 * time.Minute
	RefreshEvery = 5 * time.Minute
)

// Stale reports whether a lock no longer protects anything, judged on
// the node named node (see Repository.SetLockHost): too old, or taken on
// that node by a process that is gone. Only a lock of this node's name
// has its PID looked up here.
func (l *Lock) Stale(node string) bool {
	if time.Since(l.Time) > StaleAfter {
		return true
	}
	if l.Hostname != node {
		return false
	}
	err := syscall.Kill(l.PID, 0)
	return errors.Is(err, syscall.ESRCH)
}

// SetLockHost names the node this process runs on in the lock files it
// writes, and tells whose locks' PIDs it may look up to find dead ones
// (default: the machine's hostname). Control nodes whose hostnames are
// not unique (containers, clones of one image) set a name of their own,
// the same for every process on one node.
func (r *Repository) SetLockHost(name string) {
	if name != "" {
		r.lockHost = name
	}
}

// node is the name this process's locks carry.
func (r *Repository) node() string {
	if r.lockHost != "" {
		return r.lockHost
	}
	host, _ := os.Hostname()
	return host
}

// ErrLocked means another process holds a conflicting lock.
var ErrLocked = errors.New("repository is locked")

// Held is a lock this process holds. It is refreshed in the background;
// Valid reports whether it may have gone stale (a refresh failed for
// longer than it stays fresh, or found the lock file removed by someone
// else), in which case a writer must stop before writing index or
// snapshot.
type Held struct {
	r      *Repository
	mu     sync.Mutex
	id     ID
	lock   Lock
	okAt   time.Time
	cancel context.CancelFunc
	done   chan struct{}
	// confirmed is closed when the second check for conflicting locks
	// is done; confirmErr is its finding
	confirmed  chan struct{}
	confirmErr error
	// lost is set when a refresh finds the lock file gone: someone
	// removed it (unlock --remove-all, or another node that judged it
	// stale), and an exclusive lock may have been taken since
	lost error
}

// LoadLock reads a lock file.
func (r *Repository) LoadLock(ctx context.Context, id ID) (*Lock, error) {
	b, err := r.LoadUnpacked(ctx, backend.LockFile, id)
	if err != nil {
		return nil, err
	}
	var l Lock
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("lock %s: %w", id.Str(), err)
	}
	return &l, nil
}

func (r *Repository) checkLocks(ctx context.Context, exclusive bool, self ID) error {
	return r.List(ctx, backend.LockFile, func(id ID, _ int64) error {
		if id == self {
			return nil
		}
		l, err := r.LoadLock(ctx, id)
		if backend.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read lock %s: %w", id.Str(), err)
		}
		if l.Stale(r.node()) {
			return nil
		}
		if exclusive || l.Exclusive {
			kind := "a"
			if l.Exclusive {
				kind = "an exclusive"
			}
			return fmt.Errorf("%w: %s lock %s by PID %d on %s as %s since %s (run `holiday repo unlock` if that process is gone)",
				ErrLocked, kind, id.Str(), l.PID, l.Hostname, l.Username, l.Time.Format(time.RFC3339))
		}
		return nil
	})
}

func newLockDoc(exclusive bool, node string) Lock {
	l := Lock{Time: time.Now(), Exclusive: exclusive, PID: os.Getpid(), Hostname: node}
	if u, err := user.Current(); err == nil {
		l.Username = u.Username
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		l.UID, l.GID = uint32(uid), uint32(gid)
	}
	return l
}

// lockSettle is how long a new lock file is given to become visible to
// others before the second check for conflicting locks (a variable for
// tests).
var lockSettle = 100 * time.Millisecond

// Lock takes a non-exclusive or exclusive lock: it checks for conflicting
// locks, writes its own, waits briefly and checks again (two processes
// racing both see each other and one backs off).
func (r *Repository) Lock(ctx context.Context, exclusive bool) (*Held, error) {
	h, err := r.lock(ctx, exclusive)
	if err != nil {
		return nil, err
	}
	time.Sleep(lockSettle)
	h.confirm(ctx)
	if h.confirmErr != nil {
		_ = h.Unlock(context.WithoutCancel(ctx))
		return nil, h.confirmErr
	}
	return h, nil
}

// LockSharedAsync takes a non-exclusive lock whose settle wait and
// second check for conflicting locks run in the background while the
// caller works: the repository's write guard waits for them before the
// first index or snapshot is written, and a reader calls LockValid
// before it trusts what it read. A conflict found then stops a backup
// with only packs written — unindexed, as after a crash, and removed by
// a later prune — where Lock would have stopped it before it started.
func (r *Repository) LockSharedAsync(ctx context.Context) (*Held, error) {
	h, err := r.lock(ctx, false)
	if err != nil {
		return nil, err
	}
	go func() {
		select {
		case <-time.After(lockSettle):
			h.confirm(ctx)
			if h.confirmErr != nil {
				// stop the packing now, not at the index
				r.abortWriter(h.confirmErr)
			}
		case <-ctx.Done():
			h.confirmErr = ctx.Err()
			close(h.confirmed)
		}
	}()
	return h, nil
}

// LockLost reports, without waiting, a conflict the confirmation of the
// lock this repository is used under has found (nil while it is still
// running): long work under LockSharedAsync (reading every pack) checks
// it as it goes and stops early. SaveBlob checks it too.
func (r *Repository) LockLost() error {
	if h := r.held.Load(); h != nil {
		select {
		case <-h.confirmed:
			return h.confirmErr
		default:
		}
	}
	return nil
}

// LockValid reports whether the lock this repository is used under (if
// any) is confirmed and fresh; it waits for the confirmation.
func (r *Repository) LockValid() error {
	if r.guard == nil {
		return nil
	}
	return r.guard()
}

// lock checks for conflicting locks and writes a lock file.
func (r *Repository) lock(ctx context.Context, exclusive bool) (*Held, error) {
	if err := r.checkLocks(ctx, exclusive, ID{}); err != nil {
		return nil, err
	}
	doc := newLockDoc(exclusive, r.node())
	b, _ := json.Marshal(doc)
	id, err := r.SaveUnpacked(ctx, backend.LockFile, b)
	if err != nil {
		return nil, fmt.Errorf("write lock: %w", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	h := &Held{r: r, id: id, lock: doc, okAt: time.Now(), cancel: cancel, done: make(chan struct{}), confirmed: make(chan struct{})}
	go h.refresher(rctx)
	r.guard = h.Valid
	r.held.Store(h)
	return h, nil
}

// confirm is the second check for conflicting locks.
func (h *Held) confirm(ctx context.Context) {
	h.mu.Lock()
	id, exclusive := h.id, h.lock.Exclusive
	h.mu.Unlock()
	h.confirmErr = h.r.checkLocks(ctx, exclusive, id)
	close(h.confirmed)
}

func (h *Held) refresher(ctx context.Context) {
	defer close(h.done)
	t := time.NewTicker(RefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = h.refresh(ctx)
		}
	}
}

// refresh writes a new lock file with the current time and removes the
// old one.
func (h *Held) refresh(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lost != nil {
		return h.lost
	}
	_, err := h.r.be.Stat(ctx, backend.Handle{Type: backend.LockFile, Name: h.id.String()})
	if backend.IsNotExist(err) {
		h.lost = fmt.Errorf("the repository lock %s was removed by someone else (holiday repo unlock, or a node that judged it stale); another command may hold the repository now — stopping before writing index or snapshot", h.id.Str())
		h.r.abortWriter(h.lost)
		return h.lost
	}
	doc := h.lock
	doc.Time = time.Now()
	b, _ := json.Marshal(doc)
	id, err := h.r.SaveUnpacked(ctx, backend.LockFile, b)
	if err != nil {
		return err
	}
	_ = h.r.be.Remove(ctx, backend.Handle{Type: backend.LockFile, Name: h.id.String()})
	h.id, h.lock, h.okAt = id, doc, time.Now()
	return nil
}

// Valid reports whether the lock is confirmed (no conflicting lock) and
// still fresh enough to rely on; it waits for the confirmation.
func (h *Held) Valid() error {
	<-h.confirmed
	if h.confirmErr != nil {
		return h.confirmErr
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lost != nil {
		return h.lost
	}
	if time.Since(h.okAt) > StaleAfter-RefreshEvery {
		return fmt.Errorf("the repository lock could not be refreshed since %s; it may have been taken over — stopping before writing index or snapshot", h.okAt.Format(time.RFC3339))
	}
	return nil
}

// Unlock stops refreshing and removes the lock file.
func (h *Held) Unlock(ctx context.Context) error {
	h.cancel()
	<-h.done
	<-h.confirmed // its check must not run after the lock is gone
	h.r.guard = nil
	h.r.held.CompareAndSwap(h, nil)
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.r.be.Remove(ctx, backend.Handle{Type: backend.LockFile, Name: h.id.String()})
}

// RemoveStaleLocks removes stale locks (all locks when all is set) and
// returns how many it removed.
func (r *Repository) RemoveStaleLocks(ctx context.Context, all bool) (int, error) {
	var ids []ID
	if err := r.List(ctx, backend.LockFile, func(id ID, _ int64) error {
		ids = append(ids, id)
		return nil
	}); err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if !all {
			l, err := r.LoadLock(ctx, id)
			if err == nil && !l.Stale(r.node()) {
				continue
			}
		}
		if err := r.be.Remove(ctx, backend.Handle{Type: backend.LockFile, Name: id.String()}); err == nil {
			n++
		}
	}
	return n, nil
}
