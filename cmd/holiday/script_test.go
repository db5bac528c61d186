package main

import (
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets testscript run this binary as the `holiday` command.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"holiday": main})
}

// TestScripts runs the command-line scripts in testdata/script: output
// and exit codes as an operator sees them. $EXAMPLES is the repository's
// examples/ directory.
func TestScripts(t *testing.T) {
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			env.Setenv("EXAMPLES", examples)
			return nil
		},
	})
}
