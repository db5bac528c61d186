package facts

import (
	"context"
	"errors"

	"github.com/holiday-ops/holiday/internal/units"
)

// Service is one planned service as the host has it, in the init
// system's own words (internal/units).
type Service struct {
	Name   string      `json:"name"` // as the plan wrote it
	Exists bool        `json:"exists"`
	Unit   *units.Unit `json:"unit,omitempty"`
	Error  string      `json:"error,omitempty"`
}

func collectServices(ctx context.Context, a Args, f *Facts) error {
	init := units.SysV
	if f.Init == InitSystemd {
		init = units.Systemd
	}
	// All at once: one systemctl show (SysV: the status scripts side by
	// side), which lockdown's admission waits for.
	us, errs := units.StatesEach(ctx, init, a.Services)
	for i, name := range a.Services {
		s := Service{Name: name}
		u, err := us[i], errs[i]
		switch {
		case errors.Is(err, units.ErrNotFound):
		case err != nil:
			s.Error = err.Error()
		}
		s.Exists = u.Exists() && !errors.Is(err, units.ErrNotFound)
		s.Unit = &u
		f.Services = append(f.Services, s)
	}
	return nil
}
