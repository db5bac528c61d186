package units

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"
)

func writeScripts(t *testing.T, headers map[string]string) {
	t.Helper()
	dir := t.TempDir()
	old := InitDir
	InitDir = dir
	t.Cleanup(func() { InitDir = old })
	for name, h := range headers {
		body := "#!/bin/sh\n### BEGIN INIT INFO\n# Provides: " + name + "\n" + h + "### END INIT INFO\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStopAndStartPreds(t *testing.T) {
	writeScripts(t, map[string]string{
		// app needs db while it stops, and the cache provides
		// "memcache" which app should stop before.
		"app":   "# Required-Start: $network db\n# Required-Stop: db\n# Should-Stop: memcache\n",
		"db":    "# Required-Start: $remote_fs\n# Required-Stop: $remote_fs\n",
		"cache": "# Provides: memcache\n",
		// logger stops after everything it names, starts before web.
		"logger": "# X-Stop-After: web\n# X-Start-Before: web\n",
		"web":    "",
		"alone":  "# Required-Stop: $syslog\n",
	})
	names := []string{"app", "db", "cache", "logger", "web", "alone"}
	stop := StopPreds(names)
	want := map[string][]string{"app": nil, "db": {"app"}, "cache": {"app"}, "logger": {"web"}, "web": nil, "alone": nil}
	if !reflect.DeepEqual(stop, want) {
		t.Errorf("StopPreds = %v, want %v", stop, want)
	}
	start := StartPreds(names)
	want = map[string][]string{"app": {"db"}, "db": nil, "cache": nil, "logger": nil, "web": {"logger"}, "alone": nil}
	if !reflect.DeepEqual(start, want) {
		t.Errorf("StartPreds = %v, want %v", start, want)
	}
	// Only the batch's own scripts order each other.
	if p := StopPreds([]string{"db", "web"}); len(p["db"])+len(p["web"]) != 0 {
		t.Errorf("StopPreds of unrelated scripts = %v", p)
	}
}

func TestPredsBreakCycles(t *testing.T) {
	writeScripts(t, map[string]string{
		"a": "# Required-Stop: b\n",
		"b": "# Required-Stop: c\n",
		"c": "# Required-Stop: a\n",
		"d": "# Required-Stop: a\n",
	})
	p := StopPreds([]string{"a", "b", "c", "d"})
	// d stops before a; the cycle a→b→c→a is broken into name order.
	var order []string
	var mu sync.Mutex
	errs := RunOrdered(context.Background(), []string{"a", "b", "c", "d"}, p, func(ctx context.Context, n string) error {
		mu.Lock()
		order = append(order, n)
		mu.Unlock()
		return nil
	})
	if len(errs) != 0 || !reflect.DeepEqual(order, []string{"d", "a", "b", "c"}) {
		t.Fatalf("RunOrdered ran %v, errors %v (preds %v)", order, errs, p)
	}
}

func TestRunOrderedWaitsOnlyForPreds(t *testing.T) {
	// slow has no preds; fast waits for first; nothing waits for slow.
	preds := map[string][]string{"first": nil, "fast": {"first"}, "slow": nil}
	var mu sync.Mutex
	var order []string
	t0 := time.Now()
	errs := RunOrdered(context.Background(), []string{"slow", "fast", "first"}, preds, func(ctx context.Context, n string) error {
		switch n {
		case "slow":
			time.Sleep(200 * time.Millisecond)
		case "first":
			time.Sleep(50 * time.Millisecond)
		}
		mu.Lock()
		order = append(order, n)
		mu.Unlock()
		if n == "fast" {
			return fmt.Errorf("boom")
		}
		return nil
	})
	if el := time.Since(t0); el > 400*time.Millisecond {
		t.Errorf("took %v: not at once", el)
	}
	if !reflect.DeepEqual(order, []string{"first", "fast", "slow"}) {
		t.Errorf("order %v", order)
	}
	if len(errs) != 1 || errs["fast"] == nil {
		t.Errorf("errors %v", errs)
	}
}

func TestMentionsUnit(t *testing.T) {
	for _, c := range []struct {
		line, unit string
		want       bool
	}{
		{"Failed to stop bench-mail.service: Operation refused, unit bench-mail.service may be requested by dependency only", "bench-mail.service", true},
		{"Failed to stop xbench-mail.service: refused", "bench-mail.service", false},
		{"Job for a.service.d failed", "a.service", false},
		{"a.service", "a.service", true},
		{"Job for a@1.service failed", "a.service", false},
	} {
		if got := mentionsUnit(c.line, c.unit); got != c.want {
			t.Errorf("mentionsUnit(%q, %q) = %v", c.line, c.unit, got)
		}
	}
}
