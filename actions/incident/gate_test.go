package incident

import (
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/repo"
)

func TestRollbackCandidate(t *testing.T) {
	t0 := time.Date(2026, 12, 20, 18, 0, 0, 0, time.UTC)
	sn := func(id byte, host string, at time.Duration, tags ...string) *repo.Snapshot {
		s := &repo.Snapshot{Hostname: host, Time: t0.Add(at), Tags: tags}
		s.ID[0] = id
		return s
	}
	sns := []*repo.Snapshot{
		sn(1, "web1", -48*time.Hour, "holiday", "kind:files"),
		sn(2, "web1", -time.Hour, "holiday", "kind:files"),
		sn(3, "web1", 0, "holiday", KindBaseline),
		sn(4, "db1", 10*time.Hour, "holiday", "kind:files"),
		sn(5, "web1", 100*time.Hour, "holiday", "kind:files"), // after the first indicator
		sn(6, "web1", 200*time.Hour, "holiday", KindEvidence),
		sn(7, "web1", -30*time.Minute, "holiday", "kind:journal"), // not a backup
		sn(8, "web1", -90*time.Minute, "holiday", "kind:mysql"),
	}
	for _, c := range []struct {
		cut  time.Duration
		want byte
	}{
		{50 * time.Hour, 2}, {300 * time.Hour, 5}, {-time.Hour, 8}, {-2 * time.Hour, 1}, {-72 * time.Hour, 0},
	} {
		got := RollbackCandidate(sns, "web1", t0.Add(c.cut))
		switch {
		case c.want == 0 && got != nil:
			t.Errorf("cut %v: got %x, want none", c.cut, got.ID[0])
		case c.want != 0 && (got == nil || got.ID[0] != c.want):
			t.Errorf("cut %v: got %v, want %x", c.cut, got, c.want)
		}
	}
}
