package actions

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/holiday-ops/holiday/internal/journal"
	"github.com/holiday-ops/holiday/plans"
)

// fakeAction logs every call; failApply makes its Apply fail (after
// "doing" its change, as a real half-done Apply would).
type fakeAction struct {
	name      string
	failApply bool
	log       *[]string
	mu        *sync.Mutex
}

func (f fakeAction) add(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	*f.log = append(*f.log, s)
}

func (f fakeAction) Observe(ctx context.Context, h *Host) (Record, error) {
	f.add(h.Name + " observe " + f.name)
	return NewRecord("fake", f.name, map[string]string{"was": "on"})
}
func (f fakeAction) Apply(ctx context.Context, h *Host, prior Record) (Record, error) {
	f.add(h.Name + " apply " + f.name)
	rec, _ := NewRecord("fake", f.name, map[string]string{"did": "off"})
	if f.failApply {
		return rec, errors.New("boom")
	}
	return rec, nil
}
func (f fakeAction) Verify(ctx context.Context, h *Host, done Record) error { return nil }
func (f fakeAction) Revert(ctx context.Context, h *Host, prior, done Record) error {
	f.add(fmt.Sprintf("%s revert %s done=%v", h.Name, f.name, !done.IsZero()))
	return nil
}

func TestRunnerOrderAndRevert(t *testing.T) {
	var log []string
	var mu sync.Mutex
	fa := func(name string, fail bool) Action {
		return fakeAction{name: name, failApply: fail, log: &log, mu: &mu}
	}
	conn := func(name string) func(context.Context) (*Host, func(), error) {
		return func(context.Context) (*Host, func(), error) { return &Host{Name: name}, func() {}, nil }
	}
	dir := t.TempDir()
	key, _ := journal.NewKey()
	jobs := []Job{
		{Name: "a", Risk: plans.RiskLow, Connect: conn("a"), Steps: []Step{
			{Slot: SlotPower, Kind: "fake", Target: "power", Action: fa("power", false)},
			{Slot: SlotServices, Kind: "fake", Target: "s1", Action: fa("s1", false)},
			{Slot: SlotServices, Kind: "fake", Target: "s2", Action: fa("s2", true)},
		}},
		{Name: "b", Risk: plans.RiskHigh, Connect: conn("b"), Steps: []Step{
			{Slot: SlotServices, Kind: "fake", Target: "s1", Action: fa("s1", false)},
		}},
		{Name: "c", Connect: func(context.Context) (*Host, func(), error) { return nil, nil, errors.New("no route") }},
	}
	res, err := Lockdown(context.Background(), Options{StateDir: dir, Key: key, Parallel: 1, NoHostCopy: true}, jobs)
	if err != nil {
		t.Fatal(err)
	}
	// Parallel 1: high-risk b first, then c (normal), then a (low); a's
	// steps by slot; s2 fails → s2 then s1 reverted, power never runs.
	want := []string{
		"b observe s1", "b apply s1",
		"a observe s1", "a apply s1", "a observe s2", "a apply s2",
		"a revert s2 done=true", "a revert s1 done=true",
	}
	if !slices.Equal(log, want) {
		t.Errorf("calls:\n got %q\nwant %q", log, want)
	}
	st := map[string]string{}
	for _, h := range res.Hosts {
		st[h.Host] = h.Status
	}
	if st["a"] != HostReverted || st["b"] != HostDone || st["c"] != HostUnreachable {
		t.Errorf("statuses %v", st)
	}
	// The journal of a holds intent/result/revert pairs and verifies.
	j, err := journal.ReadFile(filepath.Join(RunDir(dir, res.Run), "a.journal"), key)
	if err != nil {
		t.Fatal(err)
	}
	var phases []string
	for _, e := range j.Entries {
		phases = append(phases, string(e.Phase)+" "+e.Step)
	}
	wantPh := []string{"run-begin ", "intent fake:s1", "result fake:s1", "intent fake:s2", "result fake:s2",
		"revert-intent fake:s2", "revert-result fake:s2", "revert-intent fake:s1", "revert-result fake:s1", "run-end reverted"}
	if !slices.Equal(phases, wantPh) {
		t.Errorf("journal:\n got %q\nwant %q", phases, wantPh)
	}
	steps, err := Steps(j)
	if err != nil || len(steps) != 2 || !steps[0].Reverted || !steps[1].Reverted {
		t.Errorf("Steps = %+v, %v", steps, err)
	}
}

func TestStepsFromIntentOnly(t *testing.T) {
	// A crash after the intent: the step is pending with no result, and
	// a revert gets the prior alone.
	dir := t.TempDir()
	key, _ := journal.NewKey()
	w, err := journal.Create(filepath.Join(dir, "h.journal"), key)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := NewRecord("service", "nginx", ServicePrior{})
	w.Write(journal.Entry{Run: "r", Host: "h", Phase: journal.RunBegin})
	w.Write(journal.Entry{Run: "r", Host: "h", Step: "service:nginx", Kind: "service", Phase: journal.Intent, Record: mustJSON(rec)})
	w.Close()
	j, err := journal.ReadFile(filepath.Join(dir, "h.journal"), key)
	if err != nil {
		t.Fatal(err)
	}
	steps, err := Steps(j)
	if err != nil || len(steps) != 1 || steps[0].HasDone || steps[0].Reverted || steps[0].Prior.Target != "nginx" {
		t.Fatalf("Steps = %+v, %v", steps, err)
	}
}

func TestInterruptRevertsOnFreshContext(t *testing.T) {
	var log []string
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	// The first step's Apply "receives Ctrl-C": the runner stops before
	// the second and reverts the first on a context that is not cancelled.
	stopper := ctxCheck{fakeAction{name: "s1", log: &log, mu: &mu}, cancel}
	key, _ := journal.NewKey()
	res, _ := Lockdown(ctx, Options{StateDir: t.TempDir(), Key: key, NoHostCopy: true}, []Job{{
		Name: "a", Connect: func(context.Context) (*Host, func(), error) { return &Host{Name: "a"}, func() {}, nil },
		Steps: []Step{
			{Slot: SlotServices, Kind: "fake", Target: "s1", Action: stopper},
			{Slot: SlotServices, Kind: "fake", Target: "s2", Action: fakeAction{name: "s2", log: &log, mu: &mu}},
		},
	}})
	want := []string{"a observe s1", "a apply s1", "a revert s1 done=true ctx-live"}
	if !slices.Equal(log, want) {
		t.Errorf("calls %q, want %q", log, want)
	}
	if res.Hosts[0].Status != HostInterrupted {
		t.Errorf("status %s, want interrupted", res.Hosts[0].Status)
	}
}

type ctxCheck struct {
	fakeAction
	cancel func()
}

func (c ctxCheck) Apply(ctx context.Context, h *Host, prior Record) (Record, error) {
	r, err := c.fakeAction.Apply(ctx, h, prior)
	c.cancel()
	return r, err
}

func (c ctxCheck) Revert(ctx context.Context, h *Host, prior, done Record) error {
	live := "ctx-live"
	if ctx.Err() != nil {
		live = "ctx-dead"
	}
	c.add(fmt.Sprintf("%s revert %s done=%v %s", h.Name, c.name, !done.IsZero(), live))
	return nil
}

// TestRunnerRefusesCriticalUnit: a Go caller's job that stops sshd is
// refused by the runner itself — nothing observed, applied or journaled —
// and the other hosts go on.
func TestRunnerRefusesCriticalUnit(t *testing.T) {
	var log []string
	var mu sync.Mutex
	conn := func(name string) func(context.Context) (*Host, func(), error) {
		return func(context.Context) (*Host, func(), error) { return &Host{Name: name}, func() {}, nil }
	}
	dir := t.TempDir()
	key, _ := journal.NewKey()
	res, err := Lockdown(context.Background(), Options{StateDir: dir, Key: key, NoHostCopy: true}, []Job{
		{Name: "a", Connect: conn("a"), Steps: []Step{
			{Slot: SlotHooksBefore, Kind: "fake", Target: "hook", Action: fakeAction{name: "hook", log: &log, mu: &mu}},
			{Slot: SlotServices, Kind: KindService, Target: "sshd", Action: Service{Name: "sshd"}},
		}},
		{Name: "b", Connect: conn("b"), Steps: []Step{
			{Slot: SlotServices, Kind: "fake", Target: "s1", Action: fakeAction{name: "s1", log: &log, mu: &mu}},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]HostResult{}
	for _, h := range res.Hosts {
		got[h.Host] = h
	}
	if a := got["a"]; a.Status != HostRefused || !strings.Contains(a.Error, "refusing to stop sshd") || a.Journal != "" {
		t.Errorf("host a: %+v, want refused for sshd with no journal", a)
	}
	if got["b"].Status != HostDone {
		t.Errorf("host b: %s, want done", got["b"].Status)
	}
	if !slices.Equal(log, []string{"b observe s1", "b apply s1"}) {
		t.Errorf("calls %q: host a must not be touched at all", log)
	}
	if _, err := os.Stat(JournalPath(dir, res.Run, "a")); err == nil {
		t.Errorf("refused host a has a journal")
	}
}

// TestLockdownRefusesLintErrors: a plan with lint errors changes nothing
// on any host, whoever calls the runner.
func TestLockdownRefusesLintErrors(t *testing.T) {
	p, _ := plans.Parse("t.yaml", []byte(`version: 1
management: [10.0.0.0/24]
hosts:
  - {name: web1, address: 10.0.1.10, backup: none, stop: [networking]}
`), plans.Options{})
	called := false
	key, _ := journal.NewKey()
	_, err := Lockdown(context.Background(), Options{StateDir: t.TempDir(), Key: key, Plan: p}, []Job{{
		Name: "web1", Connect: func(context.Context) (*Host, func(), error) { called = true; return nil, nil, errors.New("no") },
	}})
	var pe *PlanError
	if !errors.As(err, &pe) || len(pe.Errors) == 0 || called {
		t.Fatalf("Lockdown: %v (connected: %v), want a PlanError before any host", err, called)
	}
}

// TestLocalLockRefusesSecondRun: two runs from one control node on the
// same host: the second is refused as busy, naming the first.
func TestLocalLockRefusesSecondRun(t *testing.T) {
	dir := t.TempDir()
	key, _ := journal.NewKey()
	inFirst := make(chan struct{})
	release := make(chan struct{})
	slow := func(context.Context) (*Host, func(), error) {
		close(inFirst)
		<-release
		return &Host{Name: "a"}, func() {}, nil
	}
	done := make(chan RunResult)
	go func() {
		r, _ := Lockdown(context.Background(), Options{StateDir: dir, Key: key, NoHostCopy: true}, []Job{{Name: "a", Connect: slow}})
		done <- r
	}()
	<-inFirst
	r2, _ := Lockdown(context.Background(), Options{StateDir: dir, Key: key, NoHostCopy: true}, []Job{{Name: "a",
		Connect: func(context.Context) (*Host, func(), error) {
			t.Error("second run connected")
			return nil, nil, errors.New("no")
		}}})
	close(release)
	r1 := <-done
	if h := r2.Hosts[0]; h.Status != HostBusy || !strings.Contains(h.Error, "lockdown run "+r1.Run) {
		t.Errorf("second run: %s %q, want busy naming run %s", h.Status, h.Error, r1.Run)
	}
	if r1.Hosts[0].Status != HostDone {
		t.Errorf("first run: %s", r1.Hosts[0].Status)
	}
}
