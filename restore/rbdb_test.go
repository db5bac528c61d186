package restore

import (
	"context"
	"testing"

	"github.com/holiday-ops/holiday/actions"
)

// TestDBRevertUntouched: a --replace whose load failed before the old
// database was changed is not "reverted" by loading the pre-rollback dump
// over it (that would lose what was written since the dump): the revert
// does nothing, and needs neither the host nor the repository.
func TestDBRevertUntouched(t *testing.T) {
	prior, err := actions.NewRecord(KindRollbackDB, "x", dbPrior{Database: "shop", Replace: true, PreSnapshot: "0123"})
	if err != nil {
		t.Fatal(err)
	}
	done, err := actions.NewRecord(KindRollbackDB, "x", dbDone{Untouched: true})
	if err != nil {
		t.Fatal(err)
	}
	a := &dbAction{} // no repository: the revert must not reach for one
	if err := a.Revert(context.Background(), nil, prior, done); err != nil {
		t.Errorf("revert of an untouched replace: %v", err)
	}
}
