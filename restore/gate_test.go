package restore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holiday-ops/holiday/actions"
	"github.com/holiday-ops/holiday/internal/journal"
	"github.com/holiday-ops/holiday/plans"
)

// gateTestStep is a step restore's journal reader knows (registered for
// this test): it changes nothing anywhere.
type gateTestStep struct{}

func (gateTestStep) Observe(ctx context.Context, h *actions.Host) (actions.Record, error) {
	return actions.NewRecord("restore-gate-test", "x", struct{}{})
}
func (gateTestStep) Apply(ctx context.Context, h *actions.Host, prior actions.Record) (actions.Record, error) {
	return actions.NewRecord("restore-gate-test", "x", struct{}{})
}
func (gateTestStep) Verify(ctx context.Context, h *actions.Host, done actions.Record) error {
	return nil
}
func (gateTestStep) Revert(ctx context.Context, h *actions.Host, prior, done actions.Record) error {
	return nil
}

func init() {
	actions.RegisterKind("restore-gate-test", func(string) (actions.Action, error) { return gateTestStep{}, nil })
}

// The gate's rules that need no host: a plan without a repository
// reopens its hosts marked NOT CHECKED; a repository that cannot be
// opened keeps every closed host closed (the gate fails closed) unless
// findings are accepted, with the reason; a host the run left open
// (every step reverted, or never reached) is not gated.
func TestGateWithoutACheck(t *testing.T) {
	dir := t.TempDir()
	key, _ := journal.NewKey()
	run := actions.NewRunID()
	conn := func(context.Context) (*actions.Host, func(), error) {
		return &actions.Host{Name: "web1"}, func() {}, nil
	}
	if _, err := actions.Lockdown(context.Background(), actions.Options{StateDir: dir, Key: key, NoHostCopy: true, RunID: run}, []actions.Job{
		{Name: "web1", Connect: conn, Steps: []actions.Step{{Slot: actions.SlotServices, Kind: "restore-gate-test", Target: "x", Action: gateTestStep{}}}},
	}); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no-such-repo")
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("pw\n"), 0o600)
	repo := "repository: {url: " + missing + ", password_file: " + pw + "}\n"
	for _, tc := range []struct {
		name   string
		repo   string
		accept string
		reopen bool
		want   string
	}{
		{"no repository", "", "", true, "NOT CHECKED: no baseline: the plan names no repository"},
		{"repository unreachable", repo, "", false, "not checked: the repository with the baselines: "},
		{"repository unreachable, accepted", repo, "the NAS is down; checked by hand", true, "not checked: the repository with the baselines: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := "version: 1\nname: t\nmanagement: [10.0.0.0/24]\n" + tc.repo +
				"hosts:\n  - {name: web1, address: 192.0.2.10, backup: none}\n  - {name: web2, address: 192.0.2.11, backup: none}\n"
			p, err := plans.Parse("plan.yaml", []byte(y), plans.Options{})
			if err != nil {
				t.Fatal(err)
			}
			jobs := []actions.RevertJob{
				{Name: "web1", Journal: actions.JournalPath(dir, run, "web1")},
				{Name: "web2", Journal: actions.JournalPath(dir, run, "web2")}, // never reached
			}
			gate(context.Background(), actions.Options{RunID: run, Key: key}, p, Options{StateDir: dir, AcceptFindings: tc.accept}, jobs)
			g := jobs[0].Gate
			if g == nil || g.Reopen != tc.reopen || !strings.HasPrefix(g.Verdict, tc.want) || g.AcceptedFindings != tc.accept {
				t.Errorf("web1's verdict %+v, want reopen %v, verdict %q…, accepted %q", g, tc.reopen, tc.want, tc.accept)
			}
			if jobs[1].Gate != nil {
				t.Errorf("web2, never reached, was gated: %+v", jobs[1].Gate)
			}
		})
	}
}
