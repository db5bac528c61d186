package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/holiday-ops/holiday/internal/atomicfile"
	"github.com/holiday-ops/holiday/internal/journal"
	"github.com/holiday-ops/holiday/plans"
)

// Slot places a step in a host's lockdown order (DESIGN §5). Steps run
// by slot, then in the order given. Slots without a built-in action yet
// (verify backups, device save) are where those issues plug in.
type Slot int

// The lockdown order per host.
//
// SlotHooksAfter holds the `hooks.after` step: journaled first and run by
// its Revert, so it runs last when a host is restored (steps revert in
// reverse). SlotHooksBefore runs `hooks.before` before anything changes.
// SlotBaseline comes after the services stop and the firewall is in
// place, and before power off: the baseline describes the host as it is
// during the break, which is what `holiday check` and restore's gate find
// there (DESIGN §8); taken earlier, every unit lockdown disables and its
// own boot-time firewall unit would read as persistence.
const (
	SlotPreflight Slot = iota
	SlotHooksAfter
	SlotHooksBefore
	SlotBackups
	SlotVerifyBackups
	SlotDeviceSave
	SlotServices
	SlotFirewall
	SlotBaseline
	SlotPower
)

var slotNames = [...]string{"preflight", "hooks-after", "hooks-before", "backups", "verify-backups", "device-save", "services", "firewall", "baseline", "power"}

func (s Slot) String() string {
	if int(s) < len(slotNames) {
		return slotNames[s]
	}
	return fmt.Sprintf("slot%d", int(s))
}

// Step is one action on one host.
type Step struct {
	Slot   Slot
	Kind   string // as registered with RegisterKind
	Target string
	Action Action
}

// ID is the step's stable name in the journal: kind:target.
func (s Step) ID() string { return s.Kind + ":" + s.Target }

// Job is one host's work in a run.
type Job struct {
	Name  string
	Risk  plans.Risk
	Steps []Step
	// Plan is the plan's host the job comes from (nil for jobs built
	// without a plan): admission reads its backups and firewall.
	Plan *plans.Host
	// BackupsNone marks a plan host with `backup: none`: the summary
	// says "backups: NOT TAKEN".
	BackupsNone bool
	// Connect reaches the host (the preflight): dial, deploy the agent.
	// close releases what it opened.
	Connect func(ctx context.Context) (h *Host, close func(), err error)
}

// Progress is one thing that happened, for the terminal.
type Progress struct {
	Host, Step, What string
	Err              error
}

// Options configure a run.
type Options struct {
	RunID    string      // "" : NewRunID()
	StateDir string      // runs live in StateDir/runs/<run-id>/<host>.journal
	Key      journal.Key // the control node's journal key
	Parallel int         // hosts at once; default 32
	// HostTimeout bounds one host's lockdown (default 30m); RevertTimeout
	// bounds the revert on a fresh context after a failure or Ctrl-C
	// (default 5m).
	HostTimeout, RevertTimeout time.Duration
	Log                        *slog.Logger
	Progress                   func(Progress) // may be nil
	// NoHostCopy skips pushing the journal copy to the host.
	NoHostCopy bool
	PlanFile   string // stored in run.json

	// Plan is the plan the jobs come from: a lockdown refuses a plan
	// with lint errors before touching any host. nil for jobs built
	// without one (the steps' own checks still apply).
	Plan *plans.Plan
	// Management are the ranges the control node must reach hosts from
	// (default: the plan's). A host that sees the control node outside
	// them is refused.
	Management []netip.Prefix
	// WithoutBackups: lock down without the plan's backups (the backup
	// steps are left out; the summary says backups: NOT TAKEN).
	WithoutBackups bool
	// WithoutBaseline: lock down without the integrity baseline (the
	// baseline steps are left out; the summary says restore cannot check
	// the host).
	WithoutBaseline bool
	// Backups is the run's open repository for the backup steps; a host
	// with backup sources fails its backup step (and is not locked down)
	// without it.
	Backups *Backups
	// Baselines keeps the baseline steps' snapshots (the same open
	// repository as Backups, tagged with the run and pinned like them);
	// a baseline step fails without it.
	Baselines BaselineStore
	// RepoLock, when set, waits for the second check of the run's
	// repository lock (repo.Repository.LockValid: a lock taken with
	// repo.LockSharedAsync is confirmed in the background while the
	// hosts connect) and says why the repository cannot be relied on.
	// Every host asks it before its first journal entry: a conflicting
	// lock found late (a prune that started at the same moment) refuses
	// the hosts unchanged, before any backup step or service stop.
	RepoLock func() error
	// Wait queues behind another run holding a host, up to this long;
	// 0 refuses a busy host at once.
	Wait time.Duration
	// Salvage (restore): a host journal whose chain is broken is
	// rewritten from the entries whose own MAC verifies
	// (SalvageJournal) and reverted from those, instead of refused.
	Salvage bool
	// Journals, when set, keeps each host's final journal of the run in
	// the plan's repository with the key that verifies it
	// (repojournal.go): a second control node restores from there.
	Journals *RepoJournals

	command string // lockdown, restore: for the locks' holder record
}

func (o *Options) defaults() {
	if o.RunID == "" {
		o.RunID = NewRunID()
	}
	if o.Parallel <= 0 {
		o.Parallel = 32
	}
	if o.HostTimeout <= 0 {
		o.HostTimeout = 30 * time.Minute
	}
	if o.RevertTimeout <= 0 {
		o.RevertTimeout = 5 * time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Management == nil && o.Plan != nil {
		o.Management = Management(o.Plan)
	}
}

func (o *Options) progress(p Progress) {
	if o.Progress != nil {
		o.Progress(p)
	}
}

// NewRunID returns a run ID that sorts by time: 20260205T180000Z-1a2b3c.
func NewRunID() string {
	var b [3]byte
	f, err := os.Open("/dev/urandom")
	if err == nil {
		f.Read(b[:])
		f.Close()
	}
	return time.Now().UTC().Format("20060102T150405Z") + fmt.Sprintf("-%x", b)
}

// runIDPattern is the shape NewRunID makes.
var runIDPattern = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$`)

func clipRun(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// RunDir is where a run's journals live.
func RunDir(stateDir, runID string) string { return filepath.Join(stateDir, "runs", runID) }

// JournalPath is one host's journal of a run.
func JournalPath(stateDir, runID, host string) string {
	return filepath.Join(RunDir(stateDir, runID), host+".journal")
}

// Step statuses in results.
const (
	StepApplied      = "applied"
	StepFailed       = "failed"
	StepReverted     = "reverted"
	StepRevertFailed = "revert-failed"
	StepHolds        = "holds"
	StepDrift        = "drift"
	StepPending      = "not-run"
)

// Host statuses in results.
const (
	HostDone        = "done"        // every step applied (lockdown) / reverted (restore) / holds (status)
	HostFailed      = "failed"      // a step failed and what was started could not all be reverted
	HostReverted    = "reverted"    // a step failed; what was started is reverted
	HostUnreachable = "unreachable" // preflight failed; nothing changed
	HostInterrupted = "interrupted" // Ctrl-C; what was started is reverted
	HostDrift       = "drift"       // status: some change no longer holds
	// HostPoweredOff: restore or status could not reach a host that
	// lockdown powered off — expected, not a failure. PowerOn says how it
	// comes back; once it is on, restore again finishes it.
	HostPoweredOff = "powered-off"
	// HostBusy: another run holds the host (this control node's lock or
	// the host's); nothing was changed on it.
	HostBusy = "busy"
	// HostRefused: lockdown refuses the host (Admission.Refusals, what
	// `holiday plan` prints); nothing was changed on it.
	HostRefused = "refused"
)

// StepResult is one step's outcome.
type StepResult struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Target string `json:"target"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// HostResult is one host's outcome.
type HostResult struct {
	Host            string       `json:"host"`
	Status          string       `json:"status"`
	Error           string       `json:"error,omitempty"`
	Note            string       `json:"note,omitempty"` // e.g. why a done host had nothing to do
	Steps           []StepResult `json:"steps"`
	BackupsNotTaken bool         `json:"backups_not_taken,omitempty"`
	// Snapshots are the backups lockdown took of the host.
	Snapshots []Taken `json:"snapshots,omitempty"`
	// Baseline is the integrity baseline lockdown took of the host.
	Baseline *BaselineDone `json:"baseline,omitempty"`
	// Gate is restore's integrity verdict on the host, taken before
	// anything on it was reverted.
	Gate     *GateVerdict `json:"gate,omitempty"`
	Journal  string       `json:"journal,omitempty"`
	Head     string       `json:"chain_head,omitempty"`
	HostCopy string       `json:"host_copy,omitempty"`
	// PowerOn is set for a host that lockdown powers off (or did): how it
	// is switched on again.
	PowerOn *PowerPrior   `json:"power_on,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// RunResult is a whole run's outcome.
type RunResult struct {
	Run     string        `json:"run"`
	Command string        `json:"command"`
	Hosts   []HostResult  `json:"hosts"`
	Elapsed time.Duration `json:"elapsed_ns"`
	// Offsite says whether the journals were saved to the plan's
	// repository (nil: no repository, or no journal was written).
	Offsite *OffsiteJournals `json:"offsite_journals,omitempty"`
}

// Failed counts hosts whose status is neither done nor powered-off.
func (r RunResult) Failed() int {
	n := 0
	for _, h := range r.Hosts {
		if h.Status != HostDone && h.Status != HostPoweredOff {
			n++
		}
	}
	return n
}

// RunInfo is stored as run.json beside the journals.
type RunInfo struct {
	Run      string            `json:"run"`
	Command  string            `json:"command,omitempty"` // lockdown, isolate or rollback
	PlanFile string            `json:"plan_file,omitempty"`
	Started  time.Time         `json:"started"`
	Hosts    []string          `json:"hosts"`
	Heads    map[string]string `json:"chain_heads,omitempty"`
}

// Lockdown runs every job: hosts in parallel (at most o.Parallel at once,
// high-risk first), each host's steps in slot order, each step journaled
// as intent → apply → result. A failed step reverts, in reverse, what that
// host started; other hosts go on. Cancelling ctx (Ctrl-C) stops applying
// and reverts what each host started on a fresh context.
func Lockdown(ctx context.Context, o Options, jobs []Job) (RunResult, error) {
	return run(ctx, o, jobs, "lockdown")
}

// Isolate runs containment (`holiday isolate`, DESIGN §6.8) exactly as
// Lockdown runs its steps: the same locks, journal and revert; the run is
// recorded with command "isolate" (IsolateJobs builds its jobs).
func Isolate(ctx context.Context, o Options, jobs []Job) (RunResult, error) {
	return run(ctx, o, jobs, "isolate")
}

// Rollback runs `holiday rollback`'s steps (restore builds them: a
// snapshot written back onto a host) as Lockdown runs its own: the run
// ID, the per-host run lock, the journal on the control node and the
// host, and the revert of a step that fails half-way. It is recorded
// with command "rollback"; jobs carry no plan entry, so lockdown's
// admission (backups, services) does not apply.
func Rollback(ctx context.Context, o Options, jobs []Job) (RunResult, error) {
	for i := range jobs {
		jobs[i].Plan = nil
	}
	return run(ctx, o, jobs, "rollback")
}

// Backup runs `holiday backup`: each host's backup step alone, exactly
// the step lockdown runs (no hook, service, firewall or power step),
// under the same per-host run lock, journaled on the control node as a
// run of its own with command "backup". Its snapshots are tagged with the
// run but not pinned: only lockdown pins (Backups.Pin). Nothing is
// written on the hosts, not even a journal copy (the run changes nothing
// there to restore), and the journals are not saved to the repository;
// restore's "latest run" never picks a backup run (Restorable).
func Backup(ctx context.Context, o Options, jobs []Job) (RunResult, error) {
	out := make([]Job, 0, len(jobs))
	for _, j := range jobs {
		var steps []Step
		for _, s := range j.Steps {
			if s.Kind == KindBackup {
				steps = append(steps, s)
			}
		}
		if len(steps) == 0 {
			return RunResult{}, fmt.Errorf("%s: the plan gives this host no backup sources", j.Name)
		}
		j.Steps, j.Plan = steps, nil
		out = append(out, j)
	}
	if o.Backups == nil {
		return RunResult{}, errors.New("no repository is open for this run: the backups cannot be taken")
	}
	if o.Backups.Pin {
		return RunResult{}, errors.New("a backup run does not pin its snapshots: only lockdown does")
	}
	o.WithoutBackups, o.NoHostCopy, o.Journals = false, true, nil
	return run(ctx, o, out, "backup")
}

// Restorable says whether restore's "latest run" may pick a run of this
// command: a rollback is undone by its pre-rollback snapshot and a backup
// run changes nothing, so neither is.
func Restorable(command string) bool { return command != "rollback" && command != "backup" }

func run(ctx context.Context, o Options, jobs []Job, command string) (RunResult, error) {
	o.defaults()
	o.command = command
	if o.Plan != nil {
		if err := CheckPlan(o.Plan); err != nil {
			return RunResult{}, err
		}
	}
	start := time.Now()
	dir := RunDir(o.StateDir, o.RunID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return RunResult{}, err
	}
	jobs = ordered(jobs)
	info := RunInfo{Run: o.RunID, Command: command, PlanFile: o.PlanFile, Started: start.UTC(), Heads: map[string]string{}}
	for _, j := range jobs {
		info.Hosts = append(info.Hosts, j.Name)
	}
	if err := writeJSON(filepath.Join(dir, "run.json"), info); err != nil {
		return RunResult{}, err
	}
	res := RunResult{Run: o.RunID, Command: command, Hosts: make([]HostResult, len(jobs))}
	forEach(ctx, o.Parallel, len(jobs), func(i int) {
		res.Hosts[i] = lockdownHost(ctx, &o, jobs[i])
	})
	for _, h := range res.Hosts {
		info.Heads[h.Host] = h.Head
	}
	if err := writeJSON(filepath.Join(dir, "run.json"), info); err != nil {
		// The journals hold everything restore needs; run.json adds the
		// heads that show a journal cut short later.
		o.Log.Warn("cannot record the run's chain heads", "run", o.RunID, "err", err)
	}
	o.saveJournals(ctx, &res, command)
	res.Elapsed = time.Since(start)
	return res, nil
}

// ordered sorts high-risk hosts first, keeping the plan's order otherwise.
func ordered(jobs []Job) []Job {
	out := append([]Job(nil), jobs...)
	rank := func(r plans.Risk) int {
		switch r {
		case plans.RiskHigh:
			return 0
		case plans.RiskLow:
			return 2
		}
		return 1
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i].Risk) < rank(out[j].Risk) })
	return out
}

// forEach runs f(0..n-1) with at most par at once, starting in index
// order; once ctx is done, hosts not yet started are still given to f
// (which sees ctx done and records them as not run).
func forEach(ctx context.Context, par, n int, f func(i int)) {
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

func writeJSON(path string, v any) error {
	p, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(p, '\n'), 0o600)
}

type started struct {
	step        Step
	prior, done Record
}

// hostRun is one host's lockdown, phase by phase.
type hostRun struct {
	o     *Options
	j     Job
	h     *Host
	steps []Step
	hr    HostResult
	jw    *journal.Writer
	path  string
	done  []started // applied (or half-applied) steps, in order
}

func (r *hostRun) write(e journal.Entry) error {
	e.Run, e.Host = r.o.RunID, r.j.Name
	_, err := r.jw.Write(e)
	return err
}

// end journals the host's end and fills in its result.
func (r *hostRun) end(status string, err error) HostResult {
	r.hr.Status = status
	e := journal.Entry{Phase: journal.RunEnd, Kind: r.o.command, Step: status}
	if err != nil {
		r.hr.Error = err.Error()
		e.Error = err.Error()
	}
	if werr := r.write(e); werr != nil && r.hr.Error == "" {
		r.hr.Error = werr.Error()
	}
	r.hr.Head = r.jw.Head()
	return r.hr
}

// copyData is the host's journal copy as it stands now; nil with
// o.NoHostCopy.
func (r *hostRun) copyData() (*JournalCopy, error) {
	if r.o.NoHostCopy {
		return nil, nil
	}
	b, err := os.ReadFile(r.path)
	if err != nil {
		return nil, err
	}
	return &JournalCopy{Run: r.o.RunID, Host: r.j.Name, Data: b}, nil
}

// push stores the journal copy on the host (at the end: the result
// entries the last batch's store did not hold).
func (r *hostRun) push(ctx context.Context) {
	if r.o.NoHostCopy {
		return
	}
	if p, err := pushJournal(ctx, r.h, r.o.RunID, r.path); err != nil {
		r.o.Log.Warn("journal copy to host failed", "host", r.j.Name, "err", err)
	} else {
		r.hr.HostCopy = p
	}
}

func (r *hostRun) failStep(i int, err error) {
	r.hr.Steps[i].Status, r.hr.Steps[i].Error = StepFailed, err.Error()
}

// lockdownHost takes the host (locks, connection), admits it, then runs
// its steps batch by batch — observe, journal intents, store the host's
// copy, apply, record — and reverts what it started if one fails.
func lockdownHost(ctx context.Context, o *Options, j Job) (out HostResult) {
	t0 := time.Now()
	r := &hostRun{o: o, j: j, hr: HostResult{Host: j.Name, BackupsNotTaken: j.BackupsNone || o.WithoutBackups}}
	for _, s := range j.Steps {
		if s.Kind == KindBackup && o.WithoutBackups {
			continue // backups: NOT TAKEN, as the operator said
		}
		if s.Kind == KindBaseline && o.WithoutBaseline {
			continue // no baseline, as the operator said
		}
		r.steps = append(r.steps, s)
	}
	sort.SliceStable(r.steps, func(a, b int) bool { return r.steps[a].Slot < r.steps[b].Slot })
	for _, s := range r.steps {
		r.hr.Steps = append(r.hr.Steps, StepResult{ID: s.ID(), Kind: s.Kind, Target: s.Target, Status: StepPending})
	}
	defer func() { out.Elapsed = time.Since(t0) }()
	if ctx.Err() != nil {
		r.hr.Status, r.hr.Error = HostInterrupted, "interrupted before this host started; nothing was changed on it"
		return r.hr
	}
	hctx, cancel := context.WithTimeout(ctx, o.HostTimeout)
	defer cancel()

	// What the plan alone refuses is refused before contacting the host.
	pre := Admission{Host: j.Plan, Steps: r.steps, WithoutBackups: o.WithoutBackups, Containment: o.command == "isolate"}
	if fs := pre.StepRefusals(); len(fs) > 0 {
		err := &refusalError{fs}
		r.hr.Status, r.hr.Error = HostRefused, err.Error()
		o.progress(Progress{Host: j.Name, What: "refused", Err: err})
		return r.hr
	}
	// Take the host: nothing is journaled for a host another run holds,
	// nor for one lockdown refuses — no journal means "never reached".
	hd, err := o.hold(hctx, ctx, j.Name, j.Connect)
	if err != nil {
		r.hr.Status, r.hr.Error = holdStatus(err), holdError(err)
		o.progress(Progress{Host: j.Name, What: r.hr.Status, Err: err})
		return r.hr
	}
	defer hd.release()
	r.h = hd.h
	r.h.Backups, r.h.Baselines = o.Backups, o.Baselines
	r.hr.Note = strings.Join(hd.notes, "; ")
	if o.Backups != nil && o.command != "backup" {
		// the repository opens while the hosts connect; no host of the
		// run, with backups or not, is changed before it is open (a
		// backup run changes none: its step waits itself, after starting
		// the host's walk)
		if err := o.Backups.Ready(hctx); err != nil {
			err = fmt.Errorf("nothing was changed on it: backups: %w", err)
			r.hr.Status, r.hr.Error = HostRefused, err.Error()
			o.progress(Progress{Host: j.Name, What: "refused", Err: err})
			return r.hr
		}
	}
	if o.RepoLock != nil {
		if err := o.RepoLock(); err != nil {
			err = fmt.Errorf("nothing was changed on it: the repository: %w", err)
			r.hr.Status, r.hr.Error = HostRefused, err.Error()
			o.progress(Progress{Host: j.Name, What: "refused", Err: err})
			return r.hr
		}
	}
	if err := r.admit(hctx); err != nil {
		r.hr.Status, r.hr.Error = HostRefused, err.Error()
		o.progress(Progress{Host: j.Name, What: "refused", Err: err})
		return r.hr
	}

	r.path = JournalPath(o.StateDir, o.RunID, j.Name)
	r.hr.Journal = r.path
	if r.jw, err = journal.Create(r.path, o.Key); err != nil {
		r.hr.Status, r.hr.Error = HostFailed, err.Error()
		return r.hr
	}
	defer r.jw.Close()
	if err := r.write(journal.Entry{Phase: journal.RunBegin, Kind: o.command}); err != nil {
		r.hr.Status, r.hr.Error = HostFailed, err.Error()
		return r.hr
	}
	// No copy is pushed yet: nothing changes on the host before its copy
	// holds the intents (each batch's Store). A host the run dies before
	// changing holds no copy of it, and restore --from-host leaves it
	// alone.
	failure := r.applyAll(ctx, hctx)
	if failure == nil {
		res := r.end(HostDone, nil)
		r.push(hctx)
		return res
	}
	// Revert what this host started, in reverse, on a fresh context: the
	// run's may be cancelled (Ctrl-C) or past its deadline.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), o.RevertTimeout)
	defer rcancel()
	status := HostReverted
	if errors.Is(failure, context.Canceled) {
		status = HostInterrupted
	}
	if !r.revertStarted(rctx) {
		status = HostFailed
	}
	res := r.end(status, failure)
	r.push(rctx)
	return res
}

// admit refuses the host when Admission.Refusals has anything to say:
// the same verdict `holiday plan` prints.
func (r *hostRun) admit(ctx context.Context) error {
	if r.o.command == "backup" {
		return nil // reads the host only: lockdown's admission is about what it changes
	}
	a := Admission{Plan: r.o.Plan, Host: r.j.Plan, Steps: r.steps, Management: r.o.Management,
		ControlAddr: r.h.Info.ControlAddr, WithoutBackups: r.o.WithoutBackups, Containment: r.o.command == "isolate"}
	if r.h.Agent != nil && len(a.StepRefusals()) == 0 {
		f, err := admissionFacts(ctx, r.h, r.steps)
		if err != nil {
			return fmt.Errorf("reading what lockdown needs to admit the host: %w", err)
		}
		a.Facts = f
	}
	if fs := a.Refusals(); len(fs) > 0 {
		return &refusalError{fs}
	}
	return nil
}

// applyAll runs the steps batch by batch; the first failure stops it.
func (r *hostRun) applyAll(ctx, hctx context.Context) error {
	for i := 0; i < len(r.steps); {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n, err := r.runBatch(hctx, i)
		if err != nil {
			return err
		}
		i += n
	}
	return nil
}

// runBatch runs the batch starting at step i and returns how many steps
// it took.
func (r *hostRun) runBatch(ctx context.Context, i int) (int, error) {
	o, name := r.o, r.j.Name
	b := nextBatch(r.h, r.steps, i)
	defer b.Close()
	o.progress(Progress{Host: name, Step: r.steps[i].ID(), What: "observe"})

	// Observe: read-only.
	priors, errs, err := b.Observe(ctx)
	if err != nil {
		r.failStep(i, fmt.Errorf("observe: %w", err))
		return 0, fmt.Errorf("%s: observe: %w", r.steps[i].ID(), err)
	}
	n := len(priors)
	batch := r.steps[i : i+n]
	for k, s := range batch {
		if errs[k] != nil {
			r.failStep(i+k, fmt.Errorf("observe: %w", errs[k]))
			return 0, fmt.Errorf("%s: observe: %w", s.ID(), errs[k])
		}
	}

	// Journal every intent, fsynced, before the host changes.
	for k, s := range batch {
		if err := r.write(journal.Entry{Step: s.ID(), Kind: s.Kind, Phase: journal.Intent, Record: mustJSON(priors[k])}); err != nil {
			r.failStep(i+k, err)
			return 0, err
		}
	}

	// The host's copy holds the intents before the host changes.
	cp, err := r.copyData()
	if err == nil {
		var path string
		var cerr error
		path, cerr, err = b.Store(ctx, cp)
		switch {
		case err != nil:
		case cerr != nil:
			o.Log.Warn("journal copy to host failed", "host", name, "err", cerr)
		case path != "":
			r.hr.HostCopy = path
		}
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", batch[0].ID(), err)
		for k := range batch {
			r.failStep(i+k, err)
		}
		return 0, err
	}
	o.crashAt(batch[0].Kind, "after-intent")

	// Apply (and verify).
	for _, s := range batch {
		o.progress(Progress{Host: name, Step: s.ID(), What: "apply"})
	}
	recs, errs, err := b.Apply(ctx)
	if err != nil {
		recs, errs = make([]Record, n), make([]error, n)
		for k := range errs {
			errs[k] = err
		}
	}
	o.crashAt(batch[0].Kind, "after-apply")

	// Record each result.
	var failure error
	for k, s := range batch {
		aerr := errs[k]
		e := journal.Entry{Step: s.ID(), Kind: s.Kind, Phase: journal.Result, Record: mustJSON(recs[k])}
		if aerr != nil {
			e.Error = aerr.Error()
		}
		r.done = append(r.done, started{step: s, prior: priors[k], done: recs[k]})
		if err := r.write(e); err != nil && aerr == nil {
			aerr = err
		}
		if aerr != nil {
			r.failStep(i+k, aerr)
			if failure == nil {
				failure = fmt.Errorf("%s: %w", s.ID(), aerr)
			}
			o.progress(Progress{Host: name, Step: s.ID(), What: "failed", Err: aerr})
			continue
		}
		r.hr.Steps[i+k].Status = StepApplied
		if nt, ok := s.Action.(resultNoter); ok {
			nt.noteApplied(&r.hr, priors[k], recs[k])
		}
		o.progress(Progress{Host: name, Step: s.ID(), What: "applied"})
	}
	o.crashAt(batch[0].Kind, "after-record")
	return n, failure
}

// revertStarted reverts, newest first, every step this run started on
// the host; false when some revert failed.
func (r *hostRun) revertStarted(ctx context.Context) bool {
	var items []revertItem
	for k := len(r.done) - 1; k >= 0; k-- {
		st := r.done[k]
		items = append(items, revertItem{kind: st.step.Kind, target: st.step.Target, a: st.step.Action, prior: st.prior, done: st.done})
	}
	ok := true
	for k, err := range revertAll(ctx, r.o, r.write, r.h, items) {
		idx := indexOf(r.hr.Steps, items[k].id())
		if err != nil {
			ok = false
			r.hr.Steps[idx].Status = StepRevertFailed
			r.hr.Steps[idx].Error = strings.TrimPrefix(r.hr.Steps[idx].Error+"; revert: "+err.Error(), "; ")
		} else {
			r.hr.Steps[idx].Status = StepReverted
		}
	}
	return ok
}

func indexOf(rs []StepResult, id string) int {
	for i, r := range rs {
		if r.ID == id {
			return i
		}
	}
	return 0
}

// revertItem is one step to revert.
type revertItem struct {
	kind, target string
	a            Action
	prior, done  Record
}

func (it revertItem) id() string { return it.kind + ":" + it.target }

// revertAll reverts items in the order given (the caller's: reverse of
// apply), each run of consecutive steps of a kind that reverts in batches
// (batchReverter) as one agent session, and returns each item's error.
func revertAll(ctx context.Context, o *Options, write journalWrite, h *Host, items []revertItem) []error {
	errs := make([]error, len(items))
	for i := 0; i < len(items); {
		n := 1
		for i+n < len(items) && items[i+n].kind == items[i].kind {
			n++
		}
		if br, ok := items[i].a.(batchReverter); ok {
			if berrs, ok := br.revertBatch(ctx, o, write, h, items[i:i+n]); ok {
				copy(errs[i:], berrs)
				i += n
				continue
			}
		}
		for k := i; k < i+n; k++ {
			it := items[k]
			errs[k] = revertStep(ctx, o, write, h, it.kind, it.target, it.a, it.prior, it.done)
		}
		i += n
	}
	return errs
}

func revertStep(ctx context.Context, o *Options, write journalWrite, h *Host, kind, target string, a Action, prior, done Record) error {
	id := kind + ":" + target
	if err := write(journal.Entry{Step: id, Kind: kind, Phase: journal.RevertIntent}); err != nil {
		return err
	}
	o.progress(Progress{Host: h.Name, Step: id, What: "revert"})
	rerr := a.Revert(ctx, h, prior, done)
	e := journal.Entry{Step: id, Kind: kind, Phase: journal.RevertResult}
	if rerr != nil {
		e.Error = rerr.Error()
		o.progress(Progress{Host: h.Name, Step: id, What: "revert failed", Err: rerr})
	} else {
		o.progress(Progress{Host: h.Name, Step: id, What: "reverted"})
	}
	if err := write(e); err != nil && rerr == nil {
		rerr = err
	}
	return rerr
}

func mustJSON(r Record) json.RawMessage {
	p, err := json.Marshal(r)
	if err != nil {
		panic(err) // a Record is plain data
	}
	return p
}

func pushJournal(ctx context.Context, h *Host, run, path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	var out struct {
		Path string `json:"path"`
	}
	if err := h.Agent.Call(ctx, "journal-put", JournalCopy{Run: run, Host: h.Name, Data: b}, &out); err != nil {
		return "", err
	}
	return out.Path, nil
}

// HostJournal asks the host for its copy of a run's journal (run "" for
// the latest it holds). A host without one answers None. The host chose
// the run; it is not trusted to name a malformed one, nor to swap the run
// asked for for another.
func HostJournal(ctx context.Context, h *Host, run string) (JournalCopy, error) {
	var c JournalCopy
	if err := h.Agent.Call(ctx, "journal-get", JournalCopy{Run: run, Host: h.Name}, &c); err != nil {
		return c, err
	}
	if c.None {
		return c, nil
	}
	if !runIDPattern.MatchString(c.Run) {
		return c, fmt.Errorf("%s: the host's journal copy names a malformed run %q; not using it", h.Name, clipRun(c.Run))
	}
	if run != "" && c.Run != run {
		return c, fmt.Errorf("%s: asked the host for run %s, it sent run %s; not using it", h.Name, run, c.Run)
	}
	return c, nil
}

// StoreHostJournal stores a host's journal copy at JournalPath(stateDir,
// c.Run, host), fsynced. An existing local file is not overwritten.
func StoreHostJournal(stateDir, host string, c JournalCopy) error {
	path := JournalPath(stateDir, c.Run, host)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("%s: %w (restore from the existing copy, or use another --state-dir)", path, err)
	}
	if _, err := f.Write(c.Data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// PlanError is a plan with lint errors: lockdown changes nothing on any
// host (`holiday plan validate` shows the same).
type PlanError struct{ Errors plans.Errors }

func (e *PlanError) Error() string {
	n := len(e.Errors)
	s := "s"
	if n == 1 {
		s = ""
	}
	return fmt.Sprintf("the plan has %d error%s; nothing was changed on any host", n, s)
}

// CheckPlan returns a *PlanError when the plan has lint errors: then
// lockdown changes nothing anywhere.
func CheckPlan(p *plans.Plan) error {
	var out plans.Errors
	for _, e := range plans.Lint(p) {
		if e.Severity != plans.SevWarning {
			out = append(out, e)
		}
	}
	if len(out) > 0 {
		return &PlanError{Errors: out}
	}
	return nil
}
