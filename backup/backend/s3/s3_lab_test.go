package s3_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/backend/backendtest"
	s3be "github.com/holiday-ops/holiday/backup/backend/s3"
	"github.com/holiday-ops/holiday/backup/backend/s3/s3test"
	"github.com/holiday-ops/holiday/internal/labtest"
)

// TestConformanceLab runs the shared suite against the lab's versitygw:
// one bucket for the test, a fresh prefix for each subtest.
func TestConformanceLab(t *testing.T) {
	lab := labtest.Require(t)
	if lab == nil {
		return
	}
	cfg := s3test.Bucket(t, lab)
	n := 0
	backendtest.Run(t, func(t *testing.T) backend.Backend {
		n++
		c := cfg
		c.Prefix = fmt.Sprintf("repo%d/sub", n)
		be, err := s3be.Open(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		return be
	})
}

// TestCreateBucketLab: Create makes a missing bucket (as restic's init
// does); Open reports one as ErrNoBucket.
func TestCreateBucketLab(t *testing.T) {
	lab := labtest.Require(t)
	if lab == nil {
		return
	}
	t.Setenv(s3test.AccessKeyEnv, lab.S3AccessKey)
	t.Setenv(s3test.SecretKeyEnv, lab.S3SecretKey)
	cfg := s3be.Config{
		Endpoint: lab.S3Endpoint, Bucket: s3test.BucketName(t), Prefix: "r", Region: lab.S3Region,
		AccessKeyIDEnv: s3test.AccessKeyEnv, SecretAccessKeyEnv: s3test.SecretKeyEnv,
	}
	ctx := context.Background()
	if _, err := s3be.Open(ctx, cfg); !errors.Is(err, s3be.ErrNoBucket) {
		t.Fatalf("open of a missing bucket: %v, want ErrNoBucket", err)
	}
	be, err := s3be.Create(ctx, cfg)
	if err != nil {
		t.Fatalf("create with a missing bucket: %v", err)
	}
	t.Cleanup(func() { s3test.Remove(t, be.Client(), cfg.Bucket) })
	if _, err := s3be.Open(ctx, cfg); err != nil {
		t.Errorf("open after create: %v", err)
	}
}
