package incident_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/actions/incident"
	"github.com/holiday-ops/holiday/backup/backend/local"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/agentctl"
	"github.com/holiday-ops/holiday/internal/integrity"
	"github.com/holiday-ops/holiday/internal/labtest"
	"github.com/holiday-ops/holiday/internal/report"
	"github.com/holiday-ops/holiday/plans"
)

func build(t *testing.T) agentctl.Binary {
	t.Helper()
	out := filepath.Join(t.TempDir(), "holiday")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, "github.com/holiday-ops/holiday/cmd/holiday")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, o)
	}
	b, err := agentctl.LoadBinary(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// labPlan writes a plan for one lab host, reached as ops with sudo like
// examples/lab.yaml, with a local repository in a temp dir.
func labPlan(t *testing.T, lab *labtest.Lab, h *labtest.Host) (*plans.Plan, *repo.Repository) {
	t.Helper()
	dir := t.TempDir()
	y := fmt.Sprintf(`version: 1
management: [10.213.0.0/24]
repository: {url: %s/repo, password_file: %s/pass}
ssh: {user: ops, identity: %s, known_hosts: %s, become: sudo}
hosts:
  - {name: %s, address: %s, backup: none, web_roots: [/var/www]}
`, dir, dir, lab.SSHKey, lab.KnownHosts, h.Name, h.Addr)
	if err := os.WriteFile(filepath.Join(dir, "plan.yaml"), []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "pass"), []byte("pw\n"), 0o600)
	p, err := plans.Load(filepath.Join(dir, "plan.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	be, err := local.Create(filepath.Join(dir, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := repo.Init(context.Background(), be, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if err := r.LoadIndex(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p, r
}

func plant(t *testing.T, h *labtest.Host, verb string) {
	t.Helper()
	script, err := os.ReadFile("../../lab/plant.sh")
	if err != nil {
		t.Fatal(err)
	}
	var argv []string
	for _, a := range h.SSHArgs("root", h.Addr) {
		if a != "-n" {
			argv = append(argv, a)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], "--", "bash -s "+verb)...)
	cmd.Stdin = bytes.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("plant.sh %s: %v\n%s", verb, err, out)
	}
}

// TestPlantedRunReport runs the whole compromise response on sys1 as the
// commands do: baseline into a repository, the planted compromise, check
// through a fresh agent, evidence, and the report, whose JSON must name
// the cause, the first indicator's time in the timeline and the evidence
// snapshot.
func TestPlantedRunReport(t *testing.T) {
	lab := labtest.Require(t)
	h := lab.MustHost(t, "sys1")
	h.Lock(t)
	p, r := labPlan(t, lab, h)
	o := incident.Options{Version: "test", Binaries: map[string]agentctl.Binary{"x86_64": build(t)}}
	ctx := context.Background()
	hosts := p.Hosts()

	plant(t, h, "undo")
	bs := incident.Baselines(ctx, p, hosts, r, o)
	if bs[0].Error != "" {
		t.Fatal(bs[0].Error)
	}
	t.Cleanup(func() { plant(t, h, "undo") })
	plant(t, h, "plant")

	start := time.Now()
	cs := incident.Check(ctx, p, hosts, r, o)
	checkTook := time.Since(start)
	if cs[0].Error != "" {
		t.Fatal(cs[0].Error)
	}
	if cs[0].Baseline != bs[0].Snapshot {
		t.Errorf("checked against %s, the baseline taken was %s", cs[0].Baseline, bs[0].Snapshot)
	}
	if n := cs[0].Result.Count(integrity.Indicator); n < 12 {
		t.Errorf("%d indicators", n)
	}
	if err := incident.ExitError(cs); err == nil || !strings.Contains(err.Error(), "compromise indicators") {
		t.Errorf("exit error %v", err)
	}

	start = time.Now()
	ev := incident.Evidence(ctx, p, hosts[0], r, time.Time{}, o)
	evTook := time.Since(start)
	if ev.Error != "" {
		t.Fatal(ev.Error)
	}
	t.Logf("check %.1fs, evidence %.1fs (%d items, %d bytes)", checkTook.Seconds(), evTook.Seconds(), ev.Items, ev.Bytes)
	// The deleted executable was copied out of /proc and arrived whole.
	var copied bool
	for _, it := range ev.Custody.Items {
		if strings.HasPrefix(it.Name, "exe/") && strings.HasSuffix(it.Name, "-upd") && it.Size > 10000 {
			copied = true
		}
	}
	if !copied {
		t.Errorf("the deleted executable was not copied out: %+v", ev.Custody.Items)
	}
	for _, s := range ev.Custody.Acquisition.Steps {
		if s.Error != "" {
			t.Errorf("evidence step %s: %s", s.Name, s.Error)
		}
	}

	// Through JSON, as holiday report reads them.
	var cj, ej bytes.Buffer
	json.NewEncoder(&cj).Encode(cs)
	json.NewEncoder(&ej).Encode(ev)
	var cs2 []incident.HostCheck
	var ev2 incident.EvidenceResult
	if err := json.Unmarshal(cj.Bytes(), &cs2); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(ej.Bytes(), &ev2); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := incident.BuildReport("planted", cs2, []incident.EvidenceResult{ev2}, nil).JSON(&out); err != nil {
		t.Fatal(err)
	}
	var rep report.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Cause) == 0 || !strings.Contains(strings.Join(rep.Cause, "\n"), "password guessing over SSH") {
		t.Errorf("cause %q", rep.Cause)
	}
	first := rep.Hosts[0].FirstIndicator
	inTimeline := false
	for _, e := range rep.Timeline {
		if !first.IsZero() && e.Time.Equal(first) && e.Source == "check" {
			inTimeline = true
		}
	}
	if !inTimeline {
		t.Errorf("first indicator %s not in the timeline", first)
	}
	if rep.Hosts[0].Evidence == nil || rep.Hosts[0].Evidence.Snapshot != ev.Snapshot {
		t.Errorf("evidence snapshot %s not in the report", ev.Snapshot)
	}
}
