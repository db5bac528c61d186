package incident

import (
	"bytes"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/internal/integrity"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := "testdata/" + name
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (go test ./actions/incident -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (-update to accept)\n--- got\n%s--- want\n%s", p, got, want)
	}
}

var t0 = time.Date(2026, 12, 24, 3, 0, 0, 0, time.UTC)

func sampleChecks() []HostCheck {
	return []HostCheck{
		{Host: "web1", Baseline: "f77b5c4e0011", Agent: "28804dbc99", Result: &integrity.Result{
			Host: "web1", Baseline: t0, Checked: t0.Add(72 * time.Hour), Took: "1.8s",
			Findings: []integrity.Finding{
				{Class: integrity.Indicator, Kind: "new-uid0-account", Object: "toor", Detail: "account toor has uid 0 (shell /bin/bash, home /root)"},
				{Class: integrity.Indicator, Kind: "webshell", Object: "/var/www/html/.cache.php", Detail: "new file; matches eval(base64_decode(", Time: t0.Add(30 * time.Hour)},
				{Class: integrity.Drift, Kind: "package-changed", Object: "nginx", Detail: "package 1.22.1-9 → 1.22.1-9+deb12u1", Package: "nginx"},
				{Class: integrity.Churn, Kind: "log-grew", Object: "/var/log/nginx/access.log", Detail: "grew"},
				{Class: integrity.Churn, Kind: "log-rotated", Object: "/var/log/auth.log", Detail: "rotated to /var/log/auth.log.1.gz"},
			},
			Problems: []integrity.Problem{{Collector: "cross-view", Error: "no ss on the host"}},
		}},
		{Host: "db1", Baseline: "3dcac74f", Result: &integrity.Result{Host: "db1", Baseline: t0, Checked: t0.Add(72 * time.Hour)}},
		{Host: "mail1", Error: "mail1: no baseline in the repository (lockdown takes one; so does holiday baseline)"},
	}
}

func TestWriteCheckGolden(t *testing.T) {
	var b bytes.Buffer
	WriteCheck(&b, sampleChecks(), false)
	golden(t, "check.golden", b.Bytes())
	b.Reset()
	WriteCheck(&b, sampleChecks(), true)
	golden(t, "check-verbose.golden", b.Bytes())
}

func TestExitError(t *testing.T) {
	cs := sampleChecks()
	for _, c := range []struct {
		in   []HostCheck
		code int
	}{
		{cs, 5},
		{cs[1:], 2},
		{cs[1:2], 0},
		{[]HostCheck{{Host: "x", Result: &integrity.Result{Findings: []integrity.Finding{{Class: integrity.Drift}}}}}, 4},
	} {
		err := ExitError(c.in)
		got := 0
		if err != nil {
			got = exitcode.Of(err)
		}
		if got != c.code {
			t.Errorf("%d hosts: exit %d, want %d (%v)", len(c.in), got, c.code, err)
		}
	}
}
