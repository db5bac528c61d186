package prune

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/backend"
	s3be "github.com/holiday-ops/holiday/backup/backend/s3"
	"github.com/holiday-ops/holiday/backup/backend/s3/s3test"
	"github.com/holiday-ops/holiday/backup/checker"
	"github.com/holiday-ops/holiday/backup/forget"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/labtest"
	"github.com/holiday-ops/holiday/internal/testenv"
)

// TestObjectLock on the lab's versitygw: init on a new bucket creates it
// with Object Lock and stores config and key retained (the setting in
// the config, applied by every Open); packs, index and snapshots are
// retained, locks are not; a retained pack's version can be neither
// deleted nor replaced with the repository's own credentials; prune
// leaves retained packs (and every pack a retained index lists) and
// removes them once the retention has run out; check reports the
// repository immutable until the first snapshot's retention ends.
func TestObjectLock(t *testing.T) {
	testenv.Short(t, "uses the lab's S3 server and waits for a retention to run out")
	lab := labtest.Require(t)
	if lab == nil {
		return
	}
	ctx := context.Background()
	t.Setenv(s3test.AccessKeyEnv, lab.S3AccessKey)
	t.Setenv(s3test.SecretKeyEnv, lab.S3SecretKey)
	cfg := s3be.Config{Endpoint: lab.S3Endpoint, Bucket: s3test.BucketName(t), Prefix: "locked", Region: lab.S3Region,
		AccessKeyIDEnv: s3test.AccessKeyEnv, SecretAccessKeyEnv: s3test.SecretKeyEnv, ObjectLockBucket: true}
	be, err := s3be.Create(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s3test.Remove(t, be.Client(), cfg.Bucket) })
	if on, err := be.ObjectLockEnabled(ctx); err != nil || !on {
		t.Fatalf("the new bucket has no Object Lock (%v): versitygw does not support it?", err)
	}
	// GOVERNANCE, so that the cleanup can remove the day-long retention
	// of config and key with the bypass
	if _, err := repo.InitWith(ctx, be, pw, repo.InitOptions{ObjectLock: &repo.ObjectLock{Mode: "GOVERNANCE", Days: 1}}); err != nil {
		t.Fatal(err)
	}
	until, err := be.RetainedUntil(ctx, backend.Handle{Type: backend.ConfigFile})
	if err != nil || until.Before(time.Now().Add(23*time.Hour)) {
		t.Fatalf("config retained until %v (%v), want a day", until, err)
	}

	// a fresh Open applies the config's setting; then, for the test, a
	// retention of seconds so that it can run out while we wait
	be2, _ := s3be.Open(ctx, cfg)
	r, err := repo.Open(ctx, be2, pw)
	if err != nil {
		t.Fatal(err)
	}
	if r.Config().ObjectLock == nil || r.Config().ObjectLock.Days != 1 {
		t.Fatalf("config object lock = %+v", r.Config().ObjectLock)
	}
	h, err := r.Lock(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	var lockName string
	_ = be2.List(ctx, backend.LockFile, func(fi backend.FileInfo) error { lockName = fi.Name; return nil })
	if u, err := be2.RetainedUntil(ctx, backend.Handle{Type: backend.LockFile, Name: lockName}); err != nil || !u.IsZero() {
		t.Errorf("lock file retained until %v (%v); locks must stay removable", u, err)
	}
	_ = h.Unlock(ctx)
	const short = 25 * time.Second
	if err := be2.SetRetention("COMPLIANCE", short); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeRandom(t, filepath.Join(src, "keep"), 2<<20)
	writeRandom(t, filepath.Join(src, "gone"), 2<<20)
	s1, _, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{Hostname: "web1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(src, "gone")); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, filepath.Join(src, "new"), 1<<20)
	s2, _, err := archiver.Backup(ctx, r, []string{src}, archiver.Options{Hostname: "web1", Parent: s1})
	if err != nil {
		t.Fatal(err)
	}
	written := time.Now()

	im, err := r.Immutability(ctx, time.Now())
	if err != nil || !im.Immutable(time.Now()) || im.Snapshots != 2 || im.Until.After(written.Add(short+time.Second)) {
		t.Errorf("immutability: %+v (%v), want both snapshots retained for about %v", im, err, short)
	}

	// the same credentials can neither delete nor replace a retained pack
	var pack string
	_ = be2.List(ctx, backend.PackFile, func(fi backend.FileInfo) error { pack = fi.Name; return nil })
	key := aws.String("locked/data/" + pack[:2] + "/" + pack)
	c := be2.Client()
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(cfg.Bucket), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(cfg.Bucket), Key: key, VersionId: head.VersionId}); err == nil {
		t.Error("a retained pack's version was deleted")
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(cfg.Bucket), Key: key, VersionId: head.VersionId, BypassGovernanceRetention: aws.Bool(true)}); err == nil {
		t.Error("a COMPLIANCE-retained pack's version was deleted with the governance bypass")
	}
	if err := be2.Save(ctx, backend.Handle{Type: backend.PackFile, Name: pack}, bytes.NewReader([]byte("garbage"))); !errors.Is(err, backend.ErrExist) {
		t.Errorf("overwriting a pack through the backend: %v", err)
	}
	// a plain PUT (no condition) stacks a new version on top; the
	// retained one stays readable by its version
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(cfg.Bucket), Key: key, Body: strings.NewReader("garbage")}); err == nil {
		got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(cfg.Bucket), Key: key, VersionId: head.VersionId})
		if err != nil {
			t.Fatalf("the retained version is gone after an overwrite: %v", err)
		}
		n, _ := io.Copy(io.Discard, got.Body)
		got.Body.Close()
		if n != aws.ToInt64(head.ContentLength) {
			t.Errorf("the retained version has %d bytes, had %d", n, aws.ToInt64(head.ContentLength))
		}
		// put the repository back as it was: remove our garbage version
		cur, _ := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(cfg.Bucket), Key: key})
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(cfg.Bucket), Key: key, VersionId: cur.VersionId}); err != nil {
			t.Fatalf("remove the garbage version: %v", err)
		}
	}

	// forget s1: its "gone" data is unused; prune must leave it while
	// retained
	sns, _ := r.Snapshots(ctx, nil)
	groups := forget.Apply(sns, forget.Policy{Last: 1}, time.Now())
	if n, err := forget.Remove(ctx, r, groups, time.Now()); err != nil || n != 1 {
		t.Fatalf("forget: %d, %v", n, err)
	}
	prune := func() Stats {
		t.Helper()
		r, err := repo.Open(ctx, be2, pw)
		if err != nil {
			t.Fatal(err)
		}
		_ = be2.SetRetention("COMPLIANCE", short)
		h, err := r.Lock(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Unlock(ctx)
		st, err := Prune(ctx, r, Options{MaxUnused: 0})
		if err != nil {
			t.Fatal(err)
		}
		r.SetIndex(repo.NewIndex())
		rep, err := checker.Check(ctx, r, checker.Options{ReadData: true})
		if err != nil || !rep.OK() {
			t.Fatalf("check after prune: %v %+v", err, rep)
		}
		return st
	}
	st := prune()
	t.Logf("prune while retained: %+v", st)
	if st.RetainedPacks == 0 || st.DeletePacks != 0 || st.IndexRemoved != 0 {
		t.Errorf("prune touched retained data: %+v", st)
	}
	time.Sleep(time.Until(written.Add(short + 2*time.Second)))
	st = prune()
	t.Logf("prune after the retention ran out: %+v", st)
	if st.RetainedPacks != 0 || st.DeletePacks == 0 {
		t.Errorf("prune left expired data: %+v", st)
	}
	if _, err := exec.LookPath("restic"); err == nil {
		cmd := exec.Command("restic", "-r", "s3:"+lab.S3Endpoint+"/"+cfg.Bucket+"/locked", "--no-cache", "--password-command", "echo "+pw, "check", "--read-data")
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+lab.S3AccessKey, "AWS_SECRET_ACCESS_KEY="+lab.S3SecretKey, "AWS_DEFAULT_REGION="+lab.S3Region)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "no errors were found") {
			t.Errorf("restic check: %v\n%s", err, out)
		}
	} else if testenv.CI() {
		t.Fatal("restic is not installed but CI=true")
	}
	_ = s2
	// compliance-retained versions left by the test run out before the
	// cleanup removes them
	time.Sleep(time.Until(time.Now().Add(short)))
}
