// Command benchdevices is `make bench-devices`: it starts simulated
// devices of every model on loopback (each on its own 127.x address),
// backs them all up into a fresh repository with holiday's BackupAll, and
// times RANCID's own login scripts (clogin for IOS and EOS, jlogin for
// Junos, as Debian's rancid package installs them) fetching the same IOS,
// Junos and EOS simulators, with the same concurrency. It prints both
// times and their ratio, and checks that RANCID and holiday got the same
// config text (compared normalized: the simulators, like real devices,
// change their timestamps on every read).
//
// It is a benchmark, not part of holiday; it imports backup/... only.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/holiday-ops/holiday/backup/backend/local"
	"github.com/holiday-ops/holiday/backup/device"
	"github.com/holiday-ops/holiday/backup/device/devicesim"
	"github.com/holiday-ops/holiday/backup/repo"
)

func main() {
	n := flag.Int("n", 50, "simulated devices, models round-robin")
	conc := flag.Int("concurrency", 16, "devices read at once, by holiday and by RANCID")
	limit := flag.Duration("limit", 30*time.Second, "holiday's goal for all n devices")
	goal := flag.Float64("goal", 5, "the speed-up over RANCID to reach")
	rancidBin := flag.String("rancid", "/usr/lib/rancid/bin", "where clogin and jlogin are")
	flag.Parse()
	if err := run(*n, *conc, *limit, *goal, *rancidBin); err != nil {
		fmt.Fprintln(os.Stderr, "bench-devices:", err)
		os.Exit(1)
	}
}

type sim struct {
	dev    *devicesim.Device
	target device.Target
	ip     string
	port   string
}

func run(n, conc int, limit time.Duration, goal float64, rancidBin string) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "bench-devices-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	models := devicesim.Models()
	const password = "bench-pw"
	var sims []*sim
	var kh strings.Builder
	for i := range n {
		model := models[i%len(models)]
		ip := fmt.Sprintf("127.0.%d.%d", 1+i/200, 2+i%200)
		d := &devicesim.Device{Model: model, Hostname: fmt.Sprintf("%s-%02d", model, i), User: "backup",
			Password: password, Listen: ip + ":0"}
		if err := d.Start(); err != nil {
			return err
		}
		defer d.Close()
		_, port, _ := strings.Cut(d.Addr, ":")
		var p int
		fmt.Sscan(port, &p)
		kh.WriteString(d.KnownHostsLine() + "\n")
		sims = append(sims, &sim{dev: d, ip: ip, port: port, target: device.Target{
			Name: d.Hostname, Address: ip, Port: p, Model: model, User: "backup",
			Password: device.Secret{Env: "BENCH_DEVICE_PW"}}})
	}
	os.Setenv("BENCH_DEVICE_PW", password)
	sshDir := filepath.Join(tmp, ".ssh")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		return err
	}
	khFile := filepath.Join(sshDir, "known_hosts")
	if err := os.WriteFile(khFile, []byte(kh.String()), 0o600); err != nil {
		return err
	}

	be, err := local.Create(filepath.Join(tmp, "repo"))
	if err != nil {
		return err
	}
	r, err := repo.Init(ctx, be, "bench")
	if err != nil {
		return err
	}
	if err := r.LoadIndex(ctx); err != nil {
		return err
	}
	opts := device.BackupOptions{Options: device.Options{KnownHosts: []string{khFile}}, Concurrency: conc}
	var targets []device.Target
	for _, s := range sims {
		targets = append(targets, s.target)
	}
	start := time.Now()
	res := device.BackupAll(ctx, r, targets, opts)
	all := time.Since(start)
	failed := 0
	for _, x := range res {
		if x.Err != nil {
			failed++
			fmt.Fprintf(os.Stderr, "%s: %v\n", x.Device, x.Err)
		}
	}
	fmt.Printf("holiday: %d devices (%d models), concurrency %d: %s, %d failed (goal ≤ %s)\n", n, len(models), conc, all.Round(time.Millisecond), failed, limit)

	// the RANCID comparison: IOS, EOS (clogin) and Junos (jlogin)
	var subset []*sim
	for _, s := range sims {
		switch s.target.Model {
		case "cisco-ios", "arista-eos", "junos":
			subset = append(subset, s)
		}
	}
	var subTargets []device.Target
	for _, s := range subset {
		subTargets = append(subTargets, s.target)
	}
	start = time.Now()
	subRes := device.BackupAll(ctx, r, subTargets, opts)
	holidaySub := time.Since(start)
	for _, x := range subRes {
		if x.Err != nil {
			return fmt.Errorf("holiday, %s: %w", x.Device, x.Err)
		}
	}

	if _, err := os.Stat(filepath.Join(rancidBin, "clogin")); err != nil {
		fmt.Printf("RANCID: not installed (%s/clogin missing; apt-get install rancid): no ratio\n", rancidBin)
		return verdict(all, limit, failed, 0, goal)
	}
	var rc strings.Builder
	for _, s := range subset {
		fmt.Fprintf(&rc, "add method %s {ssh:%s}\n", s.ip, s.port)
	}
	rc.WriteString("add user * backup\nadd password * " + password + " " + password + "\nadd autoenable * 1\n")
	cloginrc := filepath.Join(tmp, ".cloginrc")
	if err := os.WriteFile(cloginrc, []byte(rc.String()), 0o600); err != nil {
		return err
	}
	outs := make([]string, len(subset))
	errs := make([]error, len(subset))
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	start = time.Now()
	for i, s := range subset {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			script, cmd := "clogin", "show running-config"
			if s.target.Model == "junos" {
				script, cmd = "jlogin", device.Drivers["junos"].ShowCommand
			}
			c := exec.Command(filepath.Join(rancidBin, script), "-f", cloginrc, "-c", cmd, s.ip)
			c.Env = append(os.Environ(), "HOME="+tmp)
			out, err := c.CombinedOutput()
			outs[i], errs[i] = string(out), err
		}()
	}
	wg.Wait()
	rancid := time.Since(start)
	same := 0
	for i, s := range subset {
		if errs[i] != nil {
			return fmt.Errorf("RANCID on %s: %v\n%s", s.target.Name, errs[i], outs[i])
		}
		got := extract(outs[i], s.target.Model, s.dev.Hostname)
		want := subRes[i].Fetched.Config
		m := s.target.Model
		if device.Normalize(m, got) == device.Normalize(m, want) {
			same++
		} else {
			fmt.Fprintf(os.Stderr, "%s: RANCID's text differs from holiday's:\n%s", s.target.Name, device.Diff(m, "rancid", got, "holiday", want))
		}
	}
	ratio := rancid.Seconds() / holidaySub.Seconds()
	fmt.Printf("RANCID (clogin/jlogin) on the %d IOS, EOS and Junos devices: %s; holiday on the same: %s; holiday is %.1f× faster (goal ≥ %.0f×)\n",
		len(subset), rancid.Round(time.Millisecond), holidaySub.Round(time.Millisecond), ratio, goal)
	fmt.Printf("same config text (normalized): %d of %d\n", same, len(subset))
	if same != len(subset) {
		return fmt.Errorf("%d configs differ between RANCID and holiday", len(subset)-same)
	}
	return verdict(all, limit, failed, ratio, goal)
}

func verdict(all, limit time.Duration, failed int, ratio, goal float64) error {
	switch {
	case failed > 0:
		return fmt.Errorf("%d devices failed", failed)
	case all > limit:
		return fmt.Errorf("took %s, over the goal of %s", all.Round(time.Millisecond), limit)
	case ratio != 0 && ratio < goal:
		return fmt.Errorf("only %.1f× RANCID's speed, goal %.0f×", ratio, goal)
	}
	return nil
}

// extract cuts the config out of a clogin/jlogin transcript: the lines
// after the echo of the show command, up to the device's next prompt.
func extract(transcript, model, host string) string {
	t := strings.ReplaceAll(transcript, "\r\n", "\n")
	t = strings.ReplaceAll(t, "\r", "")
	show := "show running-config"
	if model == "junos" {
		show = device.Drivers["junos"].ShowCommand
	}
	i := strings.Index(t, show+"\n")
	if i < 0 {
		return ""
	}
	var out strings.Builder
	for l := range strings.Lines(t[i+len(show)+1:]) {
		if strings.HasPrefix(l, host+"#") || strings.HasPrefix(l, "backup@"+host+">") {
			break
		}
		out.WriteString(l)
	}
	s := out.String()
	if strings.HasSuffix(s, "\n\n") {
		s = s[:len(s)-1] // Junos prints a blank line before its prompt
	}
	return s
}
