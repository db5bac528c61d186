// Package labagent gives lab tests a real agent on a lab host, as the
// commands get one: the holiday binary built once per test process, and
// a fresh copy of it deployed over SSH with the lab's key. It is for
// tests only and imports nothing of holiday's above internal/.
package labagent

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/holiday-ops/holiday/internal/agentctl"
	"github.com/holiday-ops/holiday/internal/labtest"
	"github.com/holiday-ops/holiday/internal/sshx"
	"github.com/holiday-ops/holiday/internal/testenv"
)

var (
	buildOnce sync.Once
	buildDir  string
	bin       agentctl.Binary
	buildErr  error
)

// Binary builds the static holiday binary once per test process. The
// package's TestMain calls Cleanup after m.Run to remove it.
func Binary(t testing.TB) agentctl.Binary {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "holiday-labagent-")
		if buildErr != nil {
			return
		}
		out := filepath.Join(buildDir, "holiday")
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, "github.com/holiday-ops/holiday/cmd/holiday")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if o, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, o)
			return
		}
		bin, buildErr = agentctl.LoadBinary(out)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

// Cleanup removes what Binary built.
func Cleanup() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// Deploy logs in to h as user with the lab's key (no ssh-agent, no ssh
// configuration) and uploads a fresh agent, as holiday check does. The
// connection and the agent are closed when the test ends; ctx bounds the
// log-in and the upload.
func Deploy(ctx context.Context, t testing.TB, lab *labtest.Lab, h *labtest.Host, user string) *agentctl.Agent {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		testenv.Skip(t, "the lab hosts are amd64")
	}
	b := Binary(t)
	c, err := sshx.Dial(ctx, sshx.Target{Name: h.Name, Host: h.Addr, Port: 22, User: user, Jump: "none"},
		sshx.Options{KnownHosts: []string{lab.KnownHosts}, IdentityFiles: []string{lab.SSHKey}, NoAgent: true, ConfigFile: "none"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ag, err := agentctl.Deploy(ctx, c, agentctl.Options{Binaries: map[string]agentctl.Binary{"x86_64": b}, Fresh: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ag.Close(context.Background()) })
	return ag
}
