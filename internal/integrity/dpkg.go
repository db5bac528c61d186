package integrity

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// packages reads dpkg's status database: every installed package and its
// version, so that a changed binary can be put down to an upgrade. On a
// host without dpkg the map stays empty and every change is unexplained.
func (c *collection) packages(ctx context.Context) error {
	b, err := os.ReadFile(c.path("/var/lib/dpkg/status"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	c.st.Packages = parseDpkgStatus(b)
	return nil
}

func parseDpkgStatus(b []byte) map[string]string {
	out := map[string]string{}
	var name, version, status string
	flush := func() {
		if name != "" && strings.HasSuffix(status, " installed") {
			out[name] = version
		}
		name, version, status = "", "", ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		l := sc.Text()
		if l == "" {
			flush()
			continue
		}
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			continue
		}
		switch k {
		case "Package":
			name = v
		case "Version":
			version = v
		case "Status":
			status = v
		}
	}
	flush()
	return out
}

// loadOwners reads /var/lib/dpkg/info/*.list: which package ships which
// path.
func (c *collection) loadOwners() error {
	c.own = map[string]string{}
	lists, err := filepath.Glob(c.path("/var/lib/dpkg/info/*.list"))
	if err != nil || len(lists) == 0 {
		return err
	}
	for _, l := range lists {
		pkg := strings.TrimSuffix(filepath.Base(l), ".list")
		pkg, _, _ = strings.Cut(pkg, ":") // libc6:amd64 → libc6
		b, err := os.ReadFile(l)
		if err != nil {
			return err
		}
		for _, p := range strings.Split(string(b), "\n") {
			if p != "" && p != "/." {
				c.own[p] = pkg
			}
		}
	}
	return nil
}

// owner returns the package shipping a host path. On merged-/usr systems
// packages still list /bin/x while the file lives in /usr/bin/x.
func (c *collection) owner(p string) string {
	if c.own == nil {
		return ""
	}
	if o, ok := c.own[p]; ok {
		return o
	}
	if rest, ok := strings.CutPrefix(p, "/usr"); ok {
		return c.own[rest]
	}
	return ""
}

// DpkgLog is dpkg's own log: a package change that it does not record was
// made by editing dpkg's database, not by dpkg.
const DpkgLog = "/var/log/dpkg.log"

// dpkgLog reads the package actions dpkg logged since Args.Since: package
// (without :arch) → the version it was left at ("" when removed).
func (c *collection) dpkgLog(ctx context.Context) error {
	if c.args.Since.IsZero() {
		return nil
	}
	c.st.DpkgLogged = map[string]string{}
	for _, p := range []string{DpkgLog + ".1", DpkgLog} {
		b, err := os.ReadFile(c.path(p))
		if err != nil {
			continue
		}
		for name, v := range parseDpkgLog(b, c.args.Since) {
			c.st.DpkgLogged[name] = v
		}
	}
	return nil
}

// parseDpkgLog reads "2026-12-24 03:00:00 upgrade nginx:amd64 1.22.1-9
// 1.22.1-9+deb12u1" (and install, remove, purge) lines at or after since.
// dpkg writes local time without a zone.
func parseDpkgLog(b []byte, since time.Time) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		t, err := time.ParseInLocation("2006-01-02 15:04:05", f[0]+" "+f[1], time.Local)
		if err != nil || t.Before(since.Add(-time.Second)) {
			continue
		}
		name, _, _ := strings.Cut(f[3], ":")
		switch f[2] {
		case "install", "upgrade":
			out[name] = f[5]
		case "remove", "purge":
			out[name] = ""
		}
	}
	return out
}
