package repocmd

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/checker"
	"github.com/holiday-ops/holiday/backup/forget"
	"github.com/holiday-ops/holiday/backup/prune"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/restorer"
)

// This file holds the printers: each result as text or, with asJSON, as
// indented JSON. They do no I/O but writing to w. Their text output is
// golden-tested (testdata/*.golden); scripts and operators read it.

// PrintJSON writes v as indented JSON and a newline.
func PrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Human formats a byte count: 512 B, 1.5 KiB, 3.0 MiB, 1.25 GiB.
func Human(n int64) string {
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

// PrintInit reports a new repository on stdout and, unless asJSON, urges
// a second key on stderr.
func PrintInit(stdout, stderr io.Writer, r *repo.Repository, loc string, asJSON bool) error {
	if asJSON {
		return PrintJSON(stdout, map[string]string{"id": r.Config().ID, "repository": loc, "key": r.KeyName()})
	}
	fmt.Fprintf(stdout, "created repository %s at %s\n", r.Config().ID[:10], loc)
	fmt.Fprintf(stderr, "IMPORTANT: losing the only password loses every backup in this repository.\n"+
		"Add a second key now and keep its password somewhere else (a safe, another site):\n"+
		"  holiday repo key add --repo %s --new-password-file FILE\n", loc)
	return nil
}

// PrintKeys lists the keys, the one in use marked with *.
func PrintKeys(w io.Writer, keys []repo.Keys, asJSON bool) error {
	if asJSON {
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
		return PrintJSON(w, out)
	}
	fmt.Fprintf(w, " %-10s %-12s %-20s %s\n", "ID", "User", "Host", "Created")
	for _, x := range keys {
		mark := " "
		if x.Current {
			mark = "*"
		}
		fmt.Fprintf(w, "%s%-10s %-12s %-20s %s\n", mark, x.Name[:8], x.Username, x.Hostname, x.Created.Format("2006-01-02 15:04:05"))
	}
	return nil
}

// PrintSnapshots lists snapshots as a table (times in local time) with a
// count, or as a JSON array of restic's snapshot fields plus id and
// short_id.
func PrintSnapshots(w io.Writer, sns []*repo.Snapshot, asJSON bool) error {
	if asJSON {
		type js struct {
			*repo.Snapshot
			ID      string `json:"id"`
			ShortID string `json:"short_id"`
		}
		out := []js{}
		for _, s := range sns {
			out = append(out, js{s, s.ID.String(), s.ID.Str()})
		}
		return PrintJSON(w, out)
	}
	fmt.Fprintf(w, "%-8s  %-19s  %-16s  %-20s  %s\n", "ID", "Time", "Host", "Tags", "Paths")
	for _, s := range sns {
		fmt.Fprintf(w, "%-8s  %-19s  %-16s  %-20s  %s\n", s.ID.Str(), s.Time.Local().Format("2006-01-02 15:04:05"), s.Hostname, strings.Join(s.Tags, ","), strings.Join(s.Paths, " "))
	}
	fmt.Fprintf(w, "%d snapshots\n", len(sns))
	return nil
}

// LsFormat chooses how PrintLsEntry writes one entry.
type LsFormat int

// The ls formats.
const (
	LsShort LsFormat = iota // the path alone
	LsLong                  // mode, uid, gid, size, mtime, quoted path
	LsJSON                  // one JSON object a line: the path, then the node's own (restic's) fields
)

// PrintLsEntry writes one entry of a snapshot listing.
func PrintLsEntry(w io.Writer, p string, n *repo.Node, f LsFormat) error {
	switch f {
	case LsJSON:
		nb, err := json.Marshal(n)
		if err != nil {
			return err
		}
		pb, _ := json.Marshal(p)
		fmt.Fprintf(w, "{\"path\":%s,%s\n", pb, nb[1:])
	case LsLong:
		fmt.Fprintf(w, "%v %5d %5d %12d %s %s\n", ModeString(n), n.UID, n.GID, n.Size, n.ModTime.Format("2006-01-02 15:04:05"), strconv.Quote(p))
	default:
		fmt.Fprintln(w, p)
	}
	return nil
}

// ModeString is the node's type and permission bits as an os.FileMode,
// which prints like ls -l: drwxr-xr-x, Lrwxrwxrwx, …
func ModeString(n *repo.Node) os.FileMode {
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

// PrintBackup summarises a saved snapshot.
func PrintBackup(w io.Writer, sn *repo.Snapshot, st archiver.Stats, asJSON bool) error {
	if asJSON {
		return PrintJSON(w, map[string]any{"snapshot_id": sn.ID.String(), "files": st.Files, "unchanged_files": st.Unchanged, "dirs": st.Dirs,
			"bytes_read": st.BytesRead, "bytes_added": st.BytesAdded, "bytes_stored": st.BytesStored,
			"seconds": st.Elapsed.Seconds(), "unreadable": st.Unreadable})
	}
	_, err := fmt.Fprintf(w, "snapshot %s saved: %d files, %d dirs, %s read, %s new (%s stored) in %.1fs\n",
		sn.ID.Str(), st.Files, st.Dirs, Human(st.BytesRead), Human(st.BytesAdded), Human(st.BytesStored), st.Elapsed.Seconds())
	return err
}

// PrintRestore summarises a restore into target that took elapsed.
func PrintRestore(w io.Writer, sn *repo.Snapshot, target string, st restorer.Stats, elapsed time.Duration, asJSON bool) error {
	if asJSON {
		return PrintJSON(w, map[string]any{"snapshot_id": sn.ID.String(), "files": st.Files, "dirs": st.Dirs, "others": st.Others, "bytes": st.Bytes, "errors": st.Errors, "seconds": elapsed.Seconds()})
	}
	_, err := fmt.Fprintf(w, "restored snapshot %s to %s: %d files, %d dirs, %d others, %s in %.1fs\n",
		sn.ID.Str(), target, st.Files, st.Dirs, st.Others, Human(st.Bytes), elapsed.Seconds())
	return err
}

// PrintCheck writes the check report: counts (with the bytes read when
// data was read), unreferenced packs, each damaged object with what it
// affects, and "no errors were found" when there is no damage.
func PrintCheck(w io.Writer, rep *checker.Report, readData, asJSON bool) error {
	if asJSON {
		return PrintJSON(w, rep)
	}
	fmt.Fprintf(w, "%d snapshots, %d packs", rep.Snapshots, rep.Packs)
	if readData {
		fmt.Fprintf(w, ", %d packs read (%s)", rep.PacksRead, Human(rep.BytesRead))
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
	return nil
}

// BackupProgress returns a progress printer for archiver.Options: one
// line on w, rewritten in place.
func BackupProgress(w io.Writer) func(archiver.Stats) {
	return func(s archiver.Stats) {
		fmt.Fprintf(w, "\r%d files, %s read, %s new  ", s.Files, Human(s.BytesRead), Human(s.BytesAdded))
	}
}

// CheckProgress returns a progress printer for checker.Options: packs
// read so far on one line of w, ended when all are read.
func CheckProgress(w io.Writer) func(done, total int) {
	return func(done, total int) {
		fmt.Fprintf(w, "\rread %d of %d packs ", done, total)
		if done == total {
			fmt.Fprintln(w)
		}
	}
}

// PrintForget lists, per group, the snapshots kept with their reasons
// ("kept: pinned until 2025-01-30") and those removed (or, with dryRun,
// that would be).
func PrintForget(w io.Writer, p forget.Policy, groups []forget.Group, dryRun bool) {
	fmt.Fprintf(w, "applying policy: %s; pinned snapshots are always kept\n", p)
	gone := "removed:"
	if dryRun {
		gone = "would remove:"
	}
	for _, g := range groups {
		fmt.Fprintf(w, "snapshots of host %s, paths %s: keep %d, remove %d\n", g.Host, strings.Join(g.Paths, " "), g.Kept(), len(g.Decisions)-g.Kept())
		for _, d := range g.Decisions {
			s := d.Snapshot
			line := fmt.Sprintf("%s  %s", s.ID.Str(), s.Time.Local().Format("2006-01-02 15:04:05"))
			if d.Keep {
				fmt.Fprintf(w, "  %-13s %s  %s\n", "kept:", line, strings.Join(d.Reasons, ", "))
			} else {
				fmt.Fprintf(w, "  %-13s %s\n", gone, line)
			}
		}
	}
}

// PrintForgetJSON writes ForgetJSON(groups).
func PrintForgetJSON(w io.Writer, groups []forget.Group) error {
	return PrintJSON(w, ForgetJSON(groups))
}

// ForgetJSON is restic-like forget output: per group the host, paths,
// the kept snapshots with reasons and the removed ones.
func ForgetJSON(groups []forget.Group) any {
	type keep struct {
		ID      string   `json:"id"`
		Time    string   `json:"time"`
		Reasons []string `json:"reasons"`
	}
	type group struct {
		Host   string   `json:"host"`
		Paths  []string `json:"paths"`
		Keep   []keep   `json:"keep"`
		Remove []string `json:"remove"`
	}
	out := []group{}
	for _, g := range groups {
		gg := group{Host: g.Host, Paths: g.Paths, Keep: []keep{}, Remove: []string{}}
		for _, d := range g.Decisions {
			if d.Keep {
				gg.Keep = append(gg.Keep, keep{d.Snapshot.ID.String(), d.Snapshot.Time.Format(time.RFC3339), d.Reasons})
			} else {
				gg.Remove = append(gg.Remove, d.Snapshot.ID.String())
			}
		}
		out = append(out, gg)
	}
	return out
}

// PrintPrune reports a prune's plan and, unless it was a dry run, what
// it did.
func PrintPrune(w io.Writer, st prune.Stats, asJSON bool) error {
	if asJSON {
		return PrintJSON(w, st)
	}
	fmt.Fprintf(w, "%d snapshots use %d blobs, %s; %s unused in %d packs\n", st.Snapshots, st.UsedBlobs, Human(st.UsedBytes), Human(st.UnusedBytes), st.Packs)
	repack, del := "repacked", "deleted"
	if st.DryRun {
		repack, del = "would repack", "would delete"
	}
	fmt.Fprintf(w, "%s %d packs (%s kept), %s %d packs (%s), %d of them unreferenced; %s unused left\n",
		repack, st.RepackPacks, Human(st.RepackBytes), del, st.DeletePacks, Human(st.DeleteBytes), st.Unreferenced, Human(st.UnusedAfter))
	if st.RetainedPacks > 0 {
		fmt.Fprintf(w, "left %d packs under Object Lock retention (until %s at the latest)\n", st.RetainedPacks, st.RetainedUntil.UTC().Format(time.RFC3339))
	}
	if !st.DryRun && st.DeletePacks+st.RepackPacks > 0 {
		fmt.Fprintf(w, "wrote %d new packs and %d index files, removed %d old index files\n", st.NewPacks, st.IndexWritten, st.IndexRemoved)
	}
	if st.DryRun {
		fmt.Fprintln(w, "dry run: nothing was changed")
	}
	return nil
}

// PrintImmutability says whether the repository is immutable (Object
// Lock) and until when; nothing for a backend without Object Lock.
func PrintImmutability(w io.Writer, im *repo.Immutability, now time.Time) {
	if !im.Supported {
		return
	}
	if !im.Enabled {
		fmt.Fprintln(w, "not immutable: the bucket has no Object Lock (anyone with these credentials can delete the backups)")
		return
	}
	setting := "new files get no retention (the repository was not initialised with --object-lock-days)"
	if im.Setting != nil {
		setting = fmt.Sprintf("new files retained %d days (%s)", im.Setting.Days, im.Setting.Mode)
	}
	switch {
	case im.Immutable(now):
		fmt.Fprintf(w, "immutable until %s: the config and all %d snapshots are retained (the last until %s); %s\n",
			im.Until.UTC().Format(time.RFC3339), im.Snapshots, im.Latest.UTC().Format(time.RFC3339), setting)
	case im.Snapshots == 0:
		fmt.Fprintf(w, "not immutable yet: no snapshots; %s\n", setting)
	default:
		fmt.Fprintf(w, "not immutable: %d of %d snapshots retained now, config retained until %s; %s\n",
			im.Retained, im.Snapshots, orNone(im.ConfigUntil, now), setting)
	}
}

func orNone(t, now time.Time) string {
	if !t.After(now) {
		return "no longer"
	}
	return t.UTC().Format(time.RFC3339)
}
