package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	s3be "github.com/holiday-ops/holiday/backup/backend/s3"
	"github.com/holiday-ops/holiday/backup/backend/s3/s3test"
	"github.com/holiday-ops/holiday/internal/labtest"
	"github.com/holiday-ops/holiday/internal/testenv"
)

// s3Env is the environment of a child process that reaches the lab's S3
// server with the lab's credentials and nothing of the machine's AWS
// configuration.
func s3Env(lab *labtest.Lab, dir string) []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + lab.S3AccessKey, "AWS_SECRET_ACCESS_KEY=" + lab.S3SecretKey,
		"AWS_REGION=" + lab.S3Region, "AWS_DEFAULT_REGION=" + lab.S3Region, "AWS_PROFILE=", "AWS_SESSION_TOKEN=",
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "no-aws-credentials"),
	}
}

// s3Repo is where a test of the binary against a repository on the lab's
// S3 server starts.
type s3Repo struct {
	bucket s3be.Config // a fresh bucket, removed after the test
	bin    string      // the holiday binary
	dir    string      // the test's temporary directory
	pw     string      // a password file in dir
	url    string      // the repository: s3:ENDPOINT/BUCKET/PREFIX
	// env is s3Env with HOLIDAY_REPOSITORY emptied; tests append their
	// own settings (the last of a name wins).
	env []string
}

func newS3Repo(t *testing.T, lab *labtest.Lab, prefix, password string) s3Repo {
	t.Helper()
	cfg := s3test.Bucket(t, lab)
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	writeFile(t, pw, password)
	return s3Repo{bucket: cfg, bin: holidayBin(t), dir: dir, pw: pw,
		url: "s3:" + lab.S3Endpoint + "/" + cfg.Bucket + "/" + prefix,
		env: slices.Clip(append(s3Env(lab, dir), "HOLIDAY_REPOSITORY="))}
}

// TestRepoS3Interop: holiday inits and backs up into the lab's versitygw,
// and stock restic (the format oracle) lists, checks every byte of and
// restores the same repository over S3.
func TestRepoS3Interop(t *testing.T) {
	testenv.Short(t, "builds the binary, runs scrypt and the lab's S3 server")
	lab := labtest.Require(t)
	if lab == nil {
		return
	}
	if _, err := exec.LookPath("restic"); err != nil {
		testenv.Skip(t, "restic is not installed (apt-get install restic); the S3 interop test needs it as the format oracle")
		return
	}
	rp := newS3Repo(t, lab, "holiday/repo", "s3 interop\n")
	bin, dir, pw, repoURL := rp.bin, rp.dir, rp.pw, rp.url
	env := append(rp.env, "HOLIDAY_PASSWORD_FILE="+pw)
	src := filepath.Join(dir, "src")
	writeFile(t, filepath.Join(src, "etc", "hosts"), "127.0.0.1 localhost\n")
	writeFile(t, filepath.Join(src, "empty"), "")
	big := make([]byte, 5<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "data", "big.bin"), string(big))
	if err := os.Symlink("etc/hosts", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}

	holiday := func(args ...string) result {
		t.Helper()
		r := runHoliday(t, bin, env, append([]string{"repo"}, args...)...)
		if r.code != 0 {
			t.Fatalf("holiday repo %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
		return r
	}
	holiday("init", "--repo", repoURL)
	holiday("backup", "--repo", repoURL, "-q", "--tag", "s3test", src)
	var snaps []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(holiday("snapshots", "--repo", repoURL, "--json").stdout), &snaps); err != nil || len(snaps) != 1 {
		t.Fatalf("holiday snapshots --json: %v, %d snapshots", err, len(snaps))
	}
	holiday("check", "--repo", repoURL, "-q", "--read-data")

	restic := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("restic", append([]string{"-r", repoURL, "--no-cache", "--password-file", pw}, args...)...)
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("restic %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	var rsnaps []struct {
		ID   string   `json:"id"`
		Tags []string `json:"tags"`
	}
	if out := restic("snapshots", "--json"); json.Unmarshal([]byte(out), &rsnaps) != nil || len(rsnaps) != 1 || rsnaps[0].ID != snaps[0].ID {
		t.Fatalf("restic snapshots over S3: %s\nwant the one snapshot %s", out, snaps[0].ID)
	}
	if out := restic("check", "--read-data"); !strings.Contains(out, "no errors were found") {
		t.Fatalf("restic check --read-data over S3:\n%s", out)
	}
	target := filepath.Join(dir, "restored")
	restic("restore", "latest", "--target", target)
	got, err := os.ReadFile(filepath.Join(target, src, "data", "big.bin"))
	if err != nil || !bytes.Equal(got, big) {
		t.Errorf("restic restore over S3: big.bin differs (%v)", err)
	}
	if l, err := os.Readlink(filepath.Join(target, src, "link")); err != nil || l != "etc/hosts" {
		t.Errorf("restic restore over S3: link = %q, %v", l, err)
	}
	// and holiday reads what restic wrote next to its own
	restic("backup", "--host", "restic-made", filepath.Join(src, "etc"))
	if out := holiday("snapshots", "--repo", repoURL).stdout; !strings.Contains(out, "restic-made") {
		t.Errorf("holiday does not list restic's snapshot:\n%s", out)
	}
	holiday("check", "--repo", repoURL, "-q", "--read-data")
}

// TestRepoS3OperatorErrors: wrong credentials, a missing bucket and an
// unreachable server are each one error line an operator can act on.
func TestRepoS3OperatorErrors(t *testing.T) {
	testenv.Short(t, "builds the binary and uses the lab's S3 server")
	lab := labtest.Require(t)
	if lab == nil {
		return
	}
	rp := newS3Repo(t, lab, "repo", "s3 errors\n")
	bin, url := rp.bin, rp.url
	env := append(rp.env, "HOLIDAY_PASSWORD_FILE="+rp.pw)
	if r := runHoliday(t, bin, env, "repo", "init", "--repo", url); r.code != 0 {
		t.Fatalf("init: %+v", r)
	}
	with := func(kv ...string) []string { return append(append([]string{}, env...), kv...) }
	for _, tc := range []struct {
		name string
		env  []string
		repo string
		code int
		want string
	}{
		{"wrong secret", with("AWS_SECRET_ACCESS_KEY=wrong"), url, 1, "rejected the credentials"},
		{"unknown access key", with("AWS_ACCESS_KEY_ID=NOSUCHKEY"), url, 1, "rejected the credentials"},
		{"no credentials", with("AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY="), url, 1, "no S3 credentials found"},
		{"missing bucket", env, "s3:" + lab.S3Endpoint + "/" + s3test.BucketName(t) + "/repo", 1, "does not exist"},
		{"no repository at the prefix", env, url + "-other", 1, "no repository"},
		{"credentials in the URL", env, strings.Replace(url, "://", "://AK:SK@", 1), 1, "credentials in the URL are not accepted"},
		{"no bucket", env, "s3:" + lab.S3Endpoint + "/", 1, "no bucket"},
		{"server down", env, "s3:http://127.0.0.1:9/" + rp.bucket.Bucket + "/repo", 2, "could not be reached"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errorLine(t, runHoliday(t, bin, tc.env, "repo", "snapshots", "--repo", tc.repo), tc.code, tc.want)
		})
	}
}

// TestRepoS3Faults: a backup through a proxy that answers every fourth
// request with 503 SlowDown, drops every fifth pack upload halfway and
// loses the server's answer to every third PUT it let through succeeds
// (the SDK's retryer with whole, seekable bodies; a 412 after a lost
// answer is our own landed attempt); check --read-data through it, with
// every third pack download broken off halfway, passes (resumed); and
// the repository is whole for stock restic too.
func TestRepoS3Faults(t *testing.T) {
	testenv.Short(t, "builds the binary, runs scrypt and the lab's S3 server")
	lab := labtest.Require(t)
	if lab == nil {
		return
	}
	if _, err := exec.LookPath("restic"); err != nil {
		testenv.Skip(t, "restic is not installed (apt-get install restic); the S3 fault test checks with it")
		return
	}
	rp := newS3Repo(t, lab, "repo", "s3 faults\n")
	target, err := url.Parse(lab.S3Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	var requests, bigPuts, puts, gets, slowdowns, resets, lost, broken atomic.Int32
	hangUp := func(w http.ResponseWriter) {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1)%4 == 0 {
			slowdowns.Add(1)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `<Error><Code>SlowDown</Code><Message>injected</Message></Error>`)
			return
		}
		if r.Method == http.MethodPut && r.ContentLength > 1<<20 && bigPuts.Add(1)%5 == 1 {
			// the upload breaks off halfway: the server stores nothing
			resets.Add(1)
			_, _ = io.CopyN(io.Discard, r.Body, r.ContentLength/2)
			hangUp(w)
			return
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/data/") && gets.Add(1)%3 == 0 {
			// a pack download breaks off halfway through its body
			broken.Add(1)
			rec := httptest.NewRecorder()
			proxy.ServeHTTP(rec, r)
			conn, buf, err := w.(http.Hijacker).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			res := rec.Result()
			res.Body = io.NopCloser(bytes.NewReader(rec.Body.Bytes()[:rec.Body.Len()/2]))
			res.ContentLength = int64(rec.Body.Len())
			_ = res.Write(buf) // short of its Content-Length
			_ = buf.Flush()
			return
		}
		if r.Method == http.MethodPut && puts.Add(1)%3 == 0 {
			// the server stores the file, but its answer is lost: the
			// retry finds the name taken (412) by its own first attempt
			lost.Add(1)
			proxy.ServeHTTP(httptest.NewRecorder(), r)
			hangUp(w)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer srv.Close()

	bin, dir, pw, direct := rp.bin, rp.dir, rp.pw, rp.url
	src := filepath.Join(dir, "src")
	data := make([]byte, 40<<20) // three packs or so
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "big.bin"), string(data))
	for i := range 50 {
		writeFile(t, filepath.Join(src, "small", string(rune('a'+i%26))+strings.Repeat("x", i)), strings.Repeat("line\n", i))
	}
	env := append(rp.env, "HOLIDAY_PASSWORD_FILE="+pw)
	faulty := "s3:" + srv.URL + "/" + rp.bucket.Bucket + "/repo"
	for _, args := range [][]string{
		{"init", "--repo", faulty},
		{"backup", "-q", "--repo", faulty, src},
		{"check", "-q", "--read-data", "--repo", faulty},
	} {
		if r := runHoliday(t, bin, env, append([]string{"repo"}, args...)...); r.code != 0 {
			t.Fatalf("holiday repo %s through faults: exit %d\n%s", args[0], r.code, r.stderr)
		}
	}
	t.Logf("%d requests, %d answered 503, %d uploads dropped, %d answers lost after the store, %d downloads broken off",
		requests.Load(), slowdowns.Load(), resets.Load(), lost.Load(), broken.Load())
	if slowdowns.Load() == 0 || resets.Load() == 0 || lost.Load() == 0 || broken.Load() == 0 {
		t.Fatalf("not every fault was injected (%d 503s, %d resets, %d lost answers, %d broken downloads)", slowdowns.Load(), resets.Load(), lost.Load(), broken.Load())
	}
	cmd := exec.Command("restic", "-r", direct, "--no-cache", "--password-file", pw, "check", "--read-data")
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("restic check --read-data after the faults: %v\n%s", err, out)
	}
}
