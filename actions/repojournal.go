package actions

// The run's journals off this control node (DESIGN §5): when a run's
// journals are final — lockdown, isolate, a failed lockdown reverted,
// restore — each host's journal goes into the plan's repository together
// with the journal key that verifies it, so a second control node holding
// only the plan and the repository password can restore the run.
//
// Layout: one kind:journal snapshot per host and save (hostname = the
// host's name), holding two files at its root:
//
//	/<host>.journal  the journal, byte for byte as the control node holds it
//	/journal.key     the key its MACs are made with (hex, as journal.key files hold it)
//
// The key is a blob like any other, so the repository's key encrypts it;
// nothing secret is written in the clear, and no host ever sees it.
//
// Why per host rather than one snapshot per run: restore may take some
// hosts only (--host), and a later save of one host's journal (restore
// appends to it) then needs neither to read nor to rewrite the others';
// stock restic groups, lists (`snapshots --host`) and forgets them per host
// like the host's backups; and each snapshot is complete on its own, a
// journal with the key that verifies it. The key's blob is stored once
// however many snapshots name it, and one save writes all its hosts' blobs
// into one pack and one index file (the archiver's BackupReader would
// write a pack and an index per host: one lower-level write instead).
// A later save of the same host and run is a new snapshot; the newest one
// holds the whole journal (journals only grow).

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/restic/chunker"

	s3be "github.com/holiday-ops/holiday/backup/backend/s3"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/backup/repocmd"
	"github.com/holiday-ops/holiday/backup/restorer"
	"github.com/holiday-ops/holiday/internal/exitcode"
	"github.com/holiday-ops/holiday/internal/journal"
	"github.com/holiday-ops/holiday/plans"
)

// Tags and names of journal snapshots.
const (
	JournalKindTag = "kind:journal"
	// JournalKeyFile is the file in each journal snapshot holding the
	// journal key.
	JournalKeyFile   = "journal.key"
	commandTagPrefix = "command:"
	savedByTagPrefix = "saved-by:"
)

// JournalFile is the file a host's journal is stored as in its snapshot.
func JournalFile(host string) string { return host + ".journal" }

// RepoS3Config turns a plan's repository.s3 into the S3 backend's
// settings (where the credentials come from, region, addressing); nil
// means the SDK's usual chain.
func RepoS3Config(s *plans.RepositoryS3) s3be.Config {
	if s == nil {
		return s3be.Config{}
	}
	return s3be.Config{
		AccessKeyIDEnv: s.AccessKeyIDEnv, AccessKeyIDFile: s.AccessKeyIDFile,
		SecretAccessKeyEnv: s.SecretAccessKeyEnv, SecretAccessKeyFile: s.SecretAccessKeyFile,
		CredentialsFile: s.CredentialsFile, Profile: s.Profile,
		Region: s.Region, PathStyle: s.PathStyle, EC2Metadata: s.EC2Metadata,
	}
}

// PlanRepoEnv is how to open a plan's repository: its location, where its
// password comes from (password_file, password_env, else the
// HOLIDAY_PASSWORD* variables) and its S3 settings. Output goes nowhere
// until the caller sets Stdout and Stderr.
func PlanRepoEnv(r *plans.Repository) *repocmd.Env {
	return &repocmd.Env{Repo: r.URL, PasswordFile: r.PasswordFile, PasswordEnv: r.PasswordEnv,
		S3: RepoS3Config(r.S3), Where: "the plan's repository.url", Quiet: true, Stdin: bytes.NewReader(nil), Stdout: io.Discard, Stderr: io.Discard}
}

// RepoJournals keeps runs' journals in a repository (the layout above).
type RepoJournals struct {
	Env  *repocmd.Env
	Plan string // the plan's name: tag plan:NAME, and what restore looks for
	// PinUntil pins every journal snapshot until then (the window's end
	// plus repo.PinGrace); zero pins until the save plus PinGrace.
	PinUntil       time.Time
	ProgramVersion string
	// Timeout bounds one save or load (default 2m): an unreachable
	// repository must not hold up the end of a run for long.
	Timeout time.Duration
}

// PlanJournals is the plan's repository as keeper of its runs' journals;
// nil when the plan names no repository.
func PlanJournals(p *plans.Plan, version string) *RepoJournals {
	if p == nil || p.Repository == nil {
		return nil
	}
	rj := &RepoJournals{Env: PlanRepoEnv(p.Repository), Plan: p.Name, ProgramVersion: "holiday " + version}
	if p.Window != nil && !p.Window.End.IsZero() {
		rj.PinUntil = p.Window.End.Add(repo.PinGrace)
	}
	return rj
}

func (rj *RepoJournals) timeout() time.Duration {
	if rj.Timeout > 0 {
		return rj.Timeout
	}
	return 2 * time.Minute
}

// Location is the repository as the plan names it (for messages).
func (rj *RepoJournals) Location() string {
	loc, err := rj.Env.Location()
	if err != nil {
		return "(no repository)"
	}
	return loc
}

// hostJournal is one host's journal to keep or as kept.
type hostJournal struct {
	host string
	data []byte
}

// OffsiteJournals says whether a run's journals were kept off this
// control node, in the plan's repository.
type OffsiteJournals struct {
	Repository string `json:"repository"`
	// Snapshots are the kind:journal snapshots written, host → ID.
	Snapshots map[string]string `json:"snapshots,omitempty"`
	// Error is why they were not: then only this control node and the
	// hosts hold the journals, and a second control node cannot restore
	// the run from the repository.
	Error string `json:"error,omitempty"`
	Hint  string `json:"hint,omitempty"`
}

// saveJournals keeps, in the plan's repository, the journal of every host
// of res that this run wrote to (its head is set), and records the
// outcome in res.Offsite. A repository that cannot be reached or written
// fails nothing on the hosts: the journals stay here and on the hosts,
// and the result says so.
func (o *Options) saveJournals(ctx context.Context, res *RunResult, savedBy string) {
	var paths []HostResult
	for _, h := range res.Hosts {
		if h.Head != "" && h.Journal != "" { // else no journal: the run never changed anything there
			paths = append(paths, h)
		}
	}
	res.Offsite = o.keepOffsite(ctx, res.Run, savedBy, paths)
}

// keepOffsite saves the journals at hosts[i].Journal to the repository;
// nil when there is no repository or nothing to save.
func (o *Options) keepOffsite(ctx context.Context, run, savedBy string, hosts []HostResult) *OffsiteJournals {
	if o.Journals == nil || len(hosts) == 0 {
		return nil
	}
	var js []hostJournal
	var errs []error
	for _, h := range hosts {
		b, err := os.ReadFile(h.Journal)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h.Host, err))
			continue
		}
		js = append(js, hostJournal{h.Host, b})
	}
	out := &OffsiteJournals{Repository: o.Journals.Location()}
	// a run that took backups has the repository open already: one
	// key derivation and one index load per run
	ids, err := o.Journals.save(ctx, o.Backups.repository(), run, savedBy, o.Key, js)
	if err != nil {
		errs = append(errs, err)
	}
	if len(ids) > 0 {
		out.Snapshots = ids
	}
	if err := errors.Join(errs...); err != nil {
		out.Error, out.Hint = err.Error(), exitcode.HintOf(err)
		if o.Log != nil {
			o.Log.Warn("journals not saved to the repository", "run", run, "err", err)
		}
	}
	return out
}

// save stores each journal as its own kind:journal snapshot, with the key
// beside it, after checking that the key verifies it (a journal stored
// with a key that does not fit would be useless to a second control node).
// Blobs and trees go into one pack and one index first, then the
// snapshots: a save that fails half-way leaves no snapshot pointing at
// anything missing.
//
// shared is the run's open repository (the plan's, with its index
// loaded and a shared lock held), nil to open one for the save.
func (rj *RepoJournals) save(ctx context.Context, shared *repo.Repository, run, savedBy string, key journal.Key, js []hostJournal) (map[string]string, error) {
	var good []hostJournal
	var errs []error
	for _, j := range js {
		if err := checkJournal(j.data, key, run, j.host); err != nil {
			errs = append(errs, fmt.Errorf("journal of %s, run %s, not saved to the repository: %w", j.host, run, err))
			continue
		}
		good = append(good, j)
	}
	if len(good) == 0 {
		return nil, errors.Join(errs...)
	}
	ids, err := rj.store(ctx, shared, run, savedBy, key, good)
	return ids, errors.Join(append(errs, err)...)
}

// store writes the snapshots without checking the journals (save checks).
func (rj *RepoJournals) store(ctx context.Context, shared *repo.Repository, run, savedBy string, key journal.Key, js []hostJournal) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rj.timeout())
	defer cancel()
	fail := func(err error) (map[string]string, error) {
		if loc := rj.Location(); !strings.Contains(err.Error(), loc) {
			err = fmt.Errorf("repository %s: %w", loc, err)
		}
		return nil, err
	}
	r := shared
	if r == nil {
		var release func()
		var err error
		if r, release, err = rj.Env.Open(ctx, repocmd.SharedLock); err != nil {
			return fail(err)
		}
		defer release()
		if err := r.LoadIndex(ctx); err != nil {
			return fail(err)
		}
	}
	now := time.Now()
	r.StartWriter(ctx)
	keyNode, err := saveFile(ctx, r, JournalKeyFile, key.Encode(), now)
	if err != nil {
		return fail(err)
	}
	trees := make([]repo.ID, len(js))
	for i, j := range js {
		n, err := saveFile(ctx, r, JournalFile(j.host), j.data, now)
		if err != nil {
			return fail(err)
		}
		t := &repo.Tree{}
		if err := t.Insert(keyNode); err != nil {
			return fail(err)
		}
		if err := t.Insert(n); err != nil {
			return fail(fmt.Errorf("host %q: %w", j.host, err))
		}
		if trees[i], err = r.SaveTree(ctx, t); err != nil {
			return fail(err)
		}
	}
	if err := r.Flush(ctx); err != nil {
		return fail(err)
	}
	// a snapshot refers only to what read back sound (the run's store
	// reads every pack back as it is stored; a repository opened here
	// loads the journals' blobs again)
	for i, j := range js {
		if err := r.WaitVerifiedTree(ctx, trees[i]); err != nil {
			return fail(fmt.Errorf("the journal of %s did not read back as stored, no snapshot is written: %w", j.host, err))
		}
	}
	pin := rj.PinUntil
	if pin.IsZero() {
		pin = now.Add(repo.PinGrace)
	}
	ids := map[string]string{}
	for i, j := range js {
		tags := []string{"holiday", JournalKindTag, "run:" + run}
		if rj.Plan != "" {
			tags = append(tags, "plan:"+rj.Plan)
		}
		tags = append(tags, commandTagPrefix+runCommandOf(j.data), savedByTagPrefix+savedBy)
		tags = append(tags, repo.PinTags(pin)...)
		sn := &repo.Snapshot{Time: now, Tree: &trees[i], Paths: []string{"/" + JournalFile(j.host), "/" + JournalKeyFile},
			Hostname: j.host, Tags: tags, UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), ProgramVersion: rj.ProgramVersion}
		if u, err := user.Current(); err == nil {
			sn.Username = u.Username
		}
		id, err := r.SaveSnapshot(ctx, sn)
		if err != nil {
			_, err = fail(err)
			return ids, err
		}
		ids[j.host] = id.String()
	}
	return ids, nil
}

// saveFile stores data as a file node (0600, owned by this user), cut
// with the repository's chunker so that a journal saved again after
// more entries shares its first blobs with the earlier save.
func saveFile(ctx context.Context, r *repo.Repository, name string, data []byte, now time.Time) (*repo.Node, error) {
	n := &repo.Node{Name: name, Type: repo.NodeFile, Mode: 0o600, ModTime: now, AccessTime: now, ChangeTime: now,
		UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Size: uint64(len(data)), Content: []repo.ID{}}
	ch := chunker.New(bytes.NewReader(data), r.Config().ChunkerPolynomial)
	buf := make([]byte, chunker.MaxSize)
	for {
		c, err := ch.Next(buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		id, _, err := r.SaveBlob(ctx, repo.DataBlob, c.Data, repo.ID{})
		if err != nil {
			return nil, err
		}
		n.Content = append(n.Content, id)
	}
	return n, nil
}

// runCommandOf is the command whose run a journal records: its first
// run-begin entry of a lockdown or isolate ("lockdown" when none says).
func runCommandOf(data []byte) string {
	for _, line := range bytes.Split(data, []byte{'\n'}) {
		var e journal.Entry
		if json.Unmarshal(line, &e) != nil || e.Phase != journal.RunBegin {
			continue
		}
		if e.Kind == "lockdown" || e.Kind == "isolate" {
			return e.Kind
		}
	}
	return "lockdown"
}

// RepoRun is one run's journals as the repository holds them, each
// verified with the key stored with it.
type RepoRun struct {
	Run, Command string
	Key          journal.Key
	Journals     map[string][]byte         // host → the newest journal saved
	Snapshots    map[string]*repo.Snapshot // host → the snapshot it came from
}

// repoRun is what the listing says about one run.
type repoRun struct {
	run, command string
	hosts        map[string]*repo.Snapshot // the newest per host
	first        time.Time                 // its earliest journal snapshot
}

func tagValue(sn *repo.Snapshot, prefix string) string {
	for _, t := range sn.Tags {
		if v, ok := strings.CutPrefix(t, prefix); ok {
			return v
		}
	}
	return ""
}

// listRuns lists the kind:journal snapshots of this plan, by run.
func (rj *RepoJournals) listRuns(ctx context.Context, r *repo.Repository) ([]*repoRun, error) {
	sns, err := r.Snapshots(ctx, func(repo.ID, error) {})
	if err != nil {
		return nil, err
	}
	byRun := map[string]*repoRun{}
	var runs []*repoRun
	for _, sn := range sns { // oldest first: a later save of a host replaces its earlier
		if !slices.Contains(sn.Tags, JournalKindTag) || (rj.Plan != "" && !slices.Contains(sn.Tags, "plan:"+rj.Plan)) {
			continue
		}
		id := tagValue(sn, "run:")
		if !runIDPattern.MatchString(id) || !safeName.MatchString(sn.Hostname) {
			continue
		}
		rr := byRun[id]
		if rr == nil {
			rr = &repoRun{run: id, command: tagValue(sn, commandTagPrefix), hosts: map[string]*repo.Snapshot{}, first: sn.Time}
			byRun[id] = rr
			runs = append(runs, rr)
		}
		rr.hosts[sn.Hostname] = sn
	}
	// Newest first: by the run ID's time (one-second resolution), then by
	// when its journals were first saved.
	sort.SliceStable(runs, func(i, j int) bool {
		if a, b := runs[i].run[:16], runs[j].run[:16]; a != b {
			return a > b
		}
		return runs[i].first.After(runs[j].first)
	})
	return runs, nil
}

// describeRuns says what the repository holds, for an error message.
func describeRuns(runs []*repoRun) string {
	if len(runs) == 0 {
		return "it holds no journals of this plan at all (no kind:journal snapshots)"
	}
	var parts []string
	for i, r := range runs {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d older", len(runs)-5))
			break
		}
		hosts := make([]string, 0, len(r.hosts))
		for h := range r.hosts {
			hosts = append(hosts, h)
		}
		sort.Strings(hosts)
		parts = append(parts, fmt.Sprintf("%s (%s: %s)", r.run, r.command, strings.Join(hosts, ", ")))
	}
	return "it holds journals of run " + strings.Join(parts, "; ")
}

// LoadRun reads a run's journals from the repository: run, or with run ""
// the newest run of this plan (of command, when not "") that has a
// journal for one of hosts. hosts nil means every host the run has. Each
// journal is verified with the key stored beside it; the keys must be one
// and the same, and every entry must name the run and its host. Anything
// else is an error and nothing is returned.
func (rj *RepoJournals) LoadRun(ctx context.Context, run string, hosts []string, command string) (*RepoRun, error) {
	ctx, cancel := context.WithTimeout(ctx, rj.timeout())
	defer cancel()
	r, release, err := rj.Env.Open(ctx, repocmd.SharedLock)
	if err != nil {
		return nil, fmt.Errorf("reading journals from the repository: %w", err)
	}
	defer release()
	runs, err := rj.listRuns(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("reading journals from the repository %s: %w", rj.Location(), err)
	}
	wanted := func(h string) bool { return hosts == nil || slices.Contains(hosts, h) }
	var pick *repoRun
	for _, rr := range runs {
		if (run != "" && rr.run != run) || (command != "" && rr.command != command) {
			continue
		}
		if run == "" && command == "" && !Restorable(rr.command) {
			continue // a rollback or a backup run: nothing for restore to undo
		}
		for h := range rr.hosts {
			if wanted(h) {
				pick = rr
				break
			}
		}
		if pick != nil {
			break
		}
	}
	if pick == nil {
		what := "no lockdown or isolate run"
		if command != "" {
			what = "no " + command + " run"
		}
		if run != "" {
			what = "no journal of run " + run
		}
		if hosts != nil {
			what += " for " + strings.Join(hosts, ", ")
		}
		plan := ""
		if rj.Plan != "" {
			plan = fmt.Sprintf(" of plan %q", rj.Plan)
		}
		hint := "name a run the repository holds with --run, or restore from the hosts' own copies with --from-host"
		if len(runs) == 0 {
			hint = "restore from the hosts' own copies with --from-host; or, where the control node that made the run still has it, `holiday save-journal -f PLAN --run ID` saves its journals to the repository"
		}
		return nil, exitcode.WithHint(exitcode.HostsFailed, fmt.Errorf("the repository %s holds %s%s: %s", rj.Location(), what, plan, describeRuns(runs)), hint)
	}
	if err := r.LoadIndex(ctx); err != nil {
		return nil, fmt.Errorf("reading journals from the repository %s: %w", rj.Location(), err)
	}
	out := &RepoRun{Run: pick.run, Command: pick.command, Journals: map[string][]byte{}, Snapshots: map[string]*repo.Snapshot{}}
	names := make([]string, 0, len(pick.hosts))
	for h := range pick.hosts {
		if wanted(h) {
			names = append(names, h)
		}
	}
	sort.Strings(names)
	where := func(h string) string {
		return fmt.Sprintf("the repository's journal of %s, run %s (snapshot %s)", h, pick.run, pick.hosts[h].ID.Str())
	}
	// One run has one key: every snapshot's must be the same before any
	// of them verifies a journal.
	var keyFrom string
	for _, h := range names {
		keyData, err := dumpFile(ctx, r, pick.hosts[h], JournalKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where(h), err)
		}
		key, err := journal.ParseKey(keyData)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", where(h), JournalKeyFile, err)
		}
		if out.Key == nil {
			out.Key, keyFrom = key, h
		} else if !bytes.Equal(out.Key, key) {
			return nil, fmt.Errorf("%s: saved with journal key %s, the journal of %s with %s: one run has one key, so one of them was replaced; nothing was applied (restore --from-host uses the hosts' own copies)",
				where(h), key.Fingerprint(), keyFrom, out.Key.Fingerprint())
		}
	}
	for _, h := range names {
		data, err := dumpFile(ctx, r, pick.hosts[h], JournalFile(h))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where(h), err)
		}
		if err := checkJournal(data, out.Key, pick.run, h); err != nil {
			return nil, fmt.Errorf("%s: %w; nothing was applied (restore --from-host uses the hosts' own copies)", where(h), err)
		}
		out.Journals[h], out.Snapshots[h] = data, pick.hosts[h]
	}
	if err := r.LockValid(); err != nil {
		return nil, err
	}
	return out, nil
}

// checkJournal verifies a journal's chain with key and that every entry
// belongs to run and host: a journal filed under another host would
// revert that host's steps on this one.
func checkJournal(data []byte, key journal.Key, run, host string) error {
	j, err := journal.Read(bytes.NewReader(data), key)
	if err != nil {
		return err
	}
	if j.Torn {
		return errors.New("its last line is cut short")
	}
	if len(j.Entries) == 0 {
		return errors.New("it is empty")
	}
	for _, e := range j.Entries {
		if e.Run != run || e.Host != host {
			return fmt.Errorf("entry %d belongs to run %s of host %s, not to this run and host", e.Seq, clipRun(e.Run), clipRun(e.Host))
		}
	}
	return nil
}

// dumpFile reads one file of a snapshot's root.
func dumpFile(ctx context.Context, r *repo.Repository, sn *repo.Snapshot, name string) ([]byte, error) {
	n, err := restorer.FindNode(ctx, r, *sn.Tree, "/"+name)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := restorer.Dump(ctx, r, n, &b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// RunKey returns the key a run's journals verify with: this control
// node's own (own) when one of them fits it, else the key stored with the
// run in the repository (rj) when one fits that. Without a repository it
// returns own and leaves it to the journal's verification to say what is
// wrong; with one, a run neither key fits is an error naming both keys.
func RunKey(ctx context.Context, rj *RepoJournals, own journal.Key, run string, journals [][]byte) (journal.Key, error) {
	fits := func(k journal.Key) bool {
		return slices.ContainsFunc(journals, func(d []byte) bool { return journal.SignedWith(d, k) })
	}
	if len(journals) == 0 || fits(own) || rj == nil {
		return own, nil
	}
	rr, err := rj.LoadRun(ctx, run, nil, "")
	if err != nil {
		return nil, fmt.Errorf("the journals of run %s were not written with this control node's journal key (%s); reading the run's own key from the repository: %w", run, own.Fingerprint(), err)
	}
	if !fits(rr.Key) {
		return nil, fmt.Errorf("the journals of run %s verify neither with this control node's journal key (%s) nor with the key stored with the run in the repository %s (%s): they were altered, or belong to another run",
			run, own.Fingerprint(), rj.Location(), rr.Key.Fingerprint())
	}
	return rr.Key, nil
}

// SaveRunJournals saves a run's journals, as this control node holds them
// in o.StateDir, to the plan's repository (`holiday save-journal`: the
// retry after the repository could not be reached at the end of a run).
// Every host journal of the run is saved; the result says which. run ""
// is the newest run in the state dir.
func SaveRunJournals(ctx context.Context, o Options, run string) (*OffsiteJournals, error) {
	if o.Journals == nil {
		return nil, exitcode.WithHint(exitcode.Usage, errors.New("the plan names no repository to save the journals to"), "add repository: to the plan")
	}
	if run == "" {
		ents, _ := os.ReadDir(filepath.Join(o.StateDir, "runs"))
		var runs []string
		for _, e := range ents {
			if e.IsDir() && runIDPattern.MatchString(e.Name()) {
				runs = append(runs, e.Name())
			}
		}
		if len(runs) == 0 {
			return nil, exitcode.WithHint(exitcode.Usage, fmt.Errorf("no runs in %s", filepath.Join(o.StateDir, "runs")), "pass the --state-dir the run used")
		}
		SortRuns(o.StateDir, runs)
		run = runs[0]
	}
	if !runIDPattern.MatchString(run) {
		return nil, exitcode.With(exitcode.Usage, fmt.Errorf("--run %q is not a run ID (like 20260205T180000Z-1a2b3c)", clipRun(run)))
	}
	ents, err := os.ReadDir(RunDir(o.StateDir, run))
	if err != nil {
		return nil, exitcode.WithHint(exitcode.Usage, fmt.Errorf("run %s: %w", run, err), "name a run this control node holds (its state dir's runs/)")
	}
	var hosts []HostResult
	for _, e := range ents {
		host, ok := strings.CutSuffix(e.Name(), ".journal")
		if !ok || e.IsDir() || !safeName.MatchString(host) {
			continue
		}
		hosts = append(hosts, HostResult{Host: host, Journal: JournalPath(o.StateDir, run, host)})
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("run %s has no host journals in %s", run, RunDir(o.StateDir, run))
	}
	var datas [][]byte
	for _, h := range hosts {
		b, err := os.ReadFile(h.Journal)
		if err != nil {
			return nil, err
		}
		datas = append(datas, b)
	}
	if o.Key, err = RunKey(ctx, o.Journals, o.Key, run, datas); err != nil {
		return nil, err
	}
	off := o.keepOffsite(ctx, run, "save-journal", hosts)
	if off.Error != "" {
		return off, exitcode.WithHint(exitcode.HostsFailed, errors.New(off.Error), off.Hint)
	}
	return off, nil
}
