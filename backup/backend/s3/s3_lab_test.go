package s3_test

import (
	"context"
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
