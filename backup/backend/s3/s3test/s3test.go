// Package s3test is test support for the S3 backend: it makes a bucket of
// its own on the lab's S3 server (versitygw) for one test, with a unique
// name so that tests running at once never share one, and empties and
// removes it when the test ends.
//
// It is for tests only. It must never import the repository (backup/repo)
// or anything above backup.
package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	s3be "github.com/holiday-ops/holiday/backup/backend/s3"
	"github.com/holiday-ops/holiday/internal/labtest"
)

// Env names under which Bucket puts the lab's credentials into the
// test's environment (t.Setenv), for Config's *_env fields and for child
// processes.
const (
	AccessKeyEnv = "HOLIDAY_TEST_S3_ACCESS_KEY"
	SecretKeyEnv = "HOLIDAY_TEST_S3_SECRET_KEY"
)

var unsafe = regexp.MustCompile(`[^a-z0-9]+`)

// BucketName is a fresh bucket name derived from the test's name: at most
// 63 characters of [a-z0-9-], ending in random hex.
func BucketName(t testing.TB) string {
	var r [6]byte
	if _, err := rand.Read(r[:]); err != nil {
		t.Fatal(err)
	}
	base := strings.Trim(unsafe.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	if len(base) > 36 {
		base = base[:36]
	}
	return "htest-" + base + "-" + hex.EncodeToString(r[:])
}

// Bucket returns a Config for a new, empty bucket on the lab's server
// (created here) with the lab's credentials in AccessKeyEnv and
// SecretKeyEnv. When the test ends, every object (and every version of
// one) is deleted and the bucket removed.
func Bucket(t *testing.T, lab *labtest.Lab) s3be.Config {
	t.Helper()
	t.Setenv(AccessKeyEnv, lab.S3AccessKey)
	t.Setenv(SecretKeyEnv, lab.S3SecretKey)
	cfg := s3be.Config{
		Endpoint: lab.S3Endpoint, Bucket: BucketName(t), Region: lab.S3Region,
		AccessKeyIDEnv: AccessKeyEnv, SecretAccessKeyEnv: SecretKeyEnv,
	}
	ctx := context.Background()
	be, err := s3be.Create(ctx, cfg)
	if err != nil {
		t.Fatalf("create lab bucket %s: %v", cfg.Bucket, err)
	}
	t.Cleanup(func() { Remove(t, be.Client(), cfg.Bucket) })
	return cfg
}

// Remove deletes every object version and delete marker of bucket, then
// the bucket; failures are test errors (a test must not leave buckets
// behind on the shared server).
func Remove(t testing.TB, c *s3.Client, bucket string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b := aws.String(bucket)
	// versions first (a versioned bucket keeps them after a delete),
	// then plain listing for servers that list no versions
	vp := s3.NewListObjectVersionsPaginator(c, &s3.ListObjectVersionsInput{Bucket: b})
	for vp.HasMorePages() {
		page, err := vp.NextPage(ctx)
		if err != nil {
			break
		}
		for _, v := range page.Versions {
			// a version under GOVERNANCE retention (Object Lock tests)
			// goes with the bypass; COMPLIANCE ones a test lets expire
			_, _ = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: v.Key, VersionId: v.VersionId, BypassGovernanceRetention: aws.Bool(true)})
		}
		for _, m := range page.DeleteMarkers {
			_, _ = c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: m.Key, VersionId: m.VersionId})
		}
	}
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: b})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Errorf("clean up bucket %s: list: %v", bucket, err)
			return
		}
		for _, o := range page.Contents {
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: b, Key: o.Key}); err != nil {
				t.Errorf("clean up bucket %s: delete %s: %v", bucket, aws.ToString(o.Key), err)
			}
		}
	}
	if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: b}); err != nil {
		t.Errorf("clean up bucket %s: %v", bucket, err)
	}
}
