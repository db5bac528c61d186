package repocmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/local"
	s3be "github.com/holiday-ops/holiday/backup/backend/s3"
	"github.com/holiday-ops/holiday/backup/checker"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
	"github.com/holiday-ops/holiday/internal/exitcode"
)

// This file holds one function per `holiday repo` subcommand, in the
// order of `holiday repo --help`. Each returns an error main can turn
// into an exit code: usage mistakes carry exitcode.Usage.

// InitOptions are the flags of `holiday repo init`.
type InitOptions struct {
	// ObjectLockDays > 0 retains every file but locks for that many
	// days (S3 with Object Lock; a missing bucket is created with it).
	ObjectLockDays int
	// ObjectLockMode is governance (the default) or compliance.
	ObjectLockMode string
}

// Init creates a repository at the Env's location.
func Init(ctx context.Context, e *Env, o InitOptions) error {
	loc, err := e.Location()
	if err != nil {
		return err
	}
	pw, err := e.Password()
	if err != nil {
		return err
	}
	if pw == "" {
		return exitcode.With(exitcode.Usage, errors.New("refusing an empty password"))
	}
	var ro repo.InitOptions
	if o.ObjectLockDays != 0 || o.ObjectLockMode != "" {
		if !IsS3(loc) {
			return exitcode.With(exitcode.Usage, errors.New("--object-lock-days needs an s3: repository (a bucket with Object Lock)"))
		}
		if o.ObjectLockDays < 1 {
			return exitcode.With(exitcode.Usage, fmt.Errorf("--object-lock-days %d: want 1 or more", o.ObjectLockDays))
		}
		mode := o.ObjectLockMode
		if mode == "" {
			mode = "governance"
		}
		m, err := s3be.ParseLockMode(mode)
		if err != nil {
			return exitcode.With(exitcode.Usage, err)
		}
		ro.ObjectLock = &repo.ObjectLock{Mode: string(m), Days: o.ObjectLockDays}
		e.S3.ObjectLockBucket = true
	}
	be, err := e.openBackend(ctx, loc, true)
	if err != nil {
		return err
	}
	r, err := repo.InitWith(ctx, be, pw, ro)
	if err != nil {
		return fmt.Errorf("init repository %s: %w", loc, err)
	}
	return PrintInit(e.Stdout, e.Stderr, r, loc, e.JSON)
}

// KeyAdd adds a key with the password in newPasswordFile; user and host
// "" mean the current ones.
func KeyAdd(ctx context.Context, e *Env, newPasswordFile, user, host string) error {
	if newPasswordFile == "" {
		return exitcode.With(exitcode.Usage, errors.New("--new-password-file is required"))
	}
	npw, err := ReadPasswordFile(newPasswordFile)
	if err != nil {
		return err
	}
	if npw == "" {
		return exitcode.With(exitcode.Usage, errors.New("refusing an empty password"))
	}
	r, release, err := e.Open(ctx, SharedLock)
	if err != nil {
		return err
	}
	defer release()
	name, err := r.AddKey(ctx, npw, user, host)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "added key %s\n", name[:8])
	return nil
}

// KeyList lists the keys.
func KeyList(ctx context.Context, e *Env) error {
	r, release, err := e.Open(ctx, NoLock)
	if err != nil {
		return err
	}
	defer release()
	keys, err := r.ListKeys(ctx)
	if err != nil {
		return err
	}
	return PrintKeys(e.Stdout, keys, e.JSON)
}

// KeyRemove removes the key whose ID starts with id (not the one in use).
func KeyRemove(ctx context.Context, e *Env, id string) error {
	r, release, err := e.Open(ctx, ExclusiveLock)
	if err != nil {
		return err
	}
	defer release()
	kid, err := r.FindID(ctx, backend.KeyFile, strings.ToLower(id))
	if err != nil {
		return exitcode.With(exitcode.Usage, err)
	}
	if err := r.RemoveKey(ctx, kid.String()); err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "removed key %s\n", kid.Str())
	return nil
}

// BackupOptions are the flags of `holiday repo backup`.
type BackupOptions struct {
	Tags          []string
	BlockSize     string // "" for content-defined chunks, else ≥ 1MiB ("4MiB", "4M", "4194304")
	StdinFilename string // name of the stream when the one path is "-"; "" means "stdin"
	Host          string // "" means this host
	Force         bool   // read every file, even unchanged ones
	Version       string // recorded in the snapshot as "holiday <Version>"
}

// Backup saves paths (or, for the single path "-", Env.Stdin) as a new
// snapshot. A snapshot written despite unreadable files is printed and
// the error about them returned.
func Backup(ctx context.Context, e *Env, paths []string, o BackupOptions) error {
	opts := archiver.Options{Tags: o.Tags, Hostname: o.Host, Log: e.logger(), ProgramVersion: "holiday " + o.Version}
	if o.BlockSize != "" {
		n, err := ParseSize(o.BlockSize)
		if err == nil && n < archiver.MinBlockSize {
			err = fmt.Errorf("--block-size %s is below the minimum of 1 MiB", o.BlockSize)
		}
		if err != nil {
			return exitcode.With(exitcode.Usage, err)
		}
		opts.BlockSize = n
	}
	stdin := len(paths) == 1 && paths[0] == "-"
	stdinName := o.StdinFilename
	if stdin && stdinName == "" {
		stdinName = "stdin"
	}
	if e.progress() {
		opts.Progress = BackupProgress(e.Stderr)
	}
	r, release, err := e.Open(ctx, SharedLockAsync)
	if err != nil {
		return err
	}
	defer release()
	if err := r.LoadIndex(ctx); err != nil {
		return err
	}
	if !stdin && !o.Force {
		if opts.Parent, err = archiver.FindParent(ctx, r, o.Host, paths); err != nil {
			return err
		}
	}
	var sn *repo.Snapshot
	var st archiver.Stats
	if stdin {
		sn, st, err = archiver.BackupReader(ctx, r, e.Stdin, stdinName, opts)
	} else {
		sn, st, err = archiver.Backup(ctx, r, paths, opts)
	}
	if opts.Progress != nil {
		fmt.Fprintln(e.Stderr)
	}
	if sn == nil {
		return err
	}
	_ = PrintBackup(e.Stdout, sn, st, e.JSON)
	return err
}

// ParseSize reads 4M, 1MiB, 1048576 and the like.
func ParseSize(s string) (int, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	mult := 1
	for _, x := range []struct {
		suf string
		m   int
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(u, x.suf) {
			u, mult = strings.TrimSuffix(u, x.suf), x.m
			break
		}
	}
	n, err := strconv.Atoi(u)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * mult, nil
}

// Snapshots lists the snapshots; one that cannot be read is a warning on
// Stderr, not an error.
func Snapshots(ctx context.Context, e *Env) error {
	r, release, err := e.Open(ctx, NoLock)
	if err != nil {
		return err
	}
	defer release()
	sns, err := r.Snapshots(ctx, func(id repo.ID, err error) {
		fmt.Fprintf(e.Stderr, "warning: snapshot %s cannot be read: %v\n", id.Str(), err)
	})
	if err != nil {
		return err
	}
	return PrintSnapshots(e.Stdout, sns, e.JSON)
}

// Ls lists the files of snapshot under path ("" for all), long or short
// (JSON with Env.JSON).
func Ls(ctx context.Context, e *Env, snapshot, path string, long bool) error {
	r, release, err := e.Open(ctx, NoLock)
	if err != nil {
		return err
	}
	defer release()
	sn, err := loadSnapshotAndIndex(ctx, r, snapshot)
	if err != nil {
		return err
	}
	prefix := "/"
	if path != "" {
		prefix = "/" + strings.Trim(path, "/")
	}
	format := LsShort
	switch {
	case e.JSON:
		format = LsJSON
	case long:
		format = LsLong
	}
	w := bufio.NewWriter(e.Stdout)
	defer w.Flush()
	return restorer.Walk(ctx, r, *sn.Tree, func(p string, n *repo.Node) error {
		if prefix != "/" && p != prefix && !strings.HasPrefix(p, prefix+"/") && !strings.HasPrefix(prefix, p+"/") {
			return nil
		}
		if prefix != "/" && strings.HasPrefix(prefix, p+"/") {
			return nil // an ancestor of PATH: descend, do not print
		}
		return PrintLsEntry(w, p, n, format)
	})
}

// Dump writes one file of snapshot to Stdout.
func Dump(ctx context.Context, e *Env, snapshot, file string) error {
	r, release, err := e.Open(ctx, NoLock)
	if err != nil {
		return err
	}
	defer release()
	sn, err := loadSnapshotAndIndex(ctx, r, snapshot)
	if err != nil {
		return err
	}
	n, err := restorer.FindNode(ctx, r, *sn.Tree, file)
	if err != nil {
		return exitcode.With(exitcode.Usage, err)
	}
	w := bufio.NewWriterSize(e.Stdout, 1<<20)
	if err := restorer.Dump(ctx, r, n, w); err != nil {
		return fmt.Errorf("dump %s: %w", file, err)
	}
	return w.Flush()
}

// Restore restores snapshot (only the include paths, if any) under
// target. Files that could not be restored are warnings on Stderr; the
// summary is printed even then.
func Restore(ctx context.Context, e *Env, snapshot, target string, include []string) error {
	if target == "" {
		return exitcode.With(exitcode.Usage, errors.New("--target is required"))
	}
	r, release, err := e.Open(ctx, NoLock)
	if err != nil {
		return err
	}
	defer release()
	sn, err := loadSnapshotAndIndex(ctx, r, snapshot)
	if err != nil {
		return err
	}
	start := time.Now()
	st, err := restorer.Restore(ctx, r, *sn.Tree, target, restorer.Options{
		Include: include,
		Warn: func(p string, err error) {
			fmt.Fprintf(e.Stderr, "warning: %s: %v\n", p, err)
		},
	})
	_ = PrintRestore(e.Stdout, sn, target, st, time.Since(start), e.JSON)
	return err
}

// Check verifies the repository: its structure, and with readData every
// byte, or with subset "N/T" the packs of group N of T. Damage found is
// an error (after the report).
func Check(ctx context.Context, e *Env, readData bool, subset string) error {
	opts := checker.Options{ReadData: readData}
	if subset != "" {
		a, b, ok := strings.Cut(subset, "/")
		n, err1 := strconv.Atoi(a)
		t, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || n < 1 || t < 1 || n > t || t > 256 {
			return exitcode.With(exitcode.Usage, fmt.Errorf("--read-data-subset %q: want N/T with 1 ≤ N ≤ T ≤ 256", subset))
		}
		opts.ReadData, opts.SubsetN, opts.SubsetT = true, n, t
	}
	if e.progress() {
		opts.Progress = CheckProgress(e.Stderr)
	}
	r, release, err := e.Open(ctx, SharedLockAsync)
	if err != nil {
		return err
	}
	defer release()
	rep, err := checker.Check(ctx, r, opts)
	if err != nil {
		return err
	}
	if err := r.LockValid(); err != nil {
		return fmt.Errorf("check ran beside a conflicting lock; its findings are not reported: %w", err)
	}
	im, err := r.Immutability(ctx, time.Now())
	if err != nil {
		// the check itself is done; say what could not be read
		fmt.Fprintf(e.Stderr, "warning: cannot tell whether the repository is immutable (Object Lock): %v\n", err)
		im = &repo.Immutability{}
	}
	if e.JSON {
		_ = PrintJSON(e.Stdout, struct {
			*checker.Report
			Immutability *repo.Immutability `json:"immutability"`
		}{rep, im})
	} else {
		_ = PrintCheck(e.Stdout, rep, opts.ReadData, false)
		PrintImmutability(e.Stdout, im, time.Now())
	}
	if !rep.OK() {
		return fmt.Errorf("check found %d problems", len(rep.Problems))
	}
	return nil
}

// Unlock removes stale locks (all locks with all) and the temporary files
// of writers that died.
func Unlock(ctx context.Context, e *Env, all bool) error {
	r, release, err := e.Open(ctx, NoLock)
	if err != nil {
		return err
	}
	defer release()
	n, err := r.RemoveStaleLocks(ctx, all)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.Stdout, "removed %d locks\n", n)
	// temporary files of writers that died (kill -9, power loss)
	if lb, ok := r.Backend().(*local.Local); ok {
		t, err := lb.CleanTemp(repo.StaleAfter)
		if err != nil {
			return err
		}
		if t > 0 {
			fmt.Fprintf(e.Stdout, "removed %d temporary files older than %v from tmp/\n", t, repo.StaleAfter)
		}
	}
	return nil
}

// ObjectLockState opens the repository without a lock and reads its
// Object Lock state the cheap way (repo.ObjectLockState): what `holiday
// plan` reports. An error carries the operator's hint
// (exitcode.HintOf), as Open gives it.
func ObjectLockState(ctx context.Context, e *Env) (*repo.Immutability, error) {
	r, release, err := e.Open(ctx, NoLock)
	if err != nil {
		return nil, err
	}
	defer release()
	im, err := r.ObjectLockState(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the Object Lock state: %w", err)
	}
	return im, nil
}
