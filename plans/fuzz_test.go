package plans

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzLoad feeds arbitrary plans to Parse and Lint: they must not panic,
// and every problem they report must be positioned (line > 0) and name a
// field path on a single line.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("../examples/*.yaml")
	bad, _ := filepath.Glob("testdata/bad/*.yaml")
	crashers, _ := filepath.Glob("testdata/fuzz-crashers/*.yaml")
	for _, s := range append(append(seeds, bad...), crashers...) {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	inventory, err := os.ReadFile("../examples/hosts.ini")
	if err != nil {
		f.Fatal(err)
	}
	opt := Options{ReadFile: func(name string) ([]byte, error) {
		if filepath.Base(name) == "hosts.ini" {
			return inventory, nil
		}
		return nil, os.ErrNotExist
	}}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang shows as a crash, so the fuzzer keeps the input.
		timer := time.AfterFunc(10*time.Second, func() { panic("Parse took over 10s") })
		defer timer.Stop()
		p, err := Parse("fuzz.yaml", data, opt)
		var es Errors
		if err != nil && !errors.As(err, &es) {
			t.Fatalf("Parse returned a non-plan error: %v", err)
		}
		if err == nil && p == nil {
			t.Fatal("no plan and no error")
		}
		es = append(es, Lint(p)...)
		for _, e := range es {
			if e.Pos.Line < 1 || e.Pos.Col < 1 || e.Pos.File == "" {
				t.Errorf("unpositioned: %q", e.Error())
			}
			if e.Path == "" {
				t.Errorf("no path: %q", e.Error())
			}
			if strings.ContainsAny(e.Error(), "\n\r") {
				t.Errorf("not one line: %q", e.Error())
			}
		}
		if err == nil {
			for _, h := range p.Hosts() {
				if h.Backup == nil || h.Address == "" {
					t.Errorf("host %s resolved without backup or address but no error", h.Name)
				}
			}
		}
	})
}

// FuzzParseINI: inventories never panic, and every problem has a line
// and a section.
func FuzzParseINI(f *testing.F) {
	for _, s := range []string{"../examples/hosts.ini", "testdata/bad/inventory.ini"} {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := ParseINI("fuzz.ini", strings.NewReader(string(data)))
		var es Errors
		if err != nil && !errors.As(err, &es) {
			t.Fatalf("non-positioned error: %v", err)
		}
		for _, e := range es {
			if e.Pos.Line < 1 || e.Path == "" || strings.ContainsAny(e.Error(), "\n\r") {
				t.Errorf("bad error: %q", e.Error())
			}
		}
		for _, h := range inv.Hosts {
			inv.GroupsOf(h.Name)
			inv.HostVars(h.Name)
		}
	})
}
