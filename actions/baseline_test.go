package actions

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/holiday-ops/holiday/internal/integrity"
)

type fakeCollect struct {
	op   string
	args integrity.Args
	err  error
}

func (f *fakeCollect) Call(ctx context.Context, op string, args, result any) error {
	f.op = op
	f.args = args.(integrity.Args)
	if f.err != nil {
		return f.err
	}
	b, _ := json.Marshal(integrity.State{Format: integrity.FormatVersion, Host: "web1", Files: map[string]integrity.File{"/etc/passwd": {}}})
	return json.Unmarshal(b, result)
}

type fakeStore struct{ host string }

func (s *fakeStore) SaveBaseline(ctx context.Context, host string, st *integrity.State) (string, error) {
	s.host = host
	return "f77b5c4e", nil
}

func TestBaselineStep(t *testing.T) {
	ag, st := &fakeCollect{}, &fakeStore{}
	h := &Host{Name: "web1", Agent: ag}
	b := Baseline{WebRoots: []string{"/var/www"}, Store: st}
	prior, err := b.Observe(context.Background(), h)
	if err != nil {
		t.Fatal(err)
	}
	done, err := b.Apply(context.Background(), h, prior)
	if err != nil {
		t.Fatal(err)
	}
	var d BaselineDone
	if err := done.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if ag.op != integrity.OpCollect || len(ag.args.WebRoots) != 1 || st.host != "web1" || d.Snapshot != "f77b5c4e" || d.Files != 1 {
		t.Errorf("op %s args %+v store %s done %+v", ag.op, ag.args, st.host, d)
	}
	if err := b.Revert(context.Background(), h, prior, done); err != nil {
		t.Errorf("revert: %v", err)
	}
	if _, err := (Baseline{}).Apply(context.Background(), h, prior); err == nil {
		t.Error("a baseline without a store was taken")
	}
	ag.err = errors.New("agent gone")
	if _, err := b.Apply(context.Background(), h, prior); err == nil {
		t.Error("a failed collection passed")
	}
	if a, err := ForKind(KindBaseline, "integrity"); err != nil || a == nil {
		t.Errorf("restore cannot find the baseline kind: %v", err)
	}
}
