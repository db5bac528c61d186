package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/holiday-ops/holiday/internal/journal"
	"github.com/holiday-ops/holiday/internal/units"
	"github.com/holiday-ops/holiday/plans"
)

// Slot places a step in a host's lockdown order (DESIGN §5). Steps run
// by slot, then in the order given. Slots without a built-in action yet
// (baseline, backups, verify backups, device save, firewall) are where
// those issues plug in.
type Slot int

// The lockdown order per host.
//
// SlotHooksAfter holds the `hooks.after` step: journaled first and run by
// its Revert, so it runs last when a host is restored (steps revert in
// reverse). SlotHooksBefore runs `hooks.before` before anything changes.
const (
	SlotPreflight Slot = iota
	SlotHooksAfter
	SlotHooksBefore
	SlotBaseline
	SlotBackups
	SlotVerifyBackups
	SlotDeviceSave
	SlotServices
	SlotFirewall
	SlotPower
)

var slotNames = [...]string{"preflight", "hooks-after", "hooks-before", "baseline", "backups", "verify-backups", "device-save", "services", "firewall", "power"}

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
	// Crash is the test hook ("service:after-intent", …); "" reads
	// $HOLIDAY_TEST_CRASH.
	Crash string
	// NoHostCopy skips pushing the journal copy to the host.
	NoHostCopy bool
	PlanFile   string // stored in run.json
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
	if o.Crash == "" {
		o.Crash = os.Getenv("HOLIDAY_TEST_CRASH")
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
	Journal         string       `json:"journal,omitempty"`
	Head            string       `json:"chain_head,omitempty"`
	HostCopy        string       `json:"host_copy,omitempty"`
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
	o.defaults()
	start := time.Now()
	dir := RunDir(o.StateDir, o.RunID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return RunResult{}, err
	}
	jobs = ordered(jobs)
	info := RunInfo{Run: o.RunID, PlanFile: o.PlanFile, Started: start.UTC(), Heads: map[string]string{}}
	for _, j := range jobs {
		info.Hosts = append(info.Hosts, j.Name)
	}
	if err := writeJSON(filepath.Join(dir, "run.json"), info); err != nil {
		return RunResult{}, err
	}
	res := RunResult{Run: o.RunID, Command: "lockdown", Hosts: make([]HostResult, len(jobs))}
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
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(p, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// crashAt kills the process at a test hook point: the journal shows
// exactly what a power cut there would leave.
func (o *Options) crashAt(kind, point string) {
	if o.Crash == "" {
		return
	}
	k, p, _ := strings.Cut(o.Crash, ":")
	if (k == kind || k == "*") && p == point {
		fmt.Fprintf(os.Stderr, "holiday: HOLIDAY_TEST_CRASH=%s: killing myself\n", o.Crash)
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}

type started struct {
	step        Step
	prior, done Record
}

func lockdownHost(ctx context.Context, o *Options, j Job) (out HostResult) {
	t0 := time.Now()
	hr := HostResult{Host: j.Name, BackupsNotTaken: j.BackupsNone}
	steps := append([]Step(nil), j.Steps...)
	sort.SliceStable(steps, func(a, b int) bool { return steps[a].Slot < steps[b].Slot })
	for _, s := range steps {
		hr.Steps = append(hr.Steps, StepResult{ID: s.ID(), Kind: s.Kind, Target: s.Target, Status: StepPending})
	}
	defer func() { out.Elapsed = time.Since(t0) }()

	path := JournalPath(o.StateDir, o.RunID, j.Name)
	hr.Journal = path
	jw, err := journal.Create(path, o.Key)
	if err != nil {
		hr.Status, hr.Error = HostFailed, err.Error()
		return hr
	}
	defer jw.Close()
	write := func(e journal.Entry) error {
		e.Run, e.Host = o.RunID, j.Name
		_, err := jw.Write(e)
		return err
	}
	if err := write(journal.Entry{Phase: journal.RunBegin, Kind: "lockdown"}); err != nil {
		hr.Status, hr.Error = HostFailed, err.Error()
		return hr
	}
	end := func(status string, err error) HostResult {
		hr.Status = status
		e := journal.Entry{Phase: journal.RunEnd, Kind: "lockdown", Step: status}
		if err != nil {
			hr.Error = err.Error()
			e.Error = err.Error()
		}
		if werr := write(e); werr != nil && hr.Error == "" {
			hr.Error = werr.Error()
		}
		hr.Head = jw.Head()
		return hr
	}
	if ctx.Err() != nil {
		return end(HostInterrupted, errors.New("interrupted before this host started"))
	}
	hctx, cancel := context.WithTimeout(ctx, o.HostTimeout)
	defer cancel()
	o.progress(Progress{Host: j.Name, What: "connecting"})
	h, closeHost, err := j.Connect(hctx)
	if err != nil {
		o.progress(Progress{Host: j.Name, What: "unreachable", Err: err})
		return end(HostUnreachable, err)
	}
	defer closeHost()
	push := func() {
		if o.NoHostCopy {
			return
		}
		if p, err := pushJournal(hctx, h, o.RunID, path); err != nil {
			o.Log.Warn("journal copy to host failed", "host", j.Name, "err", err)
		} else {
			hr.HostCopy = p
		}
	}

	// No copy is pushed yet: nothing changes on the host before its copy
	// holds the intents (the batch's Store, or push below). A host the
	// run dies before changing holds no copy of it, and restore
	// --from-host leaves it alone.

	var done []started
	var failure error
	for i := 0; i < len(steps) && failure == nil; {
		if ctx.Err() != nil {
			failure = ctx.Err()
			break
		}
		n := batchLen(steps, i)
		batch := steps[i : i+n]
		// Observe (in parallel within a batch), then every intent
		// journaled and fsynced, then the host's copy, before any change.
		priors := make([]Record, n)
		errs := make([]error, n)
		for _, s := range batch {
			o.progress(Progress{Host: j.Name, Step: s.ID(), What: "observe"})
		}
		// A batch of services is one agent session (servicebatch.go).
		var sb *serviceBatch
		if svcs, ok := serviceSteps(batch); ok {
			b, p, perrs, err := startServiceBatch(hctx, h, svcs)
			switch {
			case err != nil:
				errs[0] = err
			case b != nil:
				sb, priors, errs = b, p, perrs
			}
		}
		if sb == nil && errs[0] == nil {
			parallel(n, func(k int) { priors[k], errs[k] = batch[k].Action.Observe(hctx, h) })
		}
		closeBatch := func() {
			if sb != nil {
				sb.Close()
				sb = nil
			}
		}
		for k, s := range batch {
			if errs[k] != nil {
				hr.Steps[i+k].Status, hr.Steps[i+k].Error = StepFailed, "observe: "+errs[k].Error()
				failure = fmt.Errorf("%s: observe: %w", s.ID(), errs[k])
				break
			}
		}
		if failure != nil {
			closeBatch()
			break
		}
		if sb == nil && n > 1 && !sysvBatch(priors) {
			// An agent that can't stream applies each step alone: on
			// systemd one at a time, since separate stops taken at once
			// would show in each other's before/after unit lists. A
			// service-batch stops them all in one go and takes the
			// lists once for all (servicetogether.go).
			n, batch, priors, errs = 1, batch[:1], priors[:1], errs[:1]
		}
		for k, s := range batch {
			if err := write(journal.Entry{Step: s.ID(), Kind: s.Kind, Phase: journal.Intent, Record: mustJSON(priors[k])}); err != nil {
				hr.Steps[i+k].Status, hr.Steps[i+k].Error = StepFailed, err.Error()
				failure = err
				break
			}
		}
		if failure != nil {
			closeBatch()
			break
		}
		// The host's copy holds the intents before the host changes.
		if sb != nil {
			var cp *JournalCopy
			if !o.NoHostCopy {
				b, err := os.ReadFile(path)
				if err != nil {
					failure = err
				}
				cp = &JournalCopy{Run: o.RunID, Host: j.Name, Data: b}
			}
			if failure == nil {
				p, cerr, err := sb.Store(n, cp)
				switch {
				case err != nil:
					failure = fmt.Errorf("%s: %w", batch[0].ID(), err)
				case cerr != nil:
					o.Log.Warn("journal copy to host failed", "host", j.Name, "err", cerr)
				case p != "":
					hr.HostCopy = p
				}
			}
			if failure != nil {
				for k := range batch {
					hr.Steps[i+k].Status, hr.Steps[i+k].Error = StepFailed, failure.Error()
				}
				closeBatch()
				break
			}
		} else {
			push()
		}
		o.crashAt(batch[0].Kind, "after-intent")
		recs := make([]Record, n)
		for _, s := range batch {
			o.progress(Progress{Host: j.Name, Step: s.ID(), What: "apply"})
		}
		if sb != nil {
			var err error
			if recs, errs, err = sb.Apply(n); err != nil {
				recs, errs = make([]Record, n), make([]error, n)
				for k := range errs {
					errs[k] = err
				}
			}
			closeBatch()
		} else {
			names := make([]string, n)
			for k, s := range batch {
				names[k] = s.Target
			}
			parallel(n, func(k int) {
				s := batch[k]
				if svc, ok := s.Action.(Service); ok && n > 1 {
					svc.Batch = othersOf(names, k) // stopped at the same time
					s.Action = svc
				}
				recs[k], errs[k] = s.Action.Apply(hctx, h, priors[k])
				if errs[k] == nil {
					if verr := s.Action.Verify(hctx, h, recs[k]); verr != nil {
						errs[k] = fmt.Errorf("applied, but verify failed: %w", verr)
					}
				}
			})
		}
		o.crashAt(batch[0].Kind, "after-apply")
		for k, s := range batch {
			aerr := errs[k]
			e := journal.Entry{Step: s.ID(), Kind: s.Kind, Phase: journal.Result, Record: mustJSON(recs[k])}
			if aerr != nil {
				e.Error = aerr.Error()
			}
			done = append(done, started{step: s, prior: priors[k], done: recs[k]})
			if err := write(e); err != nil && aerr == nil {
				aerr = err
			}
			if aerr != nil {
				hr.Steps[i+k].Status, hr.Steps[i+k].Error = StepFailed, aerr.Error()
				if failure == nil {
					failure = fmt.Errorf("%s: %w", s.ID(), aerr)
				}
				o.progress(Progress{Host: j.Name, Step: s.ID(), What: "failed", Err: aerr})
				continue
			}
			hr.Steps[i+k].Status = StepApplied
			if s.Kind == KindPower {
				var pp PowerPrior
				if priors[k].Decode(&pp) == nil {
					hr.PowerOn = &pp
				}
			}
			o.progress(Progress{Host: j.Name, Step: s.ID(), What: "applied"})
		}
		o.crashAt(batch[0].Kind, "after-record")
		i += n
	}
	if failure == nil {
		r := end(HostDone, nil)
		push()
		return r
	}
	// Revert what this host started, in reverse, on a fresh context: the
	// run's may be cancelled (Ctrl-C) or past its deadline.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), o.RevertTimeout)
	defer rcancel()
	hctx = rctx
	allReverted := true
	var items []revertItem
	for k := len(done) - 1; k >= 0; k-- {
		st := done[k]
		items = append(items, revertItem{kind: st.step.Kind, target: st.step.Target, a: st.step.Action, prior: st.prior, done: st.done})
	}
	for k, err := range revertAll(rctx, o, write, h, items) {
		idx := indexOf(hr.Steps, items[k].id())
		if err != nil {
			allReverted = false
			hr.Steps[idx].Status = StepRevertFailed
			hr.Steps[idx].Error = strings.TrimPrefix(hr.Steps[idx].Error+"; revert: "+err.Error(), "; ")
		} else {
			hr.Steps[idx].Status = StepReverted
		}
	}
	status := HostReverted
	if errors.Is(failure, context.Canceled) {
		status = HostInterrupted
	}
	if !allReverted {
		status = HostFailed
	}
	r := end(status, failure)
	push()
	return r
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
// apply), each runs of consecutive service steps as one agent session
// where the agent streams, and returns each item's error.
func revertAll(ctx context.Context, o *Options, write func(journal.Entry) error, h *Host, items []revertItem) []error {
	errs := make([]error, len(items))
	for i := 0; i < len(items); {
		n := 1
		for i+n < len(items) && items[i].kind == KindService && items[i+n].kind == KindService {
			n++
		}
		if items[i].kind == KindService {
			if berrs, ok := revertServices(ctx, o, write, h, items[i:i+n]); ok {
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

func revertStep(ctx context.Context, o *Options, write func(journal.Entry) error, h *Host, kind, target string, a Action, prior, done Record) error {
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

// batchLen is how many steps from i run as one batch: all the
// consecutive service steps of a slot (a host's stops, which one
// service-batch takes together: servicetogether.go), else 1. A batch
// journals all its intents before any of them applies, so the crash
// points keep their meaning.
func batchLen(steps []Step, i int) int {
	n := 1
	for i+n < len(steps) && steps[i].Kind == KindService && steps[i+n].Kind == KindService && steps[i+n].Slot == steps[i].Slot {
		n++
	}
	return n
}

// parallel runs f(0..n-1) at once and waits.
func parallel(n int, f func(k int)) {
	if n == 1 {
		f(0)
		return
	}
	var wg sync.WaitGroup
	for k := 0; k < n; k++ {
		wg.Add(1)
		go func() { defer wg.Done(); f(k) }()
	}
	wg.Wait()
}

// serviceSteps returns a batch's Service actions, if they all are.
func serviceSteps(batch []Step) ([]Service, bool) {
	var svcs []Service
	for _, s := range batch {
		svc, ok := s.Action.(Service)
		if !ok {
			return nil, false
		}
		svcs = append(svcs, svc)
	}
	return svcs, true
}

// sysvBatch reports whether every prior of a batch is a SysV service's.
func sysvBatch(priors []Record) bool {
	for _, r := range priors {
		var p ServicePrior
		if r.Kind != KindService || r.Decode(&p) != nil || p.Init != units.SysV {
			return false
		}
	}
	return true
}
