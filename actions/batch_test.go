package actions

import (
	"reflect"
	"testing"

	"github.com/holiday-ops/holiday/plans"
)

// Only units stopped at the very same time may leave each other out of
// their side effects: StepsFor sets no Batch (the runner does, per batch),
// so a unit stopped as a side effect of an earlier, separate step is still
// recorded by that step and restored.
func TestStepsForLeavesBatchToTheRunner(t *testing.T) {
	p, err := plans.Parse("t.yaml", []byte(`version: 1
management: [10.0.0.0/24]
hosts:
  - {name: web1, address: 10.0.1.10, backup: none, stop: [a, b, c]}
`), plans.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range StepsFor(p, p.Host("web1")) {
		if svc, ok := s.Action.(Service); ok {
			got = append(got, svc.Name)
			if len(svc.Batch) != 0 {
				t.Errorf("%s: Batch %v set by StepsFor", svc.Name, svc.Batch)
			}
		}
	}
	if !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("service steps %v, want a, b, c", got)
	}
	if o := othersOf([]string{"a", "b", "c"}, 1); !reflect.DeepEqual(o, []string{"a", "c"}) {
		t.Errorf("othersOf = %v, want [a c]", o)
	}
}
