package plans

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAliasBombs: anchors that expand exponentially end in an error, fast
// (found by FuzzLoad, which stalled on a merge-key bomb).
func TestAliasBombs(t *testing.T) {
	var merge strings.Builder
	merge.WriteString("x-a0: &a0 {risk: high}\n")
	for i := 1; i < 30; i++ {
		fmt.Fprintf(&merge, "x-a%d: &a%d {<<: [*a%d, *a%d, *a%d]}\n", i, i, i-1, i-1, i-1)
	}
	merge.WriteString("defaults: {<<: *a29}\n")
	var list strings.Builder
	list.WriteString("x-l0: &l0 {name: h, address: 10.0.0.1, backup: none}\n")
	for i := 1; i < 30; i++ {
		fmt.Fprintf(&list, "x-l%d: &l%d [*l%d, *l%d, *l%d]\n", i, i, i-1, i-1, i-1)
	}
	list.WriteString("hosts: *l29\n")
	for _, s := range []string{merge.String(), list.String()} {
		start := time.Now()
		_, err := Parse("bomb.yaml", []byte(s), Options{})
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("took %v", took)
		}
		if err == nil {
			t.Errorf("bomb accepted")
		}
	}
}
