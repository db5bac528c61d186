package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/backup/device"
	"github.com/holiday-ops/holiday/backup/device/devicecmd"
	"github.com/holiday-ops/holiday/backup/repocmd"
	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/plans"
)

// devicesFlags are shared by the `holiday devices` subcommands.
type devicesFlags struct {
	plan string
	env  repocmd.Env
}

func newDevicesCmd() *cobra.Command {
	f := &devicesFlags{}
	cmd := &cobra.Command{
		Use:   "devices",
		Short: "Back up, diff and show network device configs (the plan's devices:)",
		Long: `Network devices are read over their own SSH CLIs (cisco-ios, junos,
arista-eos, routeros, fortios, huawei-vrp, h3c-comware). Each raw, complete
config is stored as a kind:device snapshot in the plan's repository; diffs
ignore volatile lines and re-encrypted secrets, and everything shown has its
secrets masked unless --reveal is given and confirmed.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVarP(&f.plan, "file", "f", "", "the plan (its devices, ssh.known_hosts and repository)")
	pf.StringVarP(&f.env.Repo, "repo", "r", "", "repository: a directory or s3:https://host/bucket/prefix (default: the plan's, else $HOLIDAY_REPOSITORY)")
	pf.StringVar(&f.env.PasswordFile, "password-file", "", "file holding the repository password (default: the plan's)")
	pf.BoolVarP(&f.env.Quiet, "quiet", "q", false, "no progress on stderr")
	cmd.AddCommand(newDevicesBackupCmd(f), newDevicesDiffCmd(f), newDevicesShowCmd(f))
	return cmd
}

// load reads the plan (if -f was given) and fills the repository from it
// where the flags left it empty.
func (f *devicesFlags) load(cmd *cobra.Command, need bool) (*plans.Plan, *repocmd.Env, error) {
	e := f.env
	e.Stdin, e.Stdout, e.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	if f.plan == "" {
		if need {
			return nil, nil, &usageError{errors.New("-f PLAN is required")}
		}
		return nil, &e, nil
	}
	p, err := plans.LoadWith(f.plan, plans.Options{CheckFiles: true})
	var es plans.Errors
	if errors.As(err, &es) {
		for _, x := range es {
			fmt.Fprintln(e.Stderr, x)
		}
		return nil, nil, exitcode.WithHint(exitcode.Usage, fmt.Errorf("%s: plan invalid", f.plan), "fix the lines above (holiday plan validate shows the same)")
	} else if err != nil {
		return nil, nil, exitcode.With(exitcode.Usage, err)
	}
	if e.Repo == "" && p.Repository != nil {
		pe := actions.PlanRepoEnv(p.Repository)
		e.Repo, e.S3 = pe.Repo, pe.S3
		if e.PasswordFile == "" {
			e.PasswordFile, e.PasswordEnv = pe.PasswordFile, pe.PasswordEnv
		}
	}
	return p, &e, nil
}

// deviceTargets is actions.DeviceTargets with a usage error.
func deviceTargets(p *plans.Plan, names []string) ([]device.Target, error) {
	t, err := actions.DeviceTargets(p, names)
	if err != nil {
		return nil, &usageError{err}
	}
	return t, nil
}

func newDevicesBackupCmd(f *devicesFlags) *cobra.Command {
	var names []string
	var o device.BackupOptions
	cmd := &cobra.Command{
		Use:   "backup -f PLAN",
		Short: "Read every device's config (saving it first where save: true) and store it",
		Long: `backup reads the plan's devices in parallel. Where a device says save: true,
its running config is saved to startup first with the vendor's dialog; unsaved
changes are reported either way. Each complete config becomes its own
kind:device snapshot (hostname = the device's name). A config without its end
marker is an error, never a short backup; a failing device does not stop the
others. Exit code 2 when some devices were not backed up.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, e, err := f.load(cmd, true)
			if err != nil {
				return err
			}
			targets, err := deviceTargets(p, names)
			if err != nil {
				return err
			}
			po := actions.DeviceOptions(p, "")
			o.KnownHosts, o.Tags = po.KnownHosts, po.Tags
			o.ProgramVersion = "holiday " + version
			return devicecmd.Backup(cmd.Context(), e, targets, o)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&names, "device", nil, "only these devices (repeatable)")
	fl.IntVar(&o.Concurrency, "concurrency", 16, "devices read at once")
	fl.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "per device, from connect to last byte")
	fl.DurationVar(&o.Idle, "idle", 30*time.Second, "how long a device may send nothing while holiday waits")
	fl.DurationVar(&o.ConnectTimeout, "connect-timeout", 15*time.Second, "TCP connect and SSH handshake")
	fl.BoolVar(&o.AcceptNew, "accept-new-host-keys", false, "add unknown device keys to known_hosts (a changed key is refused regardless)")
	return cmd
}

func newDevicesDiffCmd(f *devicesFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "diff DEVICE [SNAPSHOT]",
		Short: "What changed in a device's config: SNAPSHOT (default: the one before) to the newest",
		Long: `diff compares stored configs of DEVICE as a unified diff, with volatile
lines (timestamps, uptime, change counters) dropped, ciphertext that the
device re-encrypts on every read ignored, and secrets masked. Without
SNAPSHOT it compares the two newest snapshots.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, e, err := f.load(cmd, false)
			if err != nil {
				return err
			}
			snap := ""
			if len(args) == 2 {
				snap = args[1]
			}
			return devicecmd.Diff(cmd.Context(), e, args[0], snap)
		},
	}
}

func newDevicesShowCmd(f *devicesFlags) *cobra.Command {
	var o devicecmd.ShowOptions
	var yes bool
	cmd := &cobra.Command{
		Use:   "show DEVICE [--snapshot ID]",
		Short: "Print a stored device config (secrets masked; --reveal for the raw text)",
		Long: `show prints DEVICE's config from a snapshot (default: the newest) with its
secrets masked. --reveal prints it raw, secrets included, for pasting back at
the device's console; it asks for confirmation on the terminal (--yes
without a terminal).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, e, err := f.load(cmd, false)
			if err != nil {
				return err
			}
			o.Confirm = func(q string) bool {
				if yes {
					return true
				}
				return askYes(cmd.InOrStdin(), cmd.ErrOrStderr(), q)
			}
			return devicecmd.Show(cmd.Context(), e, args[0], o)
		},
	}
	cmd.Flags().StringVar(&o.Snapshot, "snapshot", "latest", "snapshot ID or prefix")
	cmd.Flags().BoolVar(&o.Reveal, "reveal", false, "print secrets in clear text (asks first)")
	cmd.Flags().BoolVar(&yes, "yes", false, "with --reveal: do not ask")
	return cmd
}

// askYes asks q on a terminal and reads the answer; without a terminal
// it says no.
func askYes(in io.Reader, out io.Writer, q string) bool {
	f, ok := in.(*os.File)
	if !ok {
		return false
	}
	// a terminal, not merely a character device (/dev/null is one)
	if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err != nil {
		return false
	}
	fmt.Fprintf(out, "%s [type yes] ", q)
	ans, _ := bufio.NewReader(f).ReadString('\n')
	return strings.TrimSpace(ans) == "yes"
}

// lockdownDevices backs up the plan's devices for lockdown run `run`, in
// the background beside the hosts. wait prints their summary (after the
// hosts') and returns the error that carries their exit code; nil when
// the plan has no devices.
func lockdownDevices(cmd *cobra.Command, p *plans.Plan, run string, jsonOut bool) (wait func() error) {
	if len(p.Devices) == 0 {
		return func() error { return nil }
	}
	w := cmd.OutOrStdout()
	if jsonOut {
		w = cmd.ErrOrStderr() // stdout holds the hosts' JSON alone
	}
	if p.Repository == nil {
		return func() error {
			fmt.Fprintf(w, "\ndevices: NOT BACKED UP: the plan names no repository\n")
			return exitcode.WithHint(exitcode.HostsFailed, errors.New("the plan's devices were not backed up"), "add repository: to the plan, then run holiday devices backup -f PLAN")
		}
	}
	targets, err := actions.DeviceTargets(p, nil)
	if err != nil {
		return func() error { return err }
	}
	var out bytes.Buffer
	e := actions.PlanRepoEnv(p.Repository)
	e.Stdin, e.Stdout, e.Stderr, e.Quiet = cmd.InOrStdin(), &out, cmd.ErrOrStderr(), false
	o := actions.DeviceOptions(p, run)
	o.ProgramVersion = "holiday " + version
	done := make(chan error, 1)
	go func() { done <- devicecmd.Backup(cmd.Context(), e, targets, o) }()
	return func() error {
		err := <-done
		fmt.Fprintf(w, "\ndevices (kind:device snapshots, tag run:%s):\n", run)
		w.Write(out.Bytes())
		return err
	}
}
