package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/backend"
	s3be "github.com/holiday-ops/holiday/backup/backend/s3"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/labtest"
	"github.com/holiday-ops/holiday/internal/testenv"
)

// TestRepoS3SeveralWriters: three control nodes (three processes, each
// with its own node name, $HOLIDAY_HOSTNAME, and backing up as its own
// host) write into one repository on the lab's versitygw at the same
// time, ten rounds: the lock files name the three nodes while they run
// (at least two at one moment), every backup succeeds, every snapshot is
// there, holiday's and restic's checks are clean and no lock is left
// behind.
func TestRepoS3SeveralWriters(t *testing.T) {
	testenv.Short(t, "builds the binary, runs 30 backups against the lab's S3 server")
	lab := labtest.Require(t)
	if lab == nil {
		return
	}
	rp := newS3Repo(t, lab, "fleet", "several writers\n")
	bin, dir, pw, repoURL, cfg := rp.bin, rp.dir, rp.pw, rp.url, rp.bucket
	env := append(rp.env, "HOLIDAY_PASSWORD_FILE="+pw, "HOLIDAY_REPOSITORY="+repoURL)
	if r := runHoliday(t, bin, env, "repo", "init"); r.code != 0 {
		t.Fatalf("init: %s", r.stderr)
	}
	// what all nodes share (the same blobs saved at once by several
	// writers) and what each has of its own
	shared := make([]byte, 2<<20)
	_, _ = rand.Read(shared)
	nodes := []string{"control-a", "control-b", "control-c"}
	// each process names its control node in its lock files
	// ($HOLIDAY_HOSTNAME): a watcher reads the lock files while the
	// backups run and records which nodes hold one at once
	be, err := s3be.Open(context.Background(), s3be.Config{Endpoint: cfg.Endpoint, Bucket: cfg.Bucket, Prefix: "fleet", Region: cfg.Region,
		AccessKeyIDEnv: cfg.AccessKeyIDEnv, SecretAccessKeyEnv: cfg.SecretAccessKeyEnv})
	if err != nil {
		t.Fatal(err)
	}
	watch, err := repo.Open(context.Background(), be, "several writers")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{} // nodes seen holding a lock
	most := 0                 // the most nodes seen holding locks at one moment
	const rounds = 10
	for round := range rounds {
		stop := make(chan struct{})
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			for {
				now := map[string]bool{}
				_ = watch.List(context.Background(), backend.LockFile, func(id repo.ID, _ int64) error {
					if l, err := watch.LoadLock(context.Background(), id); err == nil {
						now[l.Hostname] = true
					}
					return nil
				})
				for n := range now {
					seen[n] = true
				}
				most = max(most, len(now))
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		var wg sync.WaitGroup
		results := make([]result, len(nodes))
		for i, node := range nodes {
			src := filepath.Join(dir, node)
			writeFile(t, filepath.Join(src, "shared.bin"), string(shared))
			own := make([]byte, 1<<20)
			_, _ = rand.Read(own)
			writeFile(t, filepath.Join(src, fmt.Sprintf("own-%d.bin", round)), string(own))
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = runHolidayNoFatal(bin, append(env, "HOLIDAY_HOSTNAME="+node), "repo", "backup", "-q", "--host", node, "--tag", fmt.Sprintf("round:%d", round), src)
			}()
		}
		wg.Wait()
		close(stop)
		<-watched
		for i, r := range results {
			if r.code != 0 {
				t.Fatalf("round %d: backup of %s: exit %d\n%s", round, nodes[i], r.code, r.stderr)
			}
		}
	}
	t.Logf("lock files named %v; at most %d nodes at one moment", seen, most)
	for _, node := range nodes {
		if !seen[node] {
			t.Errorf("no lock file of %s seen while it backed up (lock files named %v)", node, seen)
		}
	}
	if len(seen) != len(nodes) {
		t.Errorf("lock files named %v, want only the three control nodes", seen)
	}
	if most < 2 {
		t.Errorf("never saw two control nodes holding locks at once (most %d): the backups did not overlap", most)
	}
	r := runHoliday(t, bin, env, "repo", "snapshots", "--json")
	var sns []struct {
		Hostname string   `json:"hostname"`
		Tags     []string `json:"tags"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sns); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, s := range sns {
		have[s.Hostname+" "+strings.Join(s.Tags, ",")] = true
	}
	for round := range rounds {
		for _, node := range nodes {
			if k := fmt.Sprintf("%s round:%d", node, round); !have[k] {
				t.Errorf("snapshot of %s missing", k)
			}
		}
	}
	if len(sns) != rounds*len(nodes) {
		t.Errorf("%d snapshots, want %d", len(sns), rounds*len(nodes))
	}
	if r := runHoliday(t, bin, env, "repo", "check", "-q", "--read-data"); r.code != 0 || !strings.Contains(r.stdout, "no errors were found") {
		t.Errorf("holiday check: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := exec.LookPath("restic"); err == nil {
		cmd := exec.Command("restic", "-r", repoURL, "--no-cache", "--password-file", pw, "check")
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "no errors were found") {
			t.Errorf("restic check: %v\n%s", err, out)
		}
	} else if testenv.CI() {
		t.Error("restic is not installed but CI=true")
	} else {
		t.Log("restic is not installed: its check of the repository is left out")
	}
	var locks []string
	_ = be.List(context.Background(), backend.LockFile, func(fi backend.FileInfo) error {
		locks = append(locks, fi.Name)
		return nil
	})
	if len(locks) > 0 {
		t.Errorf("%d locks left behind: %v", len(locks), locks)
	}
}
