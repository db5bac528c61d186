package actions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/holiday-ops/holiday/internal/journal"
)

// readJournal reads and verifies a host's journal of a run and, when this
// control node recorded the run's end (run.json beside the journal), checks
// that the chain still reaches the head printed then: the HMAC chain alone
// cannot tell entries cut from the end from a crash between steps.
func readJournal(path, host string, key journal.Key) (*journal.Journal, error) {
	jr, err := journal.ReadFile(path, key)
	if err != nil {
		return nil, err
	}
	var info RunInfo
	b, err := os.ReadFile(filepath.Join(filepath.Dir(path), "run.json"))
	if err != nil {
		return jr, nil // the run never ended here (crash, or another control node's run)
	}
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(filepath.Dir(path), "run.json"), err)
	}
	head := info.Heads[host]
	if head == "" || salvaged(jr) {
		return jr, nil // a salvaged journal is re-chained: its first entry says from what
	}
	for _, e := range jr.Entries {
		if e.MAC == head {
			return jr, nil
		}
	}
	return nil, fmt.Errorf("journal %s ends before the chain head %.16s recorded when the run ended: entries were removed; compare with the host's copy (restore --from-host into another --state-dir)", path, head)
}

// notInRun reports that a run has no journal for a host: the run never
// reached it (not selected, or the control node died before connecting).
func notInRun(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, fs.ErrNotExist)
}

const notInRunNote = "this run has no journal of it here: it never reached the host, nothing to revert (if it did, restore --from-host fetches the host's copy)"

// JournaledStep is one step as a journal tells it.
type JournaledStep struct {
	ID, Kind string
	Prior    Record
	Done     Record // zero when the result never got journaled
	HasDone  bool
	ApplyErr string
	Reverted bool // a revert of it succeeded after its intent
}

// Steps reads a host journal's steps in intent order.
func Steps(j *journal.Journal) ([]JournaledStep, error) {
	var out []JournaledStep
	idx := map[string]int{}
	for _, e := range j.Entries {
		switch e.Phase {
		case journal.Intent:
			var r Record
			if err := json.Unmarshal(e.Record, &r); err != nil {
				return nil, fmt.Errorf("entry %d: %w", e.Seq, err)
			}
			idx[e.Step] = len(out)
			out = append(out, JournaledStep{ID: e.Step, Kind: e.Kind, Prior: r})
		case journal.Result:
			i, ok := idx[e.Step]
			if !ok {
				return nil, fmt.Errorf("entry %d: result of %s without an intent", e.Seq, e.Step)
			}
			if len(e.Record) > 0 {
				var r Record
				if err := json.Unmarshal(e.Record, &r); err != nil {
					return nil, fmt.Errorf("entry %d: %w", e.Seq, err)
				}
				out[i].Done = r
			}
			out[i].HasDone, out[i].ApplyErr = true, e.Error
		case journal.RevertResult:
			if i, ok := idx[e.Step]; ok {
				out[i].Reverted = e.Error == ""
			}
		}
	}
	return out, nil
}

// RevertJob is one host to put back from its journal.
type RevertJob struct {
	Name    string
	Journal string // path of the host's journal of the run
	Connect func(ctx context.Context) (*Host, func(), error)
	// Only, when set, is the one step ID to revert (isolate --undo:
	// "firewall:isolate", leaving the lockdown under it in place).
	Only string
	// Gate is restore's integrity verdict for the host (nil: not gated).
	// It is journaled with the restore; a host it does not reopen is
	// left as it is (HostKeptClosed).
	Gate *GateVerdict
}

// RevertJournals reverts, per host and in reverse order, every journaled
// step not yet reverted, appending revert entries to the same journal
// (and its copy on the host). Hosts run in parallel like Lockdown; each
// revert runs on a fresh context with o.RevertTimeout, so Ctrl-C stops
// starting new hosts but never leaves a revert half-done.
func RevertJournals(ctx context.Context, o Options, jobs []RevertJob) RunResult {
	o.defaults()
	o.command = "restore"
	start := time.Now()
	res := RunResult{Run: o.RunID, Command: "restore", Hosts: make([]HostResult, len(jobs))}
	forEach(ctx, o.Parallel, len(jobs), func(i int) {
		res.Hosts[i] = revertHost(ctx, &o, jobs[i])
	})
	o.saveJournals(ctx, &res, "restore")
	res.Elapsed = time.Since(start)
	return res
}

func revertHost(ctx context.Context, o *Options, j RevertJob) (out HostResult) {
	t0 := time.Now()
	hr := HostResult{Host: j.Name, Journal: j.Journal, Gate: j.Gate}
	defer func() { out.Elapsed = time.Since(t0) }()
	fail := func(status string, err error) HostResult {
		hr.Status, hr.Error = status, err.Error()
		return hr
	}
	if notInRun(j.Journal) {
		hr.Status, hr.Note = HostDone, notInRunNote
		return hr
	}
	if ctx.Err() != nil {
		return fail(HostInterrupted, errors.New("interrupted before this host started"))
	}
	// Take the host first (this control node's lock, then the host's):
	// the journal is read and appended to by this run alone.
	var h *Host
	var steps []JournaledStep
	var jr *journal.Journal
	connect := func(ctx context.Context) (*Host, func(), error) {
		var err error
		if jr, err = readJournal(j.Journal, j.Name, o.Key); err != nil && o.Salvage {
			note, serr := SalvageJournal(j.Journal, o.Key)
			if serr != nil {
				return nil, nil, &journalError{fmt.Errorf("%w; --salvage: %w", err, serr)}
			}
			o.progress(Progress{Host: j.Name, What: note})
			hr.Note = note
			jr, err = readJournal(j.Journal, j.Name, o.Key)
		}
		if err != nil {
			return nil, nil, &journalError{err}
		}
		if steps, err = Steps(jr); err != nil {
			return nil, nil, &journalError{fmt.Errorf("journal %s: %w", j.Journal, err)}
		}
		for _, s := range steps {
			st := StepPending
			if s.Reverted {
				st = StepReverted
			}
			hr.Steps = append(hr.Steps, StepResult{ID: s.ID, Kind: s.Kind, Target: s.Prior.Target, Status: st})
		}
		return j.Connect(ctx)
	}
	hd, err := o.hold(ctx, ctx, j.Name, connect)
	if err != nil {
		var je *journalError
		if errors.As(err, &je) {
			// Never strand a host on a damaged journal: say what is
			// wrong and the way back.
			return fail(HostFailed, fmt.Errorf("%w; nothing was changed on the host. The way back: the host keeps its own copy of this journal — `holiday restore --from-host --run %s --state-dir NEW-DIR` restores from it (a fresh state dir keeps this one as evidence); or `holiday restore --salvage` reverts, newest first, every entry whose own MAC verifies, keeps the damaged file beside it and records that it did", je.err, filepath.Base(filepath.Dir(j.Journal))))
		}
		if pp := poweredOff(steps); pp != nil && holdStatus(err) == HostUnreachable {
			hr.PowerOn = pp
			o.progress(Progress{Host: j.Name, What: "powered off by lockdown: switch it on (" + pp.HowBack() + "), then restore again"})
			return fail(HostPoweredOff, fmt.Errorf("powered off by holiday lockdown; unreachable now (%v)", err))
		}
		hr.Status, hr.Error = holdStatus(err), holdError(err)
		return hr
	}
	defer hd.release()
	h = hd.h
	hr.Note = strings.Join(append(hd.notes, hr.Note), "; ")
	hr.Note = strings.Trim(hr.Note, "; ")
	jw, err := journal.Append(j.Journal, o.Key)
	if err != nil {
		return fail(HostFailed, err)
	}
	defer jw.Close()
	run := ""
	if len(jr.Entries) > 0 {
		run = jr.Entries[0].Run
	}
	write := func(e journal.Entry) error {
		e.Run, e.Host = run, j.Name
		_, err := jw.Write(e)
		return err
	}
	if err := write(journal.Entry{Phase: journal.RunBegin, Kind: "restore", Record: j.Gate.record()}); err != nil {
		return fail(HostFailed, err)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.RevertTimeout)
	defer cancel()
	if j.Gate != nil && !j.Gate.Reopen {
		// Kept closed: the verdict is journaled, nothing is reverted.
		o.progress(Progress{Host: j.Name, What: "kept closed: " + j.Gate.Verdict})
		hr.Status, hr.Error = HostKeptClosed, j.Gate.Why
		if j.Gate.Isolate {
			g := *j.Gate
			hr.Gate = &g
			isolateKeptClosed(rctx, o, write, h, steps, &hr)
		}
		if err := write(journal.Entry{Phase: journal.RunEnd, Kind: "restore", Step: HostKeptClosed, Error: j.Gate.Why}); err != nil {
			hr.Error += "; " + err.Error()
		}
		hr.Head = jw.Head()
		if !o.NoHostCopy && run != "" {
			if p, err := pushJournal(rctx, h, run, j.Journal); err == nil {
				hr.HostCopy = p
			}
		}
		return hr
	}
	var errs []error
	var items []revertItem
	var at []int // items[i] is steps[at[i]]
	for k := len(steps) - 1; k >= 0; k-- {
		s := steps[k]
		if s.Reverted || j.Only != "" && s.ID != j.Only {
			continue
		}
		a, err := ForKind(s.Kind, s.Prior.Target)
		if err != nil {
			hr.Steps[k].Status, hr.Steps[k].Error = StepRevertFailed, err.Error()
			errs = append(errs, fmt.Errorf("%s: %w", s.ID, err))
			continue
		}
		items = append(items, revertItem{kind: s.Kind, target: s.Prior.Target, a: a, prior: s.Prior, done: s.Done})
		at = append(at, k)
	}
	for i, err := range revertAll(rctx, o, write, h, items) {
		k := at[i]
		if err != nil {
			hr.Steps[k].Status, hr.Steps[k].Error = StepRevertFailed, err.Error()
			errs = append(errs, fmt.Errorf("%s: %w", steps[k].ID, err))
			continue
		}
		hr.Steps[k].Status = StepReverted
	}
	hr.Status = HostDone
	e := journal.Entry{Phase: journal.RunEnd, Kind: "restore", Step: HostDone}
	if len(errs) > 0 {
		err := errors.Join(errs...)
		hr.Status, hr.Error = HostFailed, err.Error()
		e.Step, e.Error = HostFailed, err.Error()
	}
	write(e)
	hr.Head = jw.Head()
	if !o.NoHostCopy && run != "" {
		if p, err := pushJournal(rctx, h, run, j.Journal); err == nil {
			hr.HostCopy = p
		}
	}
	return hr
}

// VerifyJournals runs Verify on every host for every step its journal
// says is applied and not reverted: what holds now on the host, not what
// the journal says (a service started by hand shows as drift).
func VerifyJournals(ctx context.Context, o Options, jobs []RevertJob) RunResult {
	o.defaults()
	start := time.Now()
	res := RunResult{Run: o.RunID, Command: "status", Hosts: make([]HostResult, len(jobs))}
	forEach(ctx, o.Parallel, len(jobs), func(i int) {
		j := jobs[i]
		hr := HostResult{Host: j.Name, Journal: j.Journal}
		t0 := time.Now()
		defer func() { hr.Elapsed = time.Since(t0); res.Hosts[i] = hr }()
		if notInRun(j.Journal) {
			hr.Status, hr.Note = HostDone, notInRunNote
			return
		}
		jr, err := readJournal(j.Journal, j.Name, o.Key)
		if err != nil {
			hr.Status, hr.Error = HostFailed, err.Error()
			return
		}
		hr.Head = jr.Head
		steps, err := Steps(jr)
		if err != nil {
			hr.Status, hr.Error = HostFailed, err.Error()
			return
		}
		h, closeHost, err := j.Connect(ctx)
		if err != nil {
			hr.Status, hr.Error = HostUnreachable, err.Error()
			if pp := poweredOff(steps); pp != nil {
				hr.Status, hr.PowerOn = HostPoweredOff, pp
				hr.Error = fmt.Sprintf("powered off by holiday lockdown, as planned (unreachable: %v)", err)
			}
			return
		}
		defer closeHost()
		hr.Status = HostDone
		for _, s := range steps {
			sr := StepResult{ID: s.ID, Kind: s.Kind, Target: s.Prior.Target}
			switch {
			case s.Reverted:
				sr.Status = StepReverted
			case !s.HasDone || s.ApplyErr != "":
				sr.Status, sr.Error = StepFailed, "never completed: restore reverts it"
				if s.ApplyErr != "" {
					sr.Error = s.ApplyErr
				}
				hr.Status = HostDrift
			default:
				a, err := ForKind(s.Kind, s.Prior.Target)
				if err == nil {
					err = a.Verify(ctx, h, s.Done)
				}
				if err != nil {
					sr.Status, sr.Error = StepDrift, err.Error()
					hr.Status = HostDrift
				} else {
					sr.Status = StepHolds
				}
			}
			hr.Steps = append(hr.Steps, sr)
		}
	})
	res.Elapsed = time.Since(start)
	return res
}

// poweredOff returns how the host comes back when its journal holds a
// power step that was started (intent journaled) and not reverted: then
// an unreachable host is one lockdown switched off, as the plan asked.
func poweredOff(steps []JournaledStep) *PowerPrior {
	for _, s := range steps {
		if s.Kind != KindPower || s.Reverted {
			continue
		}
		if s.HasDone && s.ApplyErr != "" {
			var d PowerDone
			if s.Done.Decode(&d) == nil && d.PID == 0 {
				continue // scheduling failed: the host never went off
			}
		}
		var pp PowerPrior
		if s.Prior.Decode(&pp) != nil {
			pp = PowerPrior{On: "manual"}
		}
		return &pp
	}
	return nil
}

// journalError is a journal restore cannot use; the host was not
// contacted.
type journalError struct{ err error }

func (e *journalError) Error() string { return e.err.Error() }
func (e *journalError) Unwrap() error { return e.err }
