package archiver_test

import (
	"context"
	"os"
	"testing"

	"github.com/holiday-ops/holiday/backup/archiver"
	"github.com/holiday-ops/holiday/backup/backend/local"
	"github.com/holiday-ops/holiday/backup/repo"
	"github.com/holiday-ops/holiday/internal/testenv"
)

// BenchmarkImageBackup backs up the file named by HOLIDAY_BENCH_IMAGE
// (e.g. benchrepo's disk image) in fixed 1 MiB blocks into a fresh local
// repository: the path of `holiday repo backup --block-size`, without
// opening the repository, for profiles (-cpuprofile).
func BenchmarkImageBackup(b *testing.B) {
	img := testenv.OptIn(b, "HOLIDAY_BENCH_IMAGE")
	fi, err := os.Stat(img)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.SetBytes(fi.Size())
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		be, err := local.Create(dir + "/repo")
		if err != nil {
			b.Fatal(err)
		}
		r, err := repo.Init(ctx, be, "pw")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, _, err := archiver.Backup(ctx, r, []string{img}, archiver.Options{BlockSize: 1 << 20}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}
