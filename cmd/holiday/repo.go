package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/local"
	"github.com/holiday-ops/holiday/backup/checker"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
	"github.com/holiday-ops/holiday/internal/exitcode"
)

type repoFlags struct {
	repo         string
	passwordFile string
	json         bool
	quiet        bool
}

func newRepoCmd() *cobra.Command {
	f := &repoFlags{}
	cmd := &cobra.Command{
		Use:   "repo",
		Short: "Work with a backup repository (restic format v2; stock restic opens it too)",
		Long: `A backup repository in restic's format, version 2. Stock restic can open,
check and restore it. The repository is --repo or $HOLIDAY_REPOSITORY; the
password comes from --password-file, $HOLIDAY_PASSWORD_FILE or
$HOLIDAY_PASSWORD.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVarP(&f.repo, "repo", "r", "", "repository directory (default $HOLIDAY_REPOSITORY)")
	pf.StringVar(&f.passwordFile, "password-file", "", "file holding the repository password (default $HOLIDAY_PASSWORD_FILE)")
	pf.BoolVar(&f.json, "json", false, "machine-readable output on stdout")
	pf.BoolVarP(&f.quiet, "quiet", "q", false, "no progress on stderr")
	cmd.AddCommand(newRepoInitCmd(f), newRepoKeyCmd(f), newRepoBackupCmd(f), newRepoSnapshotsCmd(f),
		newRepoLsCmd(f), newRepoDumpCmd(f), newRepoRestoreCmd(f), newRepoCheckCmd(f), newRepoUnlockCmd(f))
	return cmd
}

func (f *repoFlags) location() (string, error) {
	loc := f.repo
	if loc == "" {
		loc = os.Getenv("HOLIDAY_REPOSITORY")
	}
	if loc == "" {
		return "", exitcode.WithHint(exitcode.Usage, errors.New("no repository given"), "pass --repo DIR or set HOLIDAY_REPOSITORY")
	}
	return strings.TrimPrefix(loc, "local:"), nil
}

func readPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", exitcode.With(exitcode.Usage, fmt.Errorf("password file: %w", err))
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func (f *repoFlags) password() (string, error) {
	file := f.passwordFile
	if file == "" {
		file = os.Getenv("HOLIDAY_PASSWORD_FILE")
	}
	if file != "" {
		return readPasswordFile(file)
	}
	// an empty password is never valid (init refuses one), so an empty
	// variable counts as unset
	if pw := os.Getenv("HOLIDAY_PASSWORD"); pw != "" {
		return pw, nil
	}
	return "", exitcode.WithHint(exitcode.Usage, errors.New("no repository password given"),
		"pass --password-file FILE, or set HOLIDAY_PASSWORD_FILE or HOLIDAY_PASSWORD")
}

// open opens the repository; lock is "" (none), "shared" or "exclusive".
func (f *repoFlags) open(ctx context.Context, lock string) (*repo.Repository, func(), error) {
	loc, err := f.location()
	if err != nil {
		return nil, nil, err
	}
	pw, err := f.password()
	if err != nil {
		return nil, nil, err
	}
	be, err := local.Open(loc)
	if err != nil {
		return nil, nil, exitcode.WithHint(exitcode.Usage, err, "check --repo; `holiday repo init` creates a repository")
	}
	r, err := repo.Open(ctx, be, pw)
	switch {
	case errors.Is(err, repo.ErrWrongPassword):
		return nil, nil, exitcode.WithHint(exitcode.Usage, fmt.Errorf("open repository %s: %w", loc, err), "check the password file or HOLIDAY_PASSWORD")
	case errors.Is(err, repo.ErrNoRepository):
		return nil, nil, exitcode.WithHint(exitcode.Usage, fmt.Errorf("open repository %s: %w", loc, err), "`holiday repo init` creates a repository")
	case err != nil:
		return nil, nil, fmt.Errorf("open repository %s: %w", loc, err)
	}
	release := func() {}
	if lock != "" {
		h, err := r.Lock(ctx, lock == "exclusive")
		if err != nil {
			return nil, nil, err
		}
		release = func() { _ = h.Unlock(context.WithoutCancel(ctx)) }
	}
	return r, release, nil
}

func (f *repoFlags) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newRepoInitCmd(f *repoFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Create a new repository",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			loc, err := f.location()
			if err != nil {
				return err
			}
			pw, err := f.password()
			if err != nil {
				return err
			}
			if pw == "" {
				return exitcode.With(exitcode.Usage, errors.New("refusing an empty password"))
			}
			be, err := local.Create(loc)
			if err != nil {
				return err
			}
			r, err := repo.Init(ctx, be, pw)
			if err != nil {
				return fmt.Errorf("init repository %s: %w", loc, err)
			}
			if f.json {
				return printJSON(cmd.OutOrStdout(), map[string]string{"id": r.Config().ID, "repository": loc, "key": r.KeyName()})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created repository %s at %s\n", r.Config().ID[:10], loc)
			fmt.Fprintf(cmd.ErrOrStderr(), "IMPORTANT: losing the only password loses every backup in this repository.\n"+
				"Add a second key now and keep its password somewhere else (a safe, another site):\n"+
				"  holiday repo key add --repo %s --new-password-file FILE\n", loc)
			return nil
		},
	}
}

func newRepoKeyCmd(f *repoFlags) *cobra.Command {
	key := &cobra.Command{Use: "key", Short: "Manage the passwords (keys) that open the repository"}
	var newPwFile, user, host string
	add := &cobra.Command{
		Use:   "add",
		Short: "Add a key with a new password",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if newPwFile == "" {
				return exitcode.With(exitcode.Usage, errors.New("--new-password-file is required"))
			}
			npw, err := readPasswordFile(newPwFile)
			if err != nil {
				return err
			}
			if npw == "" {
				return exitcode.With(exitcode.Usage, errors.New("refusing an empty password"))
			}
			r, release, err := f.open(cmd.Context(), "shared")
			if err != nil {
				return err
			}
			defer release()
			name, err := r.AddKey(cmd.Context(), npw, user, host)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added key %s\n", name[:8])
			return nil
		},
	}
	add.Flags().StringVar(&newPwFile, "new-password-file", "", "file holding the new key's password")
	add.Flags().StringVar(&user, "user", "", "user name recorded in the key (default: current user)")
	add.Flags().StringVar(&host, "host", "", "host name recorded in the key (default: this host)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the keys",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, release, err := f.open(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer release()
			keys, err := r.ListKeys(cmd.Context())
			if err != nil {
				return err
			}
			if f.json {
				type k struct {
					ID       string    `json:"id"`
					Current  bool      `json:"current"`
					UserName string    `json:"userName"`
					HostName string    `json:"hostName"`
					Created  time.Time `json:"created"`
				}
				var out []k
				for _, x := range keys {
					out = append(out, k{x.Name, x.Current, x.Username, x.Hostname, x.Created})
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, " %-10s %-12s %-20s %s\n", "ID", "User", "Host", "Created")
			for _, x := range keys {
				mark := " "
				if x.Current {
					mark = "*"
				}
				fmt.Fprintf(w, "%s%-10s %-12s %-20s %s\n", mark, x.Name[:8], x.Username, x.Hostname, x.Created.Format("2006-01-02 15:04:05"))
			}
			return nil
		},
	}
	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Remove a key (not the one in use)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, release, err := f.open(cmd.Context(), "exclusive")
			if err != nil {
				return err
			}
			defer release()
			id, err := r.FindID(cmd.Context(), backend.KeyFile, strings.ToLower(args[0]))
			if err != nil {
				return exitcode.With(exitcode.Usage, err)
			}
			if err := r.RemoveKey(cmd.Context(), id.String()); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed key %s\n", id.Str())
			return nil
		},
	}
	key.AddCommand(add, list, remove)
	return key
}

// parseSize reads 4M, 1MiB, 1048576 and the like.
func parseSize(s string) (int, error) {
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

func newRepoBackupCmd(f *repoFlags) *cobra.Command {
	var tags []string
	var blockSize, stdinName, host string
	var force bool
	cmd := &cobra.Command{
		Use:   "backup PATH... | backup - --stdin-filename NAME",
		Short: "Back up files and folders, or a stream on stdin, into a new snapshot",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// A backup's live heap is mostly large reused buffers (~70 MiB;
			// the index lives outside the heap); the default GOGC=100 would
			// let garbage double it before a collection. A soft limit of
			// 100 MiB and GOGC=50 keep peak RSS near 100 MiB for no
			// measurable CPU; both yield to GOGC/GOMEMLIMIT if set.
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(50)
			}
			if os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(100 << 20)
			}
			opts := archiver.Options{Tags: tags, Hostname: host, Log: f.logger(), ProgramVersion: "holiday " + version}
			if blockSize != "" {
				n, err := parseSize(blockSize)
				if err == nil && n < archiver.MinBlockSize {
					err = fmt.Errorf("--block-size %s is below the minimum of 1 MiB", blockSize)
				}
				if err != nil {
					return exitcode.With(exitcode.Usage, err)
				}
				opts.BlockSize = n
			}
			stdin := len(args) == 1 && args[0] == "-"
			if stdin && stdinName == "" {
				stdinName = "stdin"
			}
			if !f.quiet && !f.json {
				opts.Progress = func(s archiver.Stats) {
					fmt.Fprintf(cmd.ErrOrStderr(), "\r%d files, %s read, %s new  ", s.Files, human(s.BytesRead), human(s.BytesAdded))
				}
			}
			r, release, err := f.open(ctx, "shared")
			if err != nil {
				return err
			}
			defer release()
			if err := r.LoadIndex(ctx); err != nil {
				return err
			}
			if !stdin && !force {
				if opts.Parent, err = archiver.FindParent(ctx, r, host, args); err != nil {
					return err
				}
			}
			var sn *repo.Snapshot
			var st archiver.Stats
			if stdin {
				sn, st, err = archiver.BackupReader(ctx, r, cmd.InOrStdin(), stdinName, opts)
			} else {
				sn, st, err = archiver.Backup(ctx, r, args, opts)
			}
			if opts.Progress != nil {
				fmt.Fprintln(cmd.ErrOrStderr())
			}
			if sn == nil {
				return err
			}
			if f.json {
				_ = printJSON(cmd.OutOrStdout(), map[string]any{"snapshot_id": sn.ID.String(), "files": st.Files, "unchanged_files": st.Unchanged, "dirs": st.Dirs,
					"bytes_read": st.BytesRead, "bytes_added": st.BytesAdded, "bytes_stored": st.BytesStored,
					"seconds": st.Elapsed.Seconds(), "unreadable": st.Unreadable})
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "snapshot %s saved: %d files, %d dirs, %s read, %s new (%s stored) in %.1fs\n",
					sn.ID.Str(), st.Files, st.Dirs, human(st.BytesRead), human(st.BytesAdded), human(st.BytesStored), st.Elapsed.Seconds())
			}
			return err
		},
	}
	cmd.Flags().StringSliceVar(&tags, "tag", nil, "tag the snapshot (repeatable)")
	cmd.Flags().StringVar(&blockSize, "block-size", "", "fixed-size blocks (≥ 1MiB, e.g. 4MiB) instead of content-defined chunks, for disk images")
	cmd.Flags().StringVar(&stdinName, "stdin-filename", "", "file name for data read from stdin (with PATH -)")
	cmd.Flags().StringVar(&host, "host", "", "host name recorded in the snapshot (default: this host)")
	cmd.Flags().BoolVar(&force, "force", false, "read every file, even those unchanged since the last snapshot of these paths")
	return cmd
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func newRepoSnapshotsCmd(f *repoFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "snapshots",
		Short: "List snapshots",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, release, err := f.open(ctx, "")
			if err != nil {
				return err
			}
			defer release()
			sns, err := r.Snapshots(ctx, func(id repo.ID, err error) {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: snapshot %s cannot be read: %v\n", id.Str(), err)
			})
			if err != nil {
				return err
			}
			if f.json {
				type js struct {
					*repo.Snapshot
					ID      string `json:"id"`
					ShortID string `json:"short_id"`
				}
				out := []js{}
				for _, s := range sns {
					out = append(out, js{s, s.ID.String(), s.ID.Str()})
				}
				return printJSON(cmd.OutOrStdout(), out)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "%-8s  %-19s  %-16s  %-20s  %s\n", "ID", "Time", "Host", "Tags", "Paths")
			for _, s := range sns {
				fmt.Fprintf(w, "%-8s  %-19s  %-16s  %-20s  %s\n", s.ID.Str(), s.Time.Local().Format("2006-01-02 15:04:05"), s.Hostname, strings.Join(s.Tags, ","), strings.Join(s.Paths, " "))
			}
			fmt.Fprintf(w, "%d snapshots\n", len(sns))
			return nil
		},
	}
}

func loadSnapshotAndIndex(ctx context.Context, r *repo.Repository, s string) (*repo.Snapshot, error) {
	sn, err := r.FindSnapshot(ctx, s)
	if err != nil {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("snapshot %s: %w", s, err))
	}
	if err := r.LoadIndex(ctx); err != nil {
		return nil, err
	}
	return sn, nil
}

func newRepoLsCmd(f *repoFlags) *cobra.Command {
	var long bool
	cmd := &cobra.Command{
		Use:   "ls SNAPSHOT [PATH]",
		Short: "List the files in a snapshot (SNAPSHOT: ID, unique prefix or latest)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, release, err := f.open(ctx, "")
			if err != nil {
				return err
			}
			defer release()
			sn, err := loadSnapshotAndIndex(ctx, r, args[0])
			if err != nil {
				return err
			}
			prefix := "/"
			if len(args) == 2 {
				prefix = "/" + strings.Trim(args[1], "/")
			}
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			err = restorer.Walk(ctx, r, *sn.Tree, func(p string, n *repo.Node) error {
				if prefix != "/" && p != prefix && !strings.HasPrefix(p, prefix+"/") && !strings.HasPrefix(prefix, p+"/") {
					return nil
				}
				if prefix != "/" && strings.HasPrefix(prefix, p+"/") {
					return nil // an ancestor of PATH: descend, do not print
				}
				switch {
				case f.json:
					// the node's own JSON (restic's fields) with the path in front
					nb, err := json.Marshal(n)
					if err != nil {
						return err
					}
					pb, _ := json.Marshal(p)
					fmt.Fprintf(w, "{\"path\":%s,%s\n", pb, nb[1:])
					return nil
				case long:
					fmt.Fprintf(w, "%v %5d %5d %12d %s %s\n", modeString(n), n.UID, n.GID, n.Size, n.ModTime.Format("2006-01-02 15:04:05"), strconv.Quote(p))
				default:
					fmt.Fprintln(w, p)
				}
				return nil
			})
			return err
		},
	}
	cmd.Flags().BoolVarP(&long, "long", "l", false, "long listing")
	return cmd
}

func modeString(n *repo.Node) os.FileMode {
	var t os.FileMode
	switch n.Type {
	case repo.NodeDir:
		t = os.ModeDir
	case repo.NodeSymlink:
		t = os.ModeSymlink
	case repo.NodeDev:
		t = os.ModeDevice
	case repo.NodeCharDev:
		t = os.ModeDevice | os.ModeCharDevice
	case repo.NodeFifo:
		t = os.ModeNamedPipe
	case repo.NodeSocket:
		t = os.ModeSocket
	}
	return t | n.Mode
}

func newRepoDumpCmd(f *repoFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "dump SNAPSHOT FILE",
		Short: "Write one file of a snapshot to stdout",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, release, err := f.open(ctx, "")
			if err != nil {
				return err
			}
			defer release()
			sn, err := loadSnapshotAndIndex(ctx, r, args[0])
			if err != nil {
				return err
			}
			n, err := restorer.FindNode(ctx, r, *sn.Tree, args[1])
			if err != nil {
				return exitcode.With(exitcode.Usage, err)
			}
			w := bufio.NewWriterSize(cmd.OutOrStdout(), 1<<20)
			if err := restorer.Dump(ctx, r, n, w); err != nil {
				return fmt.Errorf("dump %s: %w", args[1], err)
			}
			return w.Flush()
		},
	}
}

func newRepoRestoreCmd(f *repoFlags) *cobra.Command {
	var target string
	var include []string
	cmd := &cobra.Command{
		Use:   "restore SNAPSHOT --target DIR [--include PATH]...",
		Short: "Restore a snapshot, or parts of it, under a folder",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if target == "" {
				return exitcode.With(exitcode.Usage, errors.New("--target is required"))
			}
			r, release, err := f.open(ctx, "")
			if err != nil {
				return err
			}
			defer release()
			sn, err := loadSnapshotAndIndex(ctx, r, args[0])
			if err != nil {
				return err
			}
			start := time.Now()
			st, err := restorer.Restore(ctx, r, *sn.Tree, target, restorer.Options{
				Include: include,
				Warn: func(p string, err error) {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s: %v\n", p, err)
				},
			})
			if f.json {
				_ = printJSON(cmd.OutOrStdout(), map[string]any{"snapshot_id": sn.ID.String(), "files": st.Files, "dirs": st.Dirs, "others": st.Others, "bytes": st.Bytes, "errors": st.Errors, "seconds": time.Since(start).Seconds()})
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "restored snapshot %s to %s: %d files, %d dirs, %d others, %s in %.1fs\n",
					sn.ID.Str(), target, st.Files, st.Dirs, st.Others, human(st.Bytes), time.Since(start).Seconds())
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&target, "target", "t", "", "folder to restore into")
	cmd.Flags().StringSliceVar(&include, "include", nil, "restore only this snapshot path (repeatable)")
	return cmd
}

func newRepoCheckCmd(f *repoFlags) *cobra.Command {
	var readData bool
	var subset string
	cmd := &cobra.Command{
		Use:   "check [--read-data | --read-data-subset N/T]",
		Short: "Verify the repository and name what any damage touches",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
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
			if !f.quiet && !f.json {
				opts.Progress = func(done, total int) {
					fmt.Fprintf(cmd.ErrOrStderr(), "\rread %d of %d packs ", done, total)
					if done == total {
						fmt.Fprintln(cmd.ErrOrStderr())
					}
				}
			}
			r, release, err := f.open(ctx, "shared")
			if err != nil {
				return err
			}
			defer release()
			rep, err := checker.Check(ctx, r, opts)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if f.json {
				_ = printJSON(w, rep)
			} else {
				fmt.Fprintf(w, "%d snapshots, %d packs", rep.Snapshots, rep.Packs)
				if opts.ReadData {
					fmt.Fprintf(w, ", %d packs read (%s)", rep.PacksRead, human(rep.BytesRead))
				}
				fmt.Fprintln(w)
				if len(rep.Unreferenced) > 0 {
					fmt.Fprintf(w, "%d packs are not referenced by any index (left by an interrupted backup; harmless)\n", len(rep.Unreferenced))
				}
				for _, p := range rep.Problems {
					fmt.Fprintf(w, "damaged %s %s: %s\n", p.Kind, p.Object, p.Err)
					for _, h := range p.Hits {
						fmt.Fprintf(w, "    affects %s\n", h)
					}
				}
				if rep.OK() {
					fmt.Fprintln(w, "no errors were found")
				}
			}
			if !rep.OK() {
				return fmt.Errorf("check found %d problems", len(rep.Problems))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&readData, "read-data", false, "read and verify every blob")
	cmd.Flags().StringVar(&subset, "read-data-subset", "", "read and verify the packs of group N of T")
	return cmd
}

func newRepoUnlockCmd(f *repoFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "unlock",
		Short: "Remove stale locks (of dead processes or older than 30 minutes) and a dead writer's temporary files",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, release, err := f.open(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer release()
			n, err := r.RemoveStaleLocks(cmd.Context(), all)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d locks\n", n)
			// temporary files of writers that died (kill -9, power loss)
			if lb, ok := r.Backend().(*local.Local); ok {
				t, err := lb.CleanTemp(repo.StaleAfter)
				if err != nil {
					return err
				}
				if t > 0 {
					fmt.Fprintf(cmd.OutOrStdout(), "removed %d temporary files older than %v from tmp/\n", t, repo.StaleAfter)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "remove-all", false, "remove all locks, also those of live processes")
	return cmd
}
