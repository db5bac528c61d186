// Package devicecmd is what the `holiday devices` subcommands do, below
// their flags: back up a plan's devices into the repository and print a
// summary, diff two stored configs, show one. Everything printed goes
// through device.Mask unless the operator explicitly asked to reveal.
//
// cmd/holiday/devices.go turns the plan's entries into device.Targets
// and calls one function here. It must never import anything of
// holiday's above backup.
package devicecmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/holiday-ops/holiday/backup/device"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/repocmd"
	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/internal/sshx"
)

// Backup reads every target in parallel and stores each complete config
// as a kind:device snapshot. A line per device goes to Stderr as it
// finishes, a summary table to Stdout. Some devices failing is exit code
// 2 (the others are stored); none stored at all too.
func Backup(ctx context.Context, e *repocmd.Env, targets []device.Target, o device.BackupOptions) error {
	if len(targets) == 0 {
		return exitcode.WithHint(exitcode.Usage, errors.New("the plan has no devices"), "list them under devices: in the plan")
	}
	r, release, err := e.Open(ctx, repocmd.SharedLockAsync)
	if err != nil {
		return err
	}
	defer release()
	if err := r.LoadIndex(ctx); err != nil {
		return err
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(e.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if !e.Quiet {
		done := 0
		o.Done = func(r device.Result) {
			done++
			fmt.Fprintf(e.Stderr, "[%d/%d] %s\n", done, len(targets), line(r))
			if h := sshx.HintOf(r.Err); h != "" {
				fmt.Fprintf(e.Stderr, "      hint: %s\n", h)
			}
		}
	}
	res := device.BackupAll(ctx, r, targets, o)
	if err := PrintSummary(e.Stdout, res); err != nil {
		return err
	}
	failed, saveFailed := 0, 0
	for _, x := range res {
		switch {
		case x.Err != nil:
			failed++
		case x.Fetched.SaveErr != nil:
			saveFailed++
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	switch {
	case failed > 0:
		return exitcode.WithHint(exitcode.HostsFailed,
			fmt.Errorf("%d of %d device%s NOT backed up", failed, len(res), plural(len(res))),
			"each failed device's line above says why; the others are stored")
	case saveFailed > 0:
		return exitcode.WithHint(exitcode.HostsFailed,
			fmt.Errorf("%d of %d device%s backed up but NOT SAVED to startup", saveFailed, len(res), plural(len(res))),
			"their running configs are stored; a reboot would lose the unsaved changes: save them on the console")
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// line is one device's outcome in a sentence.
func line(r device.Result) string {
	if r.Err != nil {
		return fmt.Sprintf("%s (%s): FAILED after %s: %v", r.Device, r.Model, r.Elapsed.Round(time.Millisecond), r.Err)
	}
	s := fmt.Sprintf("%s (%s): stored as snapshot %s, %d bytes, %s", r.Device, r.Model, r.Snapshot.ID.Str(),
		len(r.Fetched.Config), r.Elapsed.Round(time.Millisecond))
	if n := notes(r); n != "" {
		s += "; " + n
	}
	return s
}

// notes says what an operator should know besides success: unsaved
// changes, saves, warnings.
func notes(r device.Result) string {
	f := r.Fetched
	if f == nil {
		return ""
	}
	var out []string
	switch {
	case f.SaveErr != nil:
		out = append(out, "SAVE FAILED: "+f.SaveErr.Error())
	case f.Unsaved == device.UnsavedFound && f.Saved:
		out = append(out, "had UNSAVED changes, now saved")
	case f.Unsaved == device.UnsavedFound:
		out = append(out, "has UNSAVED changes (running differs from startup; save: true saves them)")
	case f.Saved:
		out = append(out, "saved")
	}
	if f.SaveSkipped != "" && f.SaveErr == nil {
		out = append(out, f.SaveSkipped)
	}
	out = append(out, f.Warnings...)
	return strings.Join(out, "; ")
}

// PrintSummary writes one row per device and a closing count.
func PrintSummary(w io.Writer, res []device.Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEVICE\tMODEL\tRESULT\tSNAPSHOT\tUNSAVED\tNOTES")
	ok := 0
	for _, r := range res {
		if r.Err != nil {
			fmt.Fprintf(tw, "%s\t%s\tFAILED\t-\t-\t%s\n", r.Device, r.Model, oneLine(r.Err.Error()))
			continue
		}
		ok++
		result := "stored"
		if r.Fetched.SaveErr != nil {
			result = "stored, NOT SAVED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Device, r.Model, result, r.Snapshot.ID.Str(), r.Fetched.Unsaved, notes(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	line := fmt.Sprintf("devices: %d of %d backed up", ok, len(res))
	if n := len(res) - ok; n > 0 {
		line += fmt.Sprintf(", %d NOT BACKED UP", n)
	}
	notSaved := 0
	for _, r := range res {
		if r.Err == nil && r.Fetched.SaveErr != nil {
			notSaved++
		}
	}
	if notSaved > 0 {
		line += fmt.Sprintf(", %d NOT SAVED to startup", notSaved)
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// findSnapshot returns the device's snapshot for id ("" or "latest": the
// newest) and the one before it.
func findSnapshot(ctx context.Context, r *repo.Repository, dev, id string) (sn, prev *repo.Snapshot, err error) {
	sns, err := device.Snapshots(ctx, r, dev)
	if err != nil {
		return nil, nil, err
	}
	if len(sns) == 0 {
		return nil, nil, exitcode.WithHint(exitcode.Usage, fmt.Errorf("the repository holds no snapshot of device %s", dev),
			"holiday devices backup -f PLAN stores one; device names are the plan's")
	}
	i := len(sns) - 1
	if id != "" && id != "latest" {
		i = -1
		for j, s := range sns {
			if strings.HasPrefix(s.ID.String(), strings.ToLower(id)) {
				if i >= 0 {
					return nil, nil, exitcode.With(exitcode.Usage, fmt.Errorf("snapshot prefix %s is ambiguous for device %s", id, dev))
				}
				i = j
			}
		}
		if i < 0 {
			return nil, nil, exitcode.WithHint(exitcode.Usage, fmt.Errorf("no snapshot %s of device %s", id, dev),
				"holiday repo snapshots lists them; a device's have its name as hostname and the tag kind:device")
		}
	}
	if i > 0 {
		prev = sns[i-1]
	}
	return sns[i], prev, nil
}

// Diff prints what changed in dev's config, normalized and masked: from
// snapshot (its ID or prefix) to the newest one, or, without snapshot,
// from the one before the newest to the newest.
func Diff(ctx context.Context, e *repocmd.Env, dev, snapshot string) error {
	r, release, err := e.Open(ctx, repocmd.NoLock)
	if err != nil {
		return err
	}
	defer release()
	if err := r.LoadIndex(ctx); err != nil {
		return err
	}
	newest, prev, err := findSnapshot(ctx, r, dev, "latest")
	if err != nil {
		return err
	}
	from := prev
	if snapshot != "" {
		if from, _, err = findSnapshot(ctx, r, dev, snapshot); err != nil {
			return err
		}
	}
	if from == nil {
		return exitcode.With(exitcode.Usage, fmt.Errorf("device %s has only one snapshot (%s): nothing to compare it with", dev, newest.ID.Str()))
	}
	a, err := device.Load(ctx, r, from)
	if err != nil {
		return err
	}
	b, err := device.Load(ctx, r, newest)
	if err != nil {
		return err
	}
	model := device.ModelOf(newest)
	name := func(sn *repo.Snapshot) string {
		return fmt.Sprintf("%s@%s (%s)", dev, sn.ID.Str(), sn.Time.Local().Format("2006-01-02 15:04"))
	}
	d := device.Diff(model, name(from), a, name(newest), b)
	if d == "" {
		_, err := fmt.Fprintf(e.Stdout, "%s: no changes between %s and %s (volatile lines and re-encrypted secrets ignored)\n",
			dev, from.ID.Str(), newest.ID.Str())
		return err
	}
	_, err = io.WriteString(e.Stdout, d)
	return err
}

// ShowOptions are the flags of `holiday devices show`.
type ShowOptions struct {
	Snapshot string // ID, prefix or "latest"
	// Reveal prints the raw config, secrets included (for pasting back at
	// the console). Confirm must then say yes: cmd asks interactively.
	Reveal  bool
	Confirm func(question string) bool
}

// Show prints a stored config: masked, or raw when revealed and
// confirmed.
func Show(ctx context.Context, e *repocmd.Env, dev string, o ShowOptions) error {
	r, release, err := e.Open(ctx, repocmd.NoLock)
	if err != nil {
		return err
	}
	defer release()
	if err := r.LoadIndex(ctx); err != nil {
		return err
	}
	sn, _, err := findSnapshot(ctx, r, dev, o.Snapshot)
	if err != nil {
		return err
	}
	cfg, err := device.Load(ctx, r, sn)
	if err != nil {
		return err
	}
	if o.Reveal {
		q := fmt.Sprintf("print %s's config from snapshot %s WITH its passwords and keys in clear text?", dev, sn.ID.Str())
		if o.Confirm == nil || !o.Confirm(q) {
			return exitcode.WithHint(exitcode.Usage, errors.New("not confirmed; nothing printed"),
				"--reveal asks on the terminal; without a terminal add --yes")
		}
		_, err = io.WriteString(e.Stdout, cfg)
		return err
	}
	_, err = io.WriteString(e.Stdout, device.Mask(device.ModelOf(sn), cfg))
	return err
}
