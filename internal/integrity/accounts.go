package integrity

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

func (c *collection) accounts(ctx context.Context) error {
	b, err := os.ReadFile(c.path("/etc/passwd"))
	if err != nil {
		return err
	}
	c.st.Accounts = parsePasswd(b)
	if b, err := os.ReadFile(c.path("/etc/group")); err == nil {
		c.st.Groups = parseGroup(b)
	} else {
		return err
	}
	if b, err := os.ReadFile(c.path("/etc/shadow")); err == nil {
		c.st.Shadow = shadowDigests(b)
	}
	return nil
}

func parsePasswd(b []byte) []Account {
	var out []Account
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 7 || strings.HasPrefix(line, "#") {
			continue
		}
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, Account{Name: f[0], UID: uid, GID: gid, Home: f[5], Shell: f[6]})
	}
	return out
}

func parseGroup(b []byte) []Group {
	var out []Group
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 4 || strings.HasPrefix(line, "#") {
			continue
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		g := Group{Name: f[0], GID: gid}
		if f[3] != "" {
			g.Members = strings.Split(f[3], ",")
			sort.Strings(g.Members)
		}
		out = append(out, g)
	}
	return out
}

// shadowDigests keeps a digest of each password field, never the field.
func shadowDigests(b []byte) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 2 || f[0] == "" {
			continue
		}
		sum := sha256.Sum256([]byte(f[1]))
		m[f[0]] = hex.EncodeToString(sum[:8])
	}
	return m
}

// keys reads every authorized_keys file: the AuthorizedKeysFile patterns
// of sshd_config (default .ssh/authorized_keys and .ssh/authorized_keys2)
// for every account with a home.
func (c *collection) keys(ctx context.Context) error {
	patterns := c.authorizedKeysFiles()
	seen := map[string]bool{}
	var errs []string
	for _, a := range c.st.Accounts {
		for _, pat := range patterns {
			p := expandKeysPattern(pat, a)
			if p == "" || seen[p] {
				continue
			}
			seen[p] = true
			b, err := os.ReadFile(c.path(p))
			if err != nil {
				if !os.IsNotExist(err) && !os.IsPermission(err) {
					errs = append(errs, err.Error())
				}
				continue
			}
			c.st.Keys = append(c.st.Keys, parseAuthorizedKeys(p, a.Name, b)...)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// authorizedKeysFiles reads AuthorizedKeysFile from sshd_config and the
// files it includes; the first value wins, as in sshd.
func (c *collection) authorizedKeysFiles() []string {
	var found []string
	var read func(p string, depth int)
	read = func(p string, depth int) {
		if depth > 4 || found != nil {
			return
		}
		b, err := os.ReadFile(c.path(p))
		if err != nil {
			return
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() && found == nil {
			f := strings.Fields(sc.Text())
			if len(f) < 2 || strings.HasPrefix(f[0], "#") {
				continue
			}
			switch strings.ToLower(f[0]) {
			case "match":
				return // per-connection settings: not the default
			case "include":
				for _, inc := range f[1:] {
					if !filepath.IsAbs(inc) {
						inc = "/etc/ssh/" + inc
					}
					ms, _ := filepath.Glob(c.path(inc))
					sort.Strings(ms)
					for _, m := range ms {
						read(c.hostPath(m), depth+1)
					}
				}
			case "authorizedkeysfile":
				found = f[1:]
			}
		}
	}
	read("/etc/ssh/sshd_config", 0)
	if len(found) == 0 || (len(found) == 1 && strings.EqualFold(found[0], "none")) {
		return []string{".ssh/authorized_keys", ".ssh/authorized_keys2"}
	}
	// The defaults are looked at too: a key planted there is not used by
	// this sshd, but it is still a planted key.
	return append(found, ".ssh/authorized_keys", ".ssh/authorized_keys2")
}

// expandKeysPattern applies sshd's %h, %u, %% and relative-to-home rules.
func expandKeysPattern(pat string, a Account) string {
	if a.Home == "" {
		return ""
	}
	r := strings.NewReplacer("%h", a.Home, "%u", a.Name, "%U", strconv.Itoa(a.UID), "%%", "%")
	p := r.Replace(pat)
	if !filepath.IsAbs(p) {
		p = filepath.Join(a.Home, p)
	}
	return filepath.Clean(p)
}

var keyTypes = map[string]bool{
	"ssh-ed25519": true, "ssh-rsa": true, "ssh-dss": true, "ecdsa-sha2-nistp256": true,
	"ecdsa-sha2-nistp384": true, "ecdsa-sha2-nistp521": true, "sk-ssh-ed25519@openssh.com": true,
	"sk-ecdsa-sha2-nistp256@openssh.com": true,
}

// parseAuthorizedKeys reads key lines ([options] type base64 [comment]).
// Options may hold quoted spaces; the key type is found as the first
// known type token.
func parseAuthorizedKeys(file, user string, b []byte) []AuthKey {
	var out []AuthKey
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if !keyTypes[f[i]] && !strings.HasSuffix(f[i], "-cert-v01@openssh.com") {
				continue
			}
			blob, err := base64.StdEncoding.DecodeString(f[i+1])
			if err != nil {
				break
			}
			sum := sha256.Sum256(blob)
			k := AuthKey{File: file, User: user, Type: f[i],
				SHA256:  "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:]),
				Options: strings.Join(f[:i], " "), Comment: strings.Join(f[i+2:], " ")}
			out = append(out, k)
			break
		}
	}
	return out
}
