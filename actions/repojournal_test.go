package actions

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/faulty"
	"github.com/holiday-ops/holiday/backup/backend/mem"
	s3be "github.com/holiday-ops/holiday/backup/backend/s3"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/repocmd"
	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/internal/journal"
	"github.com/holiday-ops/holiday/internal/testenv"
	"github.com/holiday-ops/holiday/plans"
)

const rjKind = "repojournal-test"

var (
	rjLog []string
	rjMu  sync.Mutex
)

func init() {
	RegisterKind(rjKind, func(target string) (Action, error) {
		return fakeAction{name: target, log: &rjLog, mu: &rjMu}, nil
	})
}

const rjPassword = "correct horse battery staple"

// newJournalRepo makes a repository in a temporary directory and returns
// its RepoJournals (plan "p1", pinned until a fixed day).
func newJournalRepo(t *testing.T) *RepoJournals {
	t.Helper()
	dir := t.TempDir()
	pw := filepath.Join(dir, "pass")
	if err := os.WriteFile(pw, []byte(rjPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &repocmd.Env{Repo: filepath.Join(dir, "repo"), PasswordFile: pw, Quiet: true, Stdout: io.Discard, Stderr: io.Discard}
	if err := repocmd.Init(context.Background(), e, repocmd.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	return &RepoJournals{Env: e, Plan: "p1", PinUntil: time.Date(2027, 3, 19, 9, 0, 0, 0, time.UTC), ProgramVersion: "holiday test"}
}

// writeJournal writes a host's journal of run with n steps and returns it.
func writeJournal(t *testing.T, path string, key journal.Key, run, host string, n int) []byte {
	t.Helper()
	w, err := journal.Create(path, key)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write(journal.Entry{Run: run, Host: host, Phase: journal.RunBegin, Kind: "lockdown"})
	for i := range n {
		rec, _ := NewRecord(rjKind, string(rune('a'+i)), map[string]string{"was": "on"})
		w.Write(journal.Entry{Run: run, Host: host, Step: rjKind + ":" + rec.Target, Kind: rjKind, Phase: journal.Intent, Record: mustJSON(rec)})
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJournalsTravelThroughRepository: a lockdown keeps each host's
// journal and the key in the repository; a second control node with an
// empty state dir and another key loads them, verified, reverts from
// them, and its restore is saved too — the newest snapshot holds the
// whole journal. Stock restic checks the repository, lists the
// snapshots and dumps the same bytes.
func TestJournalsTravelThroughRepository(t *testing.T) {
	rj := newJournalRepo(t)
	ctx := context.Background()
	keyA, _ := journal.NewKey()
	stateA := t.TempDir()
	conn := func(name string) func(context.Context) (*Host, func(), error) {
		return func(context.Context) (*Host, func(), error) { return &Host{Name: name}, func() {}, nil }
	}
	fa := func(name string) Action { return fakeAction{name: name, log: &rjLog, mu: &rjMu} }
	jobs := []Job{
		{Name: "web1", Connect: conn("web1"), Steps: []Step{{Slot: SlotServices, Kind: rjKind, Target: "nginx", Action: fa("nginx")}}},
		{Name: "db1", Connect: conn("db1"), Steps: []Step{
			{Slot: SlotServices, Kind: rjKind, Target: "cron", Action: fa("cron")},
			{Slot: SlotFirewall, Kind: rjKind, Target: "fw", Action: fa("fw")},
		}},
		{Name: "gone1", Connect: func(context.Context) (*Host, func(), error) { return nil, nil, os.ErrDeadlineExceeded }},
	}
	t0 := time.Now()
	res, err := Lockdown(ctx, Options{StateDir: stateA, Key: keyA, NoHostCopy: true, Journals: rj}, jobs)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lockdown of fake hosts, journals saved to a local repository: %v", time.Since(t0).Round(time.Millisecond))
	if res.Offsite == nil || res.Offsite.Error != "" || len(res.Offsite.Snapshots) != 2 {
		t.Fatalf("offsite = %+v, want two snapshots (web1, db1; gone1 has no journal)", res.Offsite)
	}

	// The second control node: its own key, an empty state dir.
	keyB, _ := journal.NewKey()
	stateB := t.TempDir()
	t0 = time.Now()
	rr, err := rj.LoadRun(ctx, "", []string{"web1", "db1", "gone1"}, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("LoadRun: %v", time.Since(t0).Round(time.Millisecond))
	if rr.Run != res.Run || rr.Command != "lockdown" || !bytes.Equal(rr.Key, keyA) || len(rr.Journals) != 2 {
		t.Fatalf("LoadRun = run %s %s, key A %v, %d journals", rr.Run, rr.Command, bytes.Equal(rr.Key, keyA), len(rr.Journals))
	}
	for _, h := range []string{"web1", "db1"} {
		local, _ := os.ReadFile(JournalPath(stateA, res.Run, h))
		if !bytes.Equal(rr.Journals[h], local) {
			t.Errorf("%s: the repository's journal differs from the control node's", h)
		}
		if got, want := rr.Snapshots[h].Tags, []string{"holiday", JournalKindTag, "run:" + res.Run, "plan:p1", "command:lockdown", "saved-by:lockdown", "holiday-pin", "pin-until:2027-03-19"}; !slices.Equal(got, want) {
			t.Errorf("%s: tags %q, want %q", h, got, want)
		}
		if err := StoreHostJournal(stateB, h, JournalCopy{Run: rr.Run, Host: h, Data: rr.Journals[h]}); err != nil {
			t.Fatal(err)
		}
	}
	// Whose key: B's own does not fit, the repository's does.
	if k, err := RunKey(ctx, rj, keyB, rr.Run, [][]byte{rr.Journals["web1"]}); err != nil || !bytes.Equal(k, keyA) {
		t.Fatalf("RunKey on the second control node = %v, %v; want the first's key", k.Fingerprint(), err)
	}
	if k, err := RunKey(ctx, rj, keyA, rr.Run, [][]byte{rr.Journals["web1"]}); err != nil || !bytes.Equal(k, keyA) {
		t.Fatalf("RunKey on the first control node = %v, %v", k, err)
	}

	rjLog = nil
	var rjobs []RevertJob
	for _, h := range []string{"web1", "db1", "gone1"} {
		rjobs = append(rjobs, RevertJob{Name: h, Journal: JournalPath(stateB, rr.Run, h), Connect: conn(h)})
	}
	rres := RevertJournals(ctx, Options{StateDir: stateB, Key: rr.Key, NoHostCopy: true, RunID: rr.Run, Journals: rj}, rjobs)
	for _, h := range rres.Hosts {
		if h.Status != HostDone {
			t.Errorf("restore on the second control node: %s %s %s", h.Host, h.Status, h.Error)
		}
	}
	slices.Sort(rjLog)
	if want := []string{"db1 revert cron done=true", "db1 revert fw done=true", "web1 revert nginx done=true"}; !slices.Equal(rjLog, want) {
		t.Errorf("reverts %q, want %q", rjLog, want)
	}
	if rres.Offsite == nil || rres.Offsite.Error != "" || len(rres.Offsite.Snapshots) != 2 {
		t.Fatalf("restore's offsite = %+v", rres.Offsite)
	}
	again, err := rj.LoadRun(ctx, rr.Run, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(again.Snapshots["db1"].Tags, "saved-by:restore") || !bytes.Contains(again.Journals["db1"], []byte(`"kind":"restore"`)) {
		t.Errorf("the newest journal snapshot of db1 is not the restore's: tags %q", again.Snapshots["db1"].Tags)
	}

	// Stock restic: the repository checks, the snapshots are listed and
	// hold the same bytes.
	if _, err := exec.LookPath("restic"); err != nil {
		testenv.Skip(t, "restic is not installed (apt-get install restic); it is the format oracle")
	}
	restic := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("restic", append([]string{"-r", rj.Env.Repo, "--no-cache", "--password-file", rj.Env.PasswordFile}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("restic %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	restic("check", "--read-data")
	var sns []struct {
		ID       string   `json:"id"`
		Hostname string   `json:"hostname"`
		Tags     []string `json:"tags"`
	}
	if err := json.Unmarshal(restic("snapshots", "--json", "--tag", JournalKindTag), &sns); err != nil {
		t.Fatal(err)
	}
	if len(sns) != 4 {
		t.Errorf("restic lists %d kind:journal snapshots, want 4 (2 hosts × lockdown, restore)", len(sns))
	}
	id := again.Snapshots["db1"].ID.String()
	if got := restic("dump", id, "/db1.journal"); !bytes.Equal(got, again.Journals["db1"]) {
		t.Errorf("restic dump of db1's journal differs from what holiday loaded")
	}
	if got := restic("dump", id, "/"+JournalKeyFile); !bytes.Equal(got, keyA.Encode()) {
		t.Errorf("restic dump of the key file differs from the key")
	}
}

// TestLoadRunRefuses: what LoadRun must not hand to a restore — each is
// an error saying what is wrong, and nothing is returned.
func TestLoadRunRefuses(t *testing.T) {
	ctx := context.Background()
	run := "20261206T030000Z-aaaaaa"
	dir := t.TempDir()
	key, _ := journal.NewKey()
	other, _ := journal.NewKey()
	web1 := writeJournal(t, filepath.Join(dir, "web1"), key, run, "web1", 2)
	db1 := writeJournal(t, filepath.Join(dir, "db1"), key, run, "db1", 1)
	tampered := bytes.Replace(web1, []byte(`"was":"on"`), []byte(`"was":"off"`), 1)
	if bytes.Equal(tampered, web1) {
		t.Fatal("the test's tampering changed nothing")
	}
	for _, tc := range []struct {
		name  string
		store func(rj *RepoJournals) // what the repository holds
		run   string
		hosts []string
		want  []string
	}{
		{"an entry altered", func(rj *RepoJournals) {
			rj.store(ctx, nil, run, "lockdown", key, []hostJournal{{"web1", tampered}, {"db1", db1}})
		}, "", nil, []string{"web1", "MAC mismatch", "nothing was applied", "--from-host"}},
		{"one host's key replaced", func(rj *RepoJournals) {
			rj.store(ctx, nil, run, "lockdown", key, []hostJournal{{"web1", web1}})
			rj.store(ctx, nil, run, "lockdown", other, []hostJournal{{"db1", db1}})
		}, "", nil, []string{"one run has one key", key.Fingerprint(), other.Fingerprint()}},
		{"a journal filed under another host", func(rj *RepoJournals) {
			rj.store(ctx, nil, run, "lockdown", key, []hostJournal{{"db1", web1}})
		}, "", nil, []string{"db1", "belongs to run", "host web1"}},
		{"no such run", func(rj *RepoJournals) {
			rj.store(ctx, nil, run, "lockdown", key, []hostJournal{{"web1", web1}})
		}, "20261206T040000Z-bbbbbb", nil, []string{"holds no journal of run 20261206T040000Z-bbbbbb", "it holds journals of run " + run + " (lockdown: web1)"}},
		{"not for these hosts", func(rj *RepoJournals) {
			rj.store(ctx, nil, run, "lockdown", key, []hostJournal{{"web1", web1}})
		}, "", []string{"mail1"}, []string{"no lockdown or isolate run for mail1", "(lockdown: web1)"}},
		{"nothing at all", func(*RepoJournals) {}, "", nil, []string{"holds no journals of this plan at all"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rj := newJournalRepo(t)
			tc.store(rj)
			rr, err := rj.LoadRun(ctx, tc.run, tc.hosts, "")
			if err == nil {
				t.Fatalf("LoadRun = run %s with %d journals; want an error", rr.Run, len(rr.Journals))
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	// save itself refuses a journal its key does not verify, and saves
	// the others.
	rj := newJournalRepo(t)
	ids, err := rj.save(ctx, nil, run, "lockdown", key, []hostJournal{{"web1", tampered}, {"db1", db1}})
	if err == nil || !strings.Contains(err.Error(), "journal of web1, run "+run+", not saved") || len(ids) != 1 || ids["db1"] == "" {
		t.Errorf("save with web1's journal altered: %v, %v; want db1 saved and web1 refused", ids, err)
	}
}

// TestJournalsRepositoryUnreachable: the run succeeds on its hosts and
// its result says the journals were not kept off-site, and why — also
// when the repository password is missing, with how to give it.
func TestJournalsRepositoryUnreachable(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		env  repocmd.Env
		want []string
		hint string
	}{
		{"no repository there", repocmd.Env{Repo: filepath.Join(dir, "nothing"), PasswordFile: "/dev/null"}, []string{"repository " + filepath.Join(dir, "nothing") + " does not exist"}, ""},
		{"S3 server down", repocmd.Env{Repo: "s3:http://127.0.0.1:9/bucket/x", PasswordFile: "/dev/null",
			S3: s3be.Config{AccessKeyIDEnv: "RJ_TEST_ID", SecretAccessKeyEnv: "RJ_TEST_SECRET", Region: "us-east-1"}}, []string{"s3:http://127.0.0.1:9/bucket/x"}, ""},
		{"no password", repocmd.Env{Repo: t.TempDir(), PasswordEnv: "RJ_TEST_UNSET_PASSWORD"}, []string{"no repository password: $RJ_TEST_UNSET_PASSWORD is unset"}, "export it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("RJ_TEST_ID", "id")
			t.Setenv("RJ_TEST_SECRET", "secret")
			key, _ := journal.NewKey()
			e := tc.env
			e.Stdout, e.Stderr = io.Discard, io.Discard
			rj := &RepoJournals{Env: &e, Plan: "p1", Timeout: 20 * time.Second}
			jobs := []Job{{Name: "web1", Connect: func(context.Context) (*Host, func(), error) { return &Host{Name: "web1"}, func() {}, nil },
				Steps: []Step{{Slot: SlotServices, Kind: rjKind, Target: "nginx", Action: fakeAction{name: "nginx", log: &rjLog, mu: &rjMu}}}}}
			res, err := Lockdown(context.Background(), Options{StateDir: t.TempDir(), Key: key, NoHostCopy: true, Journals: rj}, jobs)
			if err != nil {
				t.Fatal(err)
			}
			if res.Failed() != 0 {
				t.Errorf("the hosts failed: %+v", res.Hosts)
			}
			if res.Offsite == nil || res.Offsite.Error == "" {
				t.Fatalf("offsite = %+v, want the error", res.Offsite)
			}
			t.Logf("error: %s; hint: %s", res.Offsite.Error, res.Offsite.Hint)
			for _, w := range tc.want {
				if !strings.Contains(res.Offsite.Error, w) {
					t.Errorf("error %q does not say %q", res.Offsite.Error, w)
				}
			}
			if !strings.Contains(res.Offsite.Hint, tc.hint) {
				t.Errorf("hint %q does not say %q", res.Offsite.Hint, tc.hint)
			}
		})
	}
}

// TestSaveRunJournals: the retry saves the run's journals as this
// control node holds them; without a repository in the plan it is a
// usage error.
func TestSaveRunJournals(t *testing.T) {
	ctx := context.Background()
	rj := newJournalRepo(t)
	state := t.TempDir()
	key, _ := journal.NewKey()
	run := "20261206T050000Z-cccccc"
	writeJournal(t, JournalPath(state, run, "web1"), key, run, "web1", 1)
	writeJournal(t, JournalPath(state, run, "db1"), key, run, "db1", 2)
	off, err := SaveRunJournals(ctx, Options{StateDir: state, Key: key, Journals: rj}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(off.Snapshots) != 2 {
		t.Errorf("saved %v, want web1 and db1", off.Snapshots)
	}
	rr, err := rj.LoadRun(ctx, run, nil, "")
	if err != nil || !slices.Contains(rr.Snapshots["web1"].Tags, "saved-by:save-journal") {
		t.Errorf("LoadRun after save-journal: %v", err)
	}
	if _, err := SaveRunJournals(ctx, Options{StateDir: state, Key: key}, run); exitcode.Of(err) != exitcode.Usage {
		t.Errorf("without a repository: %v (exit %d), want a usage error", err, exitcode.Of(err))
	}
}

func TestPlanRepoEnv(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		name string
		in   *plans.RepositoryS3
		want s3be.Config
	}{
		{"none: the SDK's chain", nil, s3be.Config{}},
		{"every field", &plans.RepositoryS3{
			AccessKeyIDEnv: "ID", AccessKeyIDFile: "/id", SecretAccessKeyEnv: "KEY", SecretAccessKeyFile: "/key",
			CredentialsFile: "/aws", Profile: "p", Region: "eu-1", PathStyle: &yes, EC2Metadata: true,
		}, s3be.Config{
			AccessKeyIDEnv: "ID", AccessKeyIDFile: "/id", SecretAccessKeyEnv: "KEY", SecretAccessKeyFile: "/key",
			CredentialsFile: "/aws", Profile: "p", Region: "eu-1", PathStyle: &yes, EC2Metadata: true,
		}},
	} {
		e := PlanRepoEnv(&plans.Repository{URL: "s3:http://h/b", PasswordEnv: "PW", S3: tc.in})
		if !reflect.DeepEqual(e.S3, tc.want) || e.Repo != "s3:http://h/b" || e.PasswordEnv != "PW" {
			t.Errorf("%s: got %+v, want S3 %+v", tc.name, e, tc.want)
		}
	}
}

// TestJournalsSavedThroughRunsRepository: a run that took backups saves
// its journals through the repository it already has open (one key
// derivation per run): with a password that would not open it again, the
// save still works and LoadRun (opening it for itself) reads them back.
func TestJournalsSavedThroughRunsRepository(t *testing.T) {
	ctx := context.Background()
	rj := newJournalRepo(t)
	r, release, err := rj.Env.Open(ctx, repocmd.SharedLock)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := r.LoadIndex(ctx); err != nil {
		t.Fatal(err)
	}
	good := rj.Env.PasswordFile
	bad := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(bad, []byte("not the password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rj.Env.PasswordFile = bad
	key, _ := journal.NewKey()
	run := NewRunID()
	web1 := writeJournal(t, filepath.Join(t.TempDir(), "web1.journal"), key, run, "web1", 2)
	if _, err := rj.save(ctx, nil, run, "lockdown", key, []hostJournal{{"web1", web1}}); err == nil || !strings.Contains(err.Error(), "wrong password") {
		t.Fatalf("save opening the repository itself with the wrong password: %v; want it refused", err)
	}
	ids, err := rj.save(ctx, r, run, "lockdown", key, []hostJournal{{"web1", web1}})
	if err != nil || ids["web1"] == "" {
		t.Fatalf("save through the run's repository: %v, %v", ids, err)
	}
	rj.Env.PasswordFile = good
	rr, err := rj.LoadRun(ctx, run, nil, "")
	if err != nil || !bytes.Equal(rr.Journals["web1"], web1) {
		t.Fatalf("LoadRun: %v; want web1's journal back", err)
	}
}

// TestJournalsReadBack: journals saved through the run's repository,
// which reads every pack back as it is stored, get a snapshot only once
// their packs read back sound; a pack the storage damaged fails the save
// naming the host and the pack, and no journal snapshot is written. The
// storage sound again, the next save stores them.
func TestJournalsReadBack(t *testing.T) {
	ctx := context.Background()
	rj := newJournalRepo(t)
	fb := faulty.New(mem.New())
	fb.OnlyTypes = map[backend.FileType]bool{backend.PackFile: true}
	r, err := repo.Init(ctx, fb, "pw")
	if err != nil {
		t.Fatal(err)
	}
	r.VerifyWrites(ctx)
	var damaged atomic.Value
	fb.Mangle = func(h backend.Handle, b []byte) []byte {
		if !damaged.CompareAndSwap(nil, h.Name) {
			return nil
		}
		b[0] ^= 1 // the first pack's first blob
		return b
	}
	key, _ := journal.NewKey()
	run := NewRunID()
	web1 := writeJournal(t, filepath.Join(t.TempDir(), "web1.journal"), key, run, "web1", 2)
	ids, err := rj.save(ctx, r, run, "lockdown", key, []hostJournal{{"web1", web1}})
	pack, _ := damaged.Load().(string)
	if err == nil || pack == "" || !strings.Contains(err.Error(), pack[:8]) || !strings.Contains(err.Error(), "web1") ||
		!strings.Contains(err.Error(), "no snapshot is written") {
		t.Fatalf("journals into a store that damaged pack %.8s: %v; want the save failed naming web1 and the pack", pack, err)
	}
	sns, err := r.Snapshots(ctx, nil)
	if err != nil || len(sns) != 0 || len(ids) != 0 {
		t.Fatalf("after the failed save: snapshots %d (%v), ids %v; want none", len(sns), err, ids)
	}
	fb.Mangle = nil
	if ids, err = rj.save(ctx, r, run, "lockdown", key, []hostJournal{{"web1", web1}}); err != nil || ids["web1"] == "" {
		t.Fatalf("second save, storage sound: %v, %v", ids, err)
	}
}
