package actions

import (
	"errors"

	"github.com/holiday-ops/holiday/backup/repocmd"
	"github.com/holiday-ops/holiday/plans"
)

// PlanRepoInit is `holiday repo init -f PLAN`: the plan's repository (or,
// with copyTo, its copy_to) to create, and the Object Lock the plan gives
// it (repository.object_lock), so that the operator need not remember
// the init flags. Output goes nowhere until the caller sets it.
func PlanRepoInit(p *plans.Plan, copyTo bool) (*plans.Repository, repocmd.InitOptions, error) {
	r := p.Repository
	switch {
	case r == nil:
		return nil, repocmd.InitOptions{}, errors.New("the plan names no repository: add repository: {url: …, password_file: …}")
	case copyTo && r.CopyTo == nil:
		return nil, repocmd.InitOptions{}, errors.New("--copy-to: the plan's repository has no copy_to")
	case copyTo:
		r = r.CopyTo
	}
	var o repocmd.InitOptions
	if ol := r.ObjectLock; ol != nil {
		o.ObjectLockDays, o.ObjectLockMode = ol.Days, ol.ModeOrDefault()
	}
	return r, o, nil
}
