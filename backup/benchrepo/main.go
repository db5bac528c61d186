// Command benchrepo runs holiday's repository benchmark side by side with
// stock restic (Debian's 0.14 and, when given, 0.18.1) on the same data,
// the same machine, in one run: first backup of a tree of many small
// files, first backup of a disk-like image, an incremental backup after a
// 1 % scattered change, a restore of the image, check --read-data, and
// forget + prune of a repository whose first snapshot alone holds 30 %
// of its data (a second snapshot of the tree without those files).
// Each step is the median of -runs runs and includes opening the
// repository. It reports throughput, CPU seconds, peak RSS, repository
// size and bytes added, each also as a ratio to the faster restic.
//
// Usage (make bench-repo does this):
//
//	go run ./backup/benchrepo -holiday bin/holiday -restic restic -restic18 ~/go/bin/restic
//
// -only image (or tree, incremental, restore, check, comma-separated)
// measures just those steps, for a quick comparison.
//
// With -s3 s3:http://host:port/bucket every repository lives in that
// bucket instead (make bench-repo-s3 uses the lab's versitygw): holiday's
// S3 backend against restic's, over the same server.
//
// It is a tool, not a library: it imports nothing of holiday's (only the
// AWS SDK, to measure and remove the repositories on S3).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

var (
	holiday   = flag.String("holiday", "bin/holiday", "holiday binary")
	restic14  = flag.String("restic", "restic", "Debian's restic 0.14")
	restic18  = flag.String("restic18", "", "restic 0.18.1 (go install github.com/restic/restic/cmd/restic@v0.18.1); empty to skip")
	work      = flag.String("work", "/var/tmp/holiday-bench", "folder for data (kept between runs) and repositories")
	treeFrom  = flag.String("tree-from", "/usr", "where the tree of small files is copied from")
	treeSize  = flag.Int64("tree-size", 1536<<20, "bytes of the tree")
	imageSize = flag.Int64("image-size", 2<<30, "bytes of the disk image")
	blockSize = flag.String("block-size", "1MiB", "holiday's fixed block size for the image")
	runs      = flag.Int("runs", 3, "runs per step (the median is reported)")
	jsonOut   = flag.String("json", "", "also write the results as JSON to this file")
	s3URL     = flag.String("s3", "", "put the repositories on S3 instead, below s3:http(s)://host[:port]/bucket[/prefix] (credentials from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); sizes are then object bytes")
	only      = flag.String("only", "", "comma-separated steps to run and report (tree, image, incremental, restore, check, prune); empty for all. The image backup also runs, unreported, before incremental, restore and check")
)

// stepKeys name the steps for -only, in the order of the report.
var stepKeys = []string{"tree", "image", "incremental", "restore", "check", "prune"}

// selected reports whether -only asks for step key.
func selected(key string) bool {
	if *only == "" {
		return true
	}
	for _, k := range strings.Split(*only, ",") {
		if strings.TrimSpace(k) == key {
			return true
		}
	}
	return false
}

type tool struct {
	name string
	bin  string
	kind string // holiday or restic
}

type measure struct {
	Wall, CPU float64 // seconds
	RSS       int64   // peak, KiB
	RepoSize  int64   // bytes after the step
	Added     int64   // bytes the step added to the repository
	Bytes     int64   // bytes of data the step processes
}

const password = "bench-password"

// place is the S3 place of -s3, or nil for local repositories.
var place *s3Place

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchrepo:", err)
		os.Exit(1)
	}
}

func run() error {
	if *s3URL != "" {
		p, err := newS3Place(*s3URL)
		if err != nil {
			return err
		}
		place = p
		defer place.close()
	}
	tools := []tool{{"holiday", *holiday, "holiday"}, {"restic 0.14", *restic14, "restic"}}
	if *restic18 != "" {
		tools = append(tools, tool{"restic 0.18", *restic18, "restic"})
	}
	for _, t := range tools {
		if _, err := exec.LookPath(t.bin); err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
	}
	data := filepath.Join(*work, "data")
	tree := filepath.Join(data, "tree")
	img := filepath.Join(data, "img", "disk.img")
	for _, k := range strings.Split(*only, ",") {
		if k = strings.TrimSpace(k); k != "" && !slices.Contains(stepKeys, k) {
			return fmt.Errorf("-only: unknown step %q (have %s)", k, strings.Join(stepKeys, ", "))
		}
	}
	if selected("tree") || selected("prune") {
		if err := makeTree(tree); err != nil {
			return err
		}
	}
	if needImage() {
		if err := makeImage(img); err != nil {
			return err
		}
	}
	treeBytes := duApparent(tree)
	allSteps := []string{"tree, first backup", "image, first backup", "image, incremental after 1 % change", "image, restore", "check --read-data",
		"forget + prune, 30 % unused (tree)"}
	var steps []string
	for i, k := range stepKeys {
		if selected(k) {
			steps = append(steps, allSteps[i])
		}
	}
	results := map[string]map[string][]measure{}
	for _, t := range tools {
		results[t.name] = map[string][]measure{}
	}
	for r := 0; r < *runs; r++ {
		// each step runs for every tool back to back, in an order rotated
		// per run, so that a shared machine's load swings hit all alike
		order := append(append([]tool{}, tools[r%len(tools):]...), tools[:r%len(tools)]...)
		fmt.Fprintf(os.Stderr, "run %d/%d\n", r+1, *runs)
		ms, err := oneRun(order, tree, img, treeBytes)
		if err != nil {
			return err
		}
		for name, steps2 := range ms {
			for k, m := range steps2 {
				step := allSteps[slices.Index(stepKeys, k)]
				results[name][step] = append(results[name][step], m)
			}
		}
	}
	report(os.Stdout, tools, steps, results)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		return os.WriteFile(*jsonOut, b, 0o644)
	}
	return nil
}

// oneRun makes fresh repositories and measures every selected step once
// for each tool, step by step; the result is keyed by tool, then step key.
func oneRun(tools []tool, tree, img string, treeBytes int64) (map[string]map[string]measure, error) {
	out := map[string]map[string]measure{}
	type repos struct{ tree, img, restore, prune string }
	rs := map[string]repos{}
	for _, t := range tools {
		base := filepath.Join(*work, "repos", strings.ReplaceAll(t.name, " ", "-"))
		_ = os.RemoveAll(base)
		if err := os.MkdirAll(base, 0o700); err != nil {
			return nil, err
		}
		defer os.RemoveAll(base)
		x := repos{filepath.Join(base, "tree"), filepath.Join(base, "img"), filepath.Join(base, "restore"), filepath.Join(base, "prune")}
		if place != nil {
			at := fmt.Sprintf("%s/%d-%s", place.url, time.Now().UnixNano(), strings.ReplaceAll(t.name, " ", "-"))
			x.tree, x.img, x.prune = at+"/tree", at+"/img", at+"/prune"
			defer place.remove(x.tree)
			defer place.remove(x.img)
			defer place.remove(x.prune)
		}
		if selected("tree") {
			if err := initRepo(t, x.tree); err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
		}
		if needImage() {
			if err := initRepo(t, x.img); err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
		}
		if selected("prune") {
			if err := initRepo(t, x.prune); err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
		}
		rs[t.name] = x
		out[t.name] = map[string]measure{}
	}
	step := func(name string, n func(tool) int64, args func(tool, repos) []string, repo func(repos) string) error {
		for _, t := range tools {
			m, err := timed(t, repo(rs[t.name]), n(t), args(t, rs[t.name])...)
			if err != nil {
				return fmt.Errorf("%s, %s: %w", t.name, name, err)
			}
			if selected(name) {
				out[t.name][name] = m
			}
		}
		return nil
	}
	imgSize := func(tool) int64 { return *imageSize }
	imgRepo := func(x repos) string { return x.img }
	if selected("tree") {
		if err := step("tree", func(tool) int64 { return treeBytes },
			func(t tool, x repos) []string { return backupArgs(t, x.tree, tree, false) },
			func(x repos) string { return x.tree }); err != nil {
			return nil, err
		}
	}
	if selected("prune") {
		// the same two snapshots in each tool's repository: the whole
		// tree, then the tree without 30 % of its files (by bytes, picked
		// at random with a fixed seed, so unused data is in most packs);
		// then the timed forget of the first and prune
		pruneRepo := func(x repos) string { return x.prune }
		untimed := func(args func(tool, repos) []string) error {
			for _, t := range tools {
				if _, err := timed(t, rs[t.name].prune, 0, args(t, rs[t.name])...); err != nil {
					return fmt.Errorf("%s, prune set-up: %w", t.name, err)
				}
			}
			return nil
		}
		treeBackup := func(t tool, x repos) []string { return backupArgs(t, x.prune, tree, false) }
		if err := untimed(treeBackup); err != nil {
			return nil, err
		}
		back, err := hideShare(tree, 0.30)
		if err != nil {
			return nil, err
		}
		err = untimed(treeBackup)
		if berr := back(); err == nil {
			err = berr
		}
		if err != nil {
			return nil, err
		}
		if err := step("prune", func(t tool) int64 { return dirSize(rs[t.name].prune) }, func(t tool, x repos) []string {
			if t.kind == "holiday" {
				return []string{"repo", "forget", "-q", "--repo", x.prune, "--keep-last", "1", "--prune"}
			}
			return []string{"-r", x.prune, "--no-cache", "-q", "forget", "--keep-last", "1", "--prune"}
		}, pruneRepo); err != nil {
			return nil, err
		}
	}
	if !needImage() {
		return out, nil
	}
	if err := step("image", imgSize, func(t tool, x repos) []string { return backupArgs(t, x.img, img, true) }, imgRepo); err != nil {
		return nil, err
	}
	if !selected("incremental") && !selected("restore") && !selected("check") {
		return out, nil
	}
	undo, err := changeImage(img)
	if err != nil {
		return nil, err
	}
	err = step("incremental", imgSize, func(t tool, x repos) []string { return backupArgs(t, x.img, img, true) }, imgRepo)
	if uerr := undo(); err == nil {
		err = uerr
	}
	if err != nil {
		return nil, err
	}
	if err := step("restore", imgSize, func(t tool, x repos) []string {
		_ = os.RemoveAll(x.restore)
		if t.kind == "holiday" {
			return []string{"repo", "restore", "-q", "--repo", x.img, "latest", "--target", x.restore, "--include", img}
		}
		return []string{"-r", x.img, "--no-cache", "-q", "restore", "latest", "--target", x.restore}
	}, imgRepo); err != nil {
		return nil, err
	}
	for _, x := range rs {
		_ = os.RemoveAll(x.restore)
	}
	if err := step("check", func(t tool) int64 { return dirSize(rs[t.name].img) }, func(t tool, x repos) []string {
		if t.kind == "holiday" {
			return []string{"repo", "check", "-q", "--read-data", "--repo", x.img}
		}
		return []string{"-r", x.img, "--no-cache", "-q", "check", "--read-data"}
	}, imgRepo); err != nil {
		return nil, err
	}
	return out, nil
}

// needImage reports whether a selected step uses the image.
func needImage() bool {
	return selected("image") || selected("incremental") || selected("restore") || selected("check")
}

// hideShare moves files holding about share of dir's bytes, picked with
// a fixed seed, out of dir (into dir+".hidden"); the function returned
// puts them back.
func hideShare(dir string, share float64) (func() error, error) {
	hidden := dir + ".hidden"
	// a run killed while files were hidden left them there: back first
	_ = filepath.WalkDir(hidden, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(hidden, p)
			_ = os.Rename(p, filepath.Join(dir, rel))
		}
		return nil
	})
	_ = os.RemoveAll(hidden)
	rng := rand.New(rand.NewPCG(7, 11))
	var moved []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || d.Name() == ".complete" || rng.Float64() >= share {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		to := filepath.Join(hidden, rel)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return err
		}
		if err := os.Rename(p, to); err != nil {
			return err
		}
		moved = append(moved, rel)
		return nil
	})
	back := func() error {
		for _, rel := range moved {
			if err := os.Rename(filepath.Join(hidden, rel), filepath.Join(dir, rel)); err != nil {
				return fmt.Errorf("put back %s: %w", rel, err)
			}
		}
		return os.RemoveAll(hidden)
	}
	if err != nil {
		_ = back()
		return nil, err
	}
	return back, nil
}

func backupArgs(t tool, repo, path string, image bool) []string {
	if t.kind == "holiday" {
		a := []string{"repo", "backup", "-q", "--repo", repo}
		if image {
			a = append(a, "--block-size", *blockSize)
		}
		return append(a, path)
	}
	return []string{"-r", repo, "--no-cache", "-q", "backup", path}
}

func initRepo(t tool, repo string) error {
	var cmd *exec.Cmd
	if t.kind == "holiday" {
		cmd = exec.Command(t.bin, "repo", "init", "-q", "--repo", repo)
	} else {
		cmd = exec.Command(t.bin, "-r", repo, "-q", "init")
	}
	cmd.Env = env()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("init: %v\n%s", err, out)
	}
	return nil
}

func env() []string {
	return append(os.Environ(), "HOLIDAY_PASSWORD="+password, "RESTIC_PASSWORD="+password, "GOGC=")
}

// timed runs one command and measures wall time, CPU time and peak RSS of
// the child (from its rusage), and the repository's growth.
func timed(t tool, repo string, n int64, args ...string) (measure, error) {
	before := dirSize(repo)
	cmd := exec.Command(t.bin, args...)
	cmd.Env = env()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cmd.Stdout = io.Discard
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start).Seconds()
	if err != nil {
		return measure{}, fmt.Errorf("%s %s: %v\n%s", t.bin, strings.Join(args, " "), err, stderr.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	after := dirSize(repo)
	return measure{Wall: wall, CPU: cpu, RSS: ru.Maxrss, RepoSize: after, Added: after - before, Bytes: n}, nil
}

func dirSize(dir string) int64 {
	if place != nil && strings.HasPrefix(dir, "s3:") {
		return place.size(dir)
	}
	var n int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Sys().(*syscall.Stat_t).Blocks * 512
			}
		}
		return nil
	})
	return n
}

func duApparent(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// makeTree copies regular files from -tree-from, in a fixed order, until
// -tree-size bytes; kept between runs.
func makeTree(dst string) error {
	if _, err := os.Stat(filepath.Join(dst, ".complete")); err == nil {
		return nil
	}
	fmt.Fprintf(os.Stderr, "copying %d MiB of %s to %s\n", *treeSize>>20, *treeFrom, dst)
	_ = os.RemoveAll(dst)
	var total int64
	stop := fmt.Errorf("enough")
	err := filepath.WalkDir(*treeFrom, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil || fi.Size() > 64<<20 {
			return nil
		}
		rel, _ := filepath.Rel(*treeFrom, p)
		if err := copyFile(p, filepath.Join(dst, rel), fi.Mode().Perm()); err != nil {
			return nil // unreadable: skip
		}
		total += fi.Size()
		if total >= *treeSize {
			return stop
		}
		return nil
	})
	if err != nil && err != stop {
		return err
	}
	return os.WriteFile(filepath.Join(dst, ".complete"), nil, 0o644)
}

func copyFile(from, to string, mode fs.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// makeImage writes a disk-like image: 4 MiB regions, 40 % random, 40 %
// zeros, 20 % text, from a fixed seed; kept between runs.
func makeImage(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.Size() == *imageSize {
		return nil
	}
	fmt.Fprintf(os.Stderr, "writing a %d MiB disk-like image to %s\n", *imageSize>>20, path)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 4<<20)
	rng := rand.New(rand.NewPCG(42, 7))
	const region = 4 << 20
	words := strings.Fields("the disk holds logs configs databases and binaries of a host that ops teams back up before a long break")
	buf := make([]byte, region)
	for off := int64(0); off < *imageSize; off += region {
		switch x := rng.IntN(10); {
		case x < 4:
			for i := 0; i+8 <= len(buf); i += 8 {
				v := rng.Uint64()
				for j := 0; j < 8; j++ {
					buf[i+j] = byte(v >> (8 * j))
				}
			}
		case x < 8:
			clear(buf)
		default:
			i := 0
			for i < len(buf) {
				i += copy(buf[i:], words[rng.IntN(len(words))]+" ")
				if rng.IntN(12) == 0 && i < len(buf) {
					buf[i] = '\n'
					i++
				}
			}
		}
		if _, err := w.Write(buf); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// changeImage overwrites 50 scattered 400 KiB regions (~1 % of 2 GiB)
// with random data and returns a function that puts the old bytes back.
func changeImage(path string) (func() error, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(99, 1))
	type saved struct {
		off int64
		old []byte
	}
	var undo []saved
	offs := map[int64]bool{}
	for len(offs) < 50 {
		offs[rng.Int64N(*imageSize/(400<<10)-1)*(400<<10)] = true
	}
	var sorted []int64
	for o := range offs {
		sorted = append(sorted, o)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	for _, off := range sorted {
		old := make([]byte, 400<<10)
		if _, err := f.ReadAt(old, off); err != nil {
			f.Close()
			return nil, err
		}
		nw := make([]byte, 400<<10)
		for i := range nw {
			nw[i] = byte(rng.Uint32())
		}
		if _, err := f.WriteAt(nw, off); err != nil {
			f.Close()
			return nil, err
		}
		undo = append(undo, saved{off, old})
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return func() error {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		for _, u := range undo {
			if _, err := f.WriteAt(u.old, u.off); err != nil {
				f.Close()
				return err
			}
		}
		return f.Close()
	}, nil
}

func median(ms []measure) measure {
	pick := func(get func(measure) float64) float64 {
		v := make([]float64, len(ms))
		for i, m := range ms {
			v[i] = get(m)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	return measure{
		Wall:     pick(func(m measure) float64 { return m.Wall }),
		CPU:      pick(func(m measure) float64 { return m.CPU }),
		RSS:      int64(pick(func(m measure) float64 { return float64(m.RSS) })),
		RepoSize: int64(pick(func(m measure) float64 { return float64(m.RepoSize) })),
		Added:    int64(pick(func(m measure) float64 { return float64(m.Added) })),
		Bytes:    ms[0].Bytes,
	}
}

func report(w io.Writer, tools []tool, steps []string, results map[string]map[string][]measure) {
	fmt.Fprintf(w, "median of %d runs; ratios are holiday ÷ the faster restic (throughput: higher is better; the rest: lower is better)\n\n", *runs)
	for _, step := range steps {
		fmt.Fprintf(w, "%s\n", step)
		fmt.Fprintf(w, "  %-12s %10s %9s %9s %10s %11s %11s\n", "tool", "MB/s", "wall s", "CPU s", "peak MiB", "repo MB", "added MB")
		best := ""
		for _, t := range tools[1:] {
			if best == "" || median(results[t.name][step]).Wall < median(results[best][step]).Wall {
				best = t.name
			}
		}
		for _, t := range tools {
			m := median(results[t.name][step])
			fmt.Fprintf(w, "  %-12s %10.0f %9.2f %9.2f %10d %11.1f %11.1f\n", t.name, float64(m.Bytes)/1e6/m.Wall, m.Wall, m.CPU, m.RSS>>10, float64(m.RepoSize)/1e6, float64(m.Added)/1e6)
		}
		h, b := median(results["holiday"][step]), median(results[best][step])
		ratio := func(x, y float64) string {
			if y == 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f×", x/y)
		}
		fmt.Fprintf(w, "  ratio vs %-s: throughput %s, CPU %s, peak RSS %s, repo size %s, added %s\n\n", best,
			ratio(b.Wall, h.Wall), ratio(h.CPU, b.CPU), ratio(float64(h.RSS), float64(b.RSS)),
			ratio(float64(h.RepoSize), float64(b.RepoSize)), ratio(float64(h.Added), float64(b.Added)))
	}
}
