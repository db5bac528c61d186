package facts

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Audit is the pre-holiday audit: things to fix before the break, reported
// and never fixed silently.
type Audit struct {
	SSHD SSHD `json:"sshd"`
	// EmptyPasswords are accounts whose /etc/shadow password field is
	// empty: anyone may log in as them where the service allows it.
	EmptyPasswords []string `json:"empty_passwords"`
	Updates        Updates  `json:"updates"`
	// WorldWritable are paths under the web roots anyone may write to
	// (at most MaxWorldWritable; WorldWritableMore says there were more).
	WorldWritable     []string `json:"world_writable"`
	WorldWritableMore bool     `json:"world_writable_more,omitempty"`
	WebRoots          []string `json:"web_roots"` // the roots that exist and were searched
}

// SSHD is sshd's effective configuration for the settings the audit
// judges, lowercased as `sshd -T` prints them.
type SSHD struct {
	Source                 string `json:"source"` // "sshd -T" or the config file read
	PasswordAuthentication string `json:"passwordauthentication"`
	KbdInteractive         string `json:"kbdinteractiveauthentication,omitempty"`
	PermitRootLogin        string `json:"permitrootlogin"`
	PermitEmptyPasswords   string `json:"permitemptypasswords,omitempty"`
}

// Updates are pending security updates as apt's local cache knows them.
type Updates struct {
	// State is "known" (Security is the count), "unknown" (Reason says
	// why: no apt, no package lists), never a guess.
	State    string   `json:"state"`
	Security int      `json:"security"`
	Packages []string `json:"packages,omitempty"`
	Total    int      `json:"total"`
	Reason   string   `json:"reason,omitempty"`
	// ListsAge is the age of the newest package list: a count from a
	// cache last refreshed in spring says little.
	ListsAge string `json:"lists_age,omitempty"`
}

// MaxWorldWritable bounds the paths reported per host.
const MaxWorldWritable = 50

func collectSSHD(ctx context.Context, a Args, f *Facts) error {
	s := &f.Audit.SSHD
	if out, err := output(ctx, 15*time.Second, "sshd", "-T"); err == nil {
		s.Source = "sshd -T"
		for _, line := range strings.Split(string(out), "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(line), " ")
			setSSHD(s, strings.ToLower(k), v)
		}
		return nil
	}
	// Fall back to reading the files: first value wins, as in sshd.
	seen := map[string]bool{}
	s.Source = "/etc/ssh/sshd_config"
	if err := readSSHDConfig("/etc/ssh/sshd_config", s, seen, 0); err != nil {
		return err
	}
	// sshd's compiled-in defaults for what the files left unset.
	if !seen["passwordauthentication"] {
		s.PasswordAuthentication = "yes"
	}
	if !seen["permitrootlogin"] {
		s.PermitRootLogin = "prohibit-password"
	}
	return nil
}

func setSSHD(s *SSHD, k, v string) {
	v = strings.ToLower(strings.TrimSpace(v))
	switch k {
	case "passwordauthentication":
		s.PasswordAuthentication = v
	case "kbdinteractiveauthentication", "challengeresponseauthentication":
		if s.KbdInteractive == "" {
			s.KbdInteractive = v
		}
	case "permitrootlogin":
		s.PermitRootLogin = v
	case "permitemptypasswords":
		s.PermitEmptyPasswords = v
	}
}

var includeRE = regexp.MustCompile(`(?i)^include\s+(.+)$`)

func readSSHDConfig(path string, s *SSHD, seen map[string]bool, depth int) error {
	if depth > 8 {
		return errors.New("sshd_config: Include nested too deep")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if m := includeRE.FindStringSubmatch(line); m != nil {
			for _, pat := range strings.Fields(m[1]) {
				if !filepath.IsAbs(pat) {
					pat = filepath.Join("/etc/ssh", pat)
				}
				files, _ := filepath.Glob(pat)
				sort.Strings(files)
				for _, f := range files {
					if err := readSSHDConfig(f, s, seen, depth+1); err != nil {
						return err
					}
				}
			}
			continue
		}
		k, v, _ := strings.Cut(strings.Join(strings.Fields(line), " "), " ")
		k = strings.ToLower(k)
		if k == "match" {
			break // Match blocks apply to some connections only
		}
		if !seen[k] {
			seen[k] = true
			setSSHD(s, k, v)
		}
	}
	return sc.Err()
}

func collectAccounts(ctx context.Context, a Args, f *Facts) error {
	b, err := os.ReadFile("/etc/shadow")
	if err != nil {
		return err
	}
	f.Audit.EmptyPasswords = emptyPasswords(b)
	return nil
}

// emptyPasswords lists the shadow entries whose password field is empty
// (not "!" or "*", which lock the password).
func emptyPasswords(shadow []byte) []string {
	users := []string{}
	for _, line := range strings.Split(string(shadow), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 2 && f[0] != "" && f[1] == "" {
			users = append(users, f[0])
		}
	}
	return users
}

func collectUpdates(ctx context.Context, a Args, f *Facts) error {
	u := &f.Audit.Updates
	u.State = "unknown"
	if lookPath("apt-get") == "" {
		u.Reason = "no apt-get on this host"
		return nil
	}
	lists, _ := filepath.Glob("/var/lib/apt/lists/*_Packages*")
	if len(lists) == 0 {
		u.Reason = "apt has no package lists (apt-get update never ran here, and holiday does not reach for the network)"
		return nil
	}
	var newest time.Time
	for _, l := range lists {
		if st, err := os.Stat(l); err == nil && st.ModTime().After(newest) {
			newest = st.ModTime()
		}
	}
	u.ListsAge = time.Since(newest).Round(time.Hour).String()
	// -s simulates from the local cache only; no download, no lock taken.
	out, err := output(ctx, 60*time.Second, "apt-get", "-s", "-qq", "-o", "Debug::NoLocking=1", "upgrade")
	if err != nil {
		u.Reason = err.Error()
		return nil
	}
	u.State = "known"
	u.Total, u.Security, u.Packages = parseAptSim(out)
	return nil
}

// parseAptSim counts the Inst lines of `apt-get -s upgrade`; a package is
// a security update when one of its origins is a security suite
// ("Debian-Security:12/stable-security", "Ubuntu:22.04/jammy-security").
func parseAptSim(out []byte) (total, security int, pkgs []string) {
	for _, line := range strings.Split(string(out), "\n") {
		rest, ok := strings.CutPrefix(line, "Inst ")
		if !ok {
			continue
		}
		total++
		if strings.Contains(strings.ToLower(rest), "security") {
			security++
			name, _, _ := strings.Cut(rest, " ")
			pkgs = append(pkgs, name)
		}
	}
	return total, security, pkgs
}

func collectWebRoots(ctx context.Context, a Args, f *Facts) error {
	roots := a.WebRoots
	if roots == nil {
		roots = DefaultWebRoots
	}
	f.Audit.WebRoots = []string{}
	f.Audit.WorldWritable = []string{}
	const maxEntries = 200000 // bound the walk on a huge site
	n := 0
	errStop := errors.New("stop")
	for _, root := range roots {
		if st, err := os.Stat(root); err != nil || !st.IsDir() {
			continue
		}
		f.Audit.WebRoots = append(f.Audit.WebRoots, root)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if n++; n > maxEntries {
				return errStop
			}
			if d.Type()&fs.ModeSymlink != 0 {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return nil
			}
			if info.Mode().Perm()&0o002 != 0 {
				if len(f.Audit.WorldWritable) < MaxWorldWritable {
					f.Audit.WorldWritable = append(f.Audit.WorldWritable, p)
				} else {
					f.Audit.WorldWritableMore = true
				}
			}
			return nil
		})
		if errors.Is(err, errStop) {
			f.Audit.WorldWritableMore = true
			break
		}
		if err != nil {
			return err
		}
	}
	return nil
}
