package integrity

import (
	"bufio"
	"context"
	"os"
	"regexp"
	"strings"
	"time"
)

// AuthLogs are the syslog files that hold sshd's and PAM's lines (Debian,
// then RHEL), newest last so lines come in time order.
var AuthLogs = []string{"/var/log/auth.log.1", "/var/log/auth.log", "/var/log/secure.1", "/var/log/secure"}

var (
	reAccepted = regexp.MustCompile(`sshd\[\d+\]: Accepted (\S+) for (\S+) from (\S+)`)
	reFailed   = regexp.MustCompile(`sshd\[\d+\]: Failed (\S+) for (?:invalid user )?(\S+) from (\S+)`)
	reInvalid  = regexp.MustCompile(`sshd\[\d+\]: Invalid user (\S*) from (\S+)`)
	rePAMFail  = regexp.MustCompile(`authentication failure;.*rhost=(\S+)(?:\s+user=(\S+))?`)
)

// authLog reads the authentication events since Args.Since.
func (c *collection) authLog(ctx context.Context) error {
	if c.args.Since.IsZero() {
		return nil
	}
	for _, p := range AuthLogs {
		f, err := os.Open(c.path(p))
		if err != nil {
			continue
		}
		fi, _ := f.Stat()
		year := time.Now().Year()
		if fi != nil {
			year = fi.ModTime().Year()
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if a, ok := ParseAuthLine(sc.Text(), year); ok && !a.Time.Before(c.args.Since) {
				a.File = p
				c.st.Logins = append(c.st.Logins, a)
			}
		}
		f.Close()
	}
	return nil
}

// ParseAuthLine reads one syslog line of sshd or PAM: an accepted login
// or a failed attempt. Timestamps are RFC 3339 (rsyslog's default on
// Debian 12) or the classic "Jan  2 15:04:05", placed in year.
func ParseAuthLine(line string, year int) (AuthLine, bool) {
	t, rest, ok := syslogTime(line, year)
	if !ok {
		return AuthLine{}, false
	}
	if m := reAccepted.FindStringSubmatch(rest); m != nil {
		return AuthLine{Time: t, OK: true, Method: m[1], User: m[2], Source: m[3]}, true
	}
	if m := reFailed.FindStringSubmatch(rest); m != nil {
		return AuthLine{Time: t, Method: m[1], User: m[2], Source: m[3]}, true
	}
	if m := reInvalid.FindStringSubmatch(rest); m != nil {
		return AuthLine{Time: t, Method: "invalid-user", User: m[1], Source: m[2]}, true
	}
	if m := rePAMFail.FindStringSubmatch(rest); m != nil && strings.Contains(rest, "sshd") {
		return AuthLine{Time: t, Method: "pam", User: m[2], Source: m[1]}, true
	}
	return AuthLine{}, false
}

func syslogTime(line string, year int) (time.Time, string, bool) {
	if sp := strings.IndexByte(line, ' '); sp > 0 {
		if t, err := time.Parse(time.RFC3339Nano, line[:sp]); err == nil {
			return t.UTC(), line[sp+1:], true
		}
	}
	if len(line) < 16 {
		return time.Time{}, "", false
	}
	t, err := time.ParseInLocation("Jan _2 15:04:05", line[:15], time.Local)
	if err != nil {
		return time.Time{}, "", false
	}
	return t.AddDate(year, 0, 0).UTC(), line[16:], true
}
