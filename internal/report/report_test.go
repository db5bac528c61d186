package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/internal/golden"
	"github.com/holiday-ops/holiday/internal/integrity"
	"github.com/holiday-ops/holiday/internal/journal"
)

var t0 = time.Date(2026, 12, 20, 18, 0, 0, 0, time.UTC)

func sample() Input {
	return Input{
		Title: "Incident report: winter break 2026", Generated: t0.Add(300 * time.Hour),
		Hosts: []Host{
			{Name: "web1", Baseline: "f77b5c4e00112233", Check: &integrity.Result{
				Host: "web1", Baseline: t0, Checked: t0.Add(290 * time.Hour),
				Findings: []integrity.Finding{
					{Class: integrity.Indicator, Kind: "login-after-failures", Object: "root@203.0.113.77", Detail: "password login as root after 8 failures", Time: t0.Add(100 * time.Hour)},
					{Class: integrity.Indicator, Kind: "webshell", Object: "/var/www/html/.cache.php", Detail: "new file; matches eval(base64_decode(", Time: t0.Add(101 * time.Hour)},
					{Class: integrity.Indicator, Kind: "hidden-process", Object: "pid 1808 (kworkerd)", Detail: "in /proc but not in ps | grep output", Time: t0.Add(102 * time.Hour)},
					{Class: integrity.Drift, Kind: "package-changed", Object: "nginx", Detail: "package 1.22.1-9 → 1.22.1-9+deb12u1"},
					{Class: integrity.Churn, Kind: "log-grew", Object: "/var/log/nginx/access.log"},
				}}, Evidence: &Evidence{Snapshot: "6f1eb850aabbccdd", Items: 11, Bytes: 46841, Operator: "ops@bastion", AgentSHA256: "e49151f29d4b",
				Acquired: t0.Add(291 * time.Hour), Steps: []integrity.AcqStep{{Name: "processes", Start: t0.Add(291 * time.Hour), End: t0.Add(291*time.Hour + time.Second)}}}},
			{Name: "db1", Baseline: "3dcac74f", Check: &integrity.Result{Host: "db1", Baseline: t0, Checked: t0.Add(290 * time.Hour)}},
			{Name: "mail1", CheckError: "no baseline in the repository"},
		},
		Journal: []journal.Entry{
			{Time: t0.Add(-time.Minute), Run: "20261220-175900-ab12", Host: "web1", Phase: journal.RunBegin},
			{Time: t0.Add(time.Minute), Run: "20261220-175900-ab12", Host: "web1", Step: "service:nginx", Phase: journal.Result},
			{Time: t0.Add(292 * time.Hour), Run: "20261220-175900-ab12", Host: "web1", Kind: "restore", Phase: journal.RunBegin,
				Record: []byte(`{"gate":{"checked":true,"verdict":"3 compromise indicator(s) found","reopen":false,"indicators":3}}`)},
			{Time: t0.Add(292 * time.Hour), Run: "20261220-175900-ab12", Host: "db1", Kind: "restore", Phase: journal.RunBegin,
				Record: []byte(`{"gate":{"checked":true,"verdict":"1 compromise indicator(s) found","reopen":true,"indicators":1,"accepted_findings":"the new key is the DBA's, added by phone"}}`)},
			{Time: t0.Add(291*time.Hour + 30*time.Minute), Run: "20261231-053000-cd34", Host: "web1", Step: "firewall:isolate", Kind: "firewall", Phase: journal.Result},
			{Time: t0.Add(291*time.Hour + 31*time.Minute), Run: "20261231-053000-cd34", Host: "db1", Step: "firewall:isolate", Kind: "firewall", Phase: journal.Result},
			{Time: t0.Add(292*time.Hour + 10*time.Minute), Run: "20261231-053000-cd34", Host: "db1", Step: "firewall:isolate", Kind: "firewall", Phase: journal.RevertResult},
		},
	}
}

func TestReportGolden(t *testing.T) {
	r := Build(sample())
	for _, f := range []struct {
		name   string
		render func(*bytes.Buffer) error
	}{
		{"report.md", func(b *bytes.Buffer) error { return r.Markdown(b) }},
		{"report.html", func(b *bytes.Buffer) error { return r.HTML(b) }},
		{"report.json", func(b *bytes.Buffer) error { return r.JSON(b) }},
	} {
		var b bytes.Buffer
		if err := f.render(&b); err != nil {
			t.Fatal(err)
		}
		golden.Check(t, "testdata/"+f.name, b.Bytes())
	}
}

// TestReportJSONNamesCause reads the JSON as a consumer would: the cause,
// the first indicator's time in the timeline, the evidence snapshot.
func TestReportJSONNamesCause(t *testing.T) {
	var b bytes.Buffer
	if err := Build(sample()).JSON(&b); err != nil {
		t.Fatal(err)
	}
	var got Report
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Cause) == 0 || !strings.Contains(got.Cause[0], "password guessing over SSH") {
		t.Errorf("cause %q", got.Cause)
	}
	first := t0.Add(100 * time.Hour)
	found := false
	for _, e := range got.Timeline {
		if e.Time.Equal(first) && strings.Contains(e.What, "login-after-failures") {
			found = true
		}
	}
	if !found {
		t.Errorf("first indicator (%s) not in the timeline: %+v", first, got.Timeline)
	}
	if got.Hosts[0].Evidence == nil || got.Hosts[0].Evidence.Snapshot != "6f1eb850aabbccdd" || !strings.Contains(strings.Join(got.Handling, "\n"), "6f1eb850aabbccdd") {
		t.Errorf("evidence snapshot missing: %+v %q", got.Hosts[0].Evidence, got.Handling)
	}
	if !got.Hosts[0].FirstIndicator.Equal(first) {
		t.Errorf("first indicator %s", got.Hosts[0].FirstIndicator)
	}
	// The restore gate's verdicts, from the journal: the accepted
	// findings with the operator's reason, the host kept closed.
	h := strings.Join(got.Handling, "\n")
	if !strings.Contains(h, `db1: reopened by restore`) || !strings.Contains(h, `"the new key is the DBA's, added by phone"`) || !strings.Contains(h, "web1: restore (run 20261220-175900-ab12) at 2027-01-01T22:00:00Z kept it closed") {
		t.Errorf("handling does not record the gate's verdicts:\n%s", h)
	}
}

// TestHTMLSelfContained: one file, nothing fetched, and text escaped.
func TestHTMLSelfContained(t *testing.T) {
	in := sample()
	in.Hosts[0].Check.Findings[0].Detail = `<script>alert(1)</script>`
	var b bytes.Buffer
	if err := Build(in).HTML(&b); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	for _, bad := range []string{"<script>", "src=", "href=", "@import", "url("} {
		if strings.Contains(s, bad) {
			t.Errorf("HTML holds %q: not self-contained or not escaped", bad)
		}
	}
}
