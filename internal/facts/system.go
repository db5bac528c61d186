package facts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/holiday-ops/holiday/internal/agent"
)

func jsonUnmarshal(p []byte, v any) error {
	if err := json.Unmarshal(p, v); err != nil {
		return fmt.Errorf("facts: bad arguments: %w", err)
	}
	return nil
}

// sbinPath is searched for tools: sudo's secure_path has it, a plain
// login user's PATH often lacks /usr/sbin.
var sbinPath = []string{"/usr/sbin", "/usr/bin", "/sbin", "/bin", "/usr/local/sbin", "/usr/local/bin"}

// lookPath finds a tool on sbinPath; "" if absent.
func lookPath(name string) string {
	for _, d := range sbinPath {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

var errNoTool = errors.New("not installed")

// output runs a tool with a bounded time, a fixed environment and no
// stdin; stderr is returned in the error.
func output(ctx context.Context, timeout time.Duration, name string, args ...string) ([]byte, error) {
	p := lookPath(name)
	if p == "" {
		return nil, fmt.Errorf("%s: %w", name, errNoTool)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, p, args...)
	cmd.Env = []string{"PATH=" + strings.Join(sbinPath, ":"), "LC_ALL=C", "LANG=C"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		if ctx.Err() != nil {
			return stdout.Bytes(), fmt.Errorf("%s: timed out after %s", name, timeout)
		}
		return stdout.Bytes(), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

func collectOS(ctx context.Context, a Args, f *Facts) error {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err == nil {
		var b strings.Builder
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b.WriteByte(byte(c))
		}
		f.OS.Kernel = b.String()
	}
	var m map[string]string
	var err error
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if m, err = agent.ParseOSRelease(p); err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	f.OS.ID, f.OS.VersionID, f.OS.PrettyName = m["ID"], m["VERSION_ID"], m["PRETTY_NAME"]
	return nil
}

// Init systems.
const (
	InitSystemd = "systemd"
	InitSysV    = "sysv"
	InitUnknown = "unknown"
)

// collectInit uses systemd's own test (sd_booted: /run/systemd/system
// exists), then falls back to SysV when init scripts are there.
func collectInit(ctx context.Context, a Args, f *Facts) error {
	if st, err := os.Stat("/run/systemd/system"); err == nil && st.IsDir() {
		f.Init = InitSystemd
		return nil
	}
	if st, err := os.Stat("/etc/init.d"); err == nil && st.IsDir() {
		f.Init = InitSysV
		return nil
	}
	f.Init = InitUnknown
	return nil
}
