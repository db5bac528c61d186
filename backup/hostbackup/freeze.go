package hostbackup

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// mountOf returns where the filesystem on block device dev is mounted in
// this mount namespace ("" when it is not), from /proc/self/mountinfo's
// major:minor field (device names differ between namespaces; numbers do
// not).
func mountOf(dev string) (string, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(dev, &st); err != nil {
		return "", fmt.Errorf("disk %s: %w", dev, err)
	}
	want := fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 4 && fs[2] == want {
			return unescapeMount(fs[4]), nil
		}
	}
	return "", sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// freeze freezes the filesystem at mount (fsfreeze -f) after starting
// its dead-man: a process in its own session, outside this agent's, that
// thaws it after bound unless killed first. So a filesystem is thawed
// even if this agent, its SSH session or the control node dies while it
// is frozen; a normal end or an error thaws at once (thaw). thaw reports
// an error when the dead-man already fired: the read was not all under
// freeze.
func freeze(ctx context.Context, mount string, bound time.Duration) (thaw func() error, err error) {
	secs := int(bound / time.Second)
	dm := exec.Command("/bin/sh", "-c", `sleep "$1"; exec fsfreeze -u "$2"`, "holiday-thaw", strconv.Itoa(secs), mount)
	dm.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := dm.Start(); err != nil {
		return nil, fmt.Errorf("starting the thaw dead-man: %w", err)
	}
	fired := make(chan struct{})
	go func() { dm.Wait(); close(fired) }()
	stopDeadman := func() {
		syscall.Kill(-dm.Process.Pid, syscall.SIGKILL) // the shell and its sleep
		<-fired
	}
	if out, err := exec.CommandContext(ctx, "fsfreeze", "-f", mount).CombinedOutput(); err != nil {
		stopDeadman()
		return nil, fmt.Errorf("fsfreeze -f %s: %v: %s", mount, err, strings.TrimSpace(string(out)))
	}
	return func() error {
		select {
		case <-fired:
			return fmt.Errorf("%s was thawed by the dead-man after %v, before the read ended: not a consistent image", mount, bound)
		default:
		}
		stopDeadman()
		if out, err := exec.Command("fsfreeze", "-u", mount).CombinedOutput(); err != nil {
			return fmt.Errorf("fsfreeze -u %s: %v: %s", mount, err, strings.TrimSpace(string(out)))
		}
		return nil
	}, nil
}
