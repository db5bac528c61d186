package integrity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// SystemDirs are the trees of system binaries and libraries. On a
// merged-/usr system /bin, /sbin and /lib* are symlinks into /usr: the
// link is recorded and its target walked once.
var SystemDirs = []string{
	"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
	"/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32", "/usr/libexec",
	"/usr/local/bin", "/usr/local/sbin", "/usr/local/lib",
}

// ConfigDirs are watched whole: /etc and the cron and at spools.
var ConfigDirs = []string{"/etc", "/var/spool/cron", "/var/spool/at"}

// HomeFiles are the per-account files that run at login or hold
// persistence, relative to each home.
var HomeFiles = []string{
	".bashrc", ".profile", ".bash_profile", ".bash_login", ".bash_logout", ".zshrc", ".zprofile",
	".config/systemd/user", ".config/autostart", ".ssh/rc", ".ssh/environment",
	".ssh/authorized_keys", ".ssh/authorized_keys2", // judged by key (State.Keys); here for their times
}

// webScriptExt are the web-root files searched for webshell patterns.
var webScriptExt = map[string]bool{
	".php": true, ".php3": true, ".php4": true, ".php5": true, ".php7": true, ".phtml": true, ".phar": true,
	".jsp": true, ".jspx": true, ".asp": true, ".aspx": true, ".cgi": true, ".pl": true, ".py": true, ".sh": true,
}

// maxScan bounds what is read of one web script for pattern matching.
const maxScan = 4 << 20

// hashKey identifies a file's content within one run: a second path to
// the same inode (a hard link, a bind mount) is not read twice. It is
// never kept across runs: on a compromised host stat data can be forged.
type hashKey struct {
	dev, ino, size   uint64
	mtime, ctime     int64
	mtimeNs, ctimeNs int64
}

type hashCache struct {
	mu sync.Mutex
	m  map[hashKey]string
}

func (h *hashCache) get(k hashKey) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.m[k]
	return v, ok
}

func (h *hashCache) put(k hashKey, v string) {
	h.mu.Lock()
	h.m[k] = v
	h.mu.Unlock()
}

func keyOf(st *syscall.Stat_t) hashKey {
	return hashKey{dev: uint64(st.Dev), ino: st.Ino, size: uint64(st.Size),
		mtime: st.Mtim.Sec, mtimeNs: st.Mtim.Nsec, ctime: st.Ctim.Sec, ctimeNs: st.Ctim.Nsec}
}

type fileJob struct {
	host string // the path on the host
	real string // the path under root
	fi   fs.FileInfo
	web  bool
}

// files walks the watched trees and hashes every regular file with one
// worker per CPU.
func (c *collection) files(ctx context.Context) error {
	if err := c.loadOwners(); err != nil {
		c.mu.Lock()
		c.st.Errors = append(c.st.Errors, Problem{Collector: "dpkg-owners", Error: err.Error()})
		c.mu.Unlock()
	}
	roots := append(append([]string{}, SystemDirs...), ConfigDirs...)
	for _, a := range c.st.Accounts {
		if a.Home == "" || a.Home == "/" || a.Home == "/nonexistent" {
			continue
		}
		for _, f := range HomeFiles {
			roots = append(roots, filepath.Join(a.Home, f))
		}
	}
	web := map[string]bool{}
	for _, w := range c.args.WebRoots {
		roots = append(roots, w)
		web[filepath.Clean(w)] = true
	}

	cache := &hashCache{m: map[hashKey]string{}}
	jobs := make(chan fileJob, 256)
	g, gctx := errgroup.WithContext(ctx)
	for range runtime.NumCPU() {
		g.Go(func() error {
			for j := range jobs {
				f := c.fileState(j, cache)
				c.mu.Lock()
				c.st.Files[j.host] = f
				c.mu.Unlock()
			}
			return nil
		})
	}
	var walkErrs []string
	seen := map[string]bool{}
	for _, r := range roots {
		r = filepath.Clean(r)
		if seen[r] {
			continue
		}
		seen[r] = true
		inWeb := false
		for w := range web {
			if r == w || strings.HasPrefix(r, w+"/") {
				inWeb = true
			}
		}
		err := filepath.WalkDir(c.path(r), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				walkErrs = append(walkErrs, err.Error())
				return nil
			}
			if gctx.Err() != nil {
				return gctx.Err()
			}
			host := c.hostPath(p)
			if d.IsDir() {
				if host != r && seen[host] {
					return filepath.SkipDir // walked as its own root
				}
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil // gone meanwhile
			}
			jobs <- fileJob{host: host, real: p, fi: fi, web: inWeb}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			walkErrs = append(walkErrs, err.Error())
		}
	}
	close(jobs)
	if err := g.Wait(); err != nil {
		return err
	}
	if len(walkErrs) > 0 {
		return errors.New(strings.Join(walkErrs, "; "))
	}
	return nil
}

func (c *collection) fileState(j fileJob, cache *hashCache) File {
	f := File{Mode: j.fi.Mode(), Size: j.fi.Size(), MTime: j.fi.ModTime().UTC(), Package: c.owner(j.host)}
	st, _ := j.fi.Sys().(*syscall.Stat_t)
	if st != nil {
		f.UID, f.GID = int(st.Uid), int(st.Gid)
	}
	switch {
	case j.fi.Mode()&fs.ModeSymlink != 0:
		f.Link, _ = os.Readlink(j.real)
	case j.fi.Mode().IsRegular():
		if st != nil && !j.web {
			if h, ok := cache.get(keyOf(st)); ok {
				f.SHA256 = h
				return f
			}
		}
		h, shell, err := hashFile(j.real, j.web && webScriptExt[strings.ToLower(filepath.Ext(j.host))])
		if err != nil {
			f.SHA256 = "unreadable: " + err.Error()
			return f
		}
		f.SHA256, f.Webshell = h, shell
		if st != nil {
			cache.put(keyOf(st), h)
		}
	}
	return f
}

// hashFile returns the SHA-256 of a file and, if scan, the webshell
// pattern its content matches.
func hashFile(p string, scan bool) (sum, shell string, err error) {
	fd, err := os.Open(p)
	if err != nil {
		return "", "", err
	}
	defer fd.Close()
	h := sha256.New()
	if scan {
		b, err := io.ReadAll(io.LimitReader(fd, maxScan))
		if err != nil {
			return "", "", err
		}
		h.Write(b)
		shell = MatchWebshell(b)
	}
	if _, err := io.Copy(h, fd); err != nil {
		return "", "", err
	}
	return hex.EncodeToString(h.Sum(nil)), shell, nil
}

// pseudoFS are filesystems without files of the system's own: the SUID
// walk does not enter them.
var pseudoFS = map[string]bool{
	"proc": true, "sysfs": true, "cgroup": true, "cgroup2": true, "devpts": true, "devtmpfs": true,
	"debugfs": true, "tracefs": true, "securityfs": true, "pstore": true, "bpf": true, "configfs": true,
	"fusectl": true, "mqueue": true, "hugetlbfs": true, "binfmt_misc": true, "autofs": true,
	"efivarfs": true, "nfs": true, "nfs4": true, "cifs": true, "smb3": true, "nsfs": true, "rpc_pipefs": true,
}

// skipMounts lists the mount points under root the SUID walk skips.
func (c *collection) skipMounts() map[string]bool {
	skip := map[string]bool{c.path("/proc"): true, c.path("/sys"): true}
	if c.root != "/" && c.root != "" {
		return skip
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return skip
	}
	for _, l := range strings.Split(string(b), "\n") {
		// id parent maj:min root mountpoint opts [optional…] - fstype src opts
		f := strings.Fields(l)
		if len(f) < 7 {
			continue
		}
		for i := 6; i+1 < len(f); i++ {
			if f[i] == "-" {
				if pseudoFS[f[i+1]] || strings.HasPrefix(f[i+1], "fuse.") {
					skip[unescapeMount(f[4])] = true
				}
				break
			}
		}
	}
	delete(skip, "/dev/shm") // tmpfs, but a classic drop point
	return skip
}

func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// special walks the system's filesystems for SUID/SGID files and file
// capabilities.
func (c *collection) special(ctx context.Context) error {
	skip := c.skipMounts()
	buf := make([]byte, 64)
	return filepath.WalkDir(c.path("/"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable or gone: not ours to judge here
		}
		if d.IsDir() {
			if err := ctx.Err(); err != nil {
				return err // the whole filesystem: stop when the check is given up
			}
			if skip[p] {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		sp := Special{Mode: fi.Mode()}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			sp.UID = int(st.Uid)
		}
		if n, err := unix.Lgetxattr(p, "security.capability", buf); err == nil && n > 0 {
			sp.Caps = hex.EncodeToString(buf[:n])
		}
		if fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid) == 0 && sp.Caps == "" {
			return nil
		}
		c.mu.Lock()
		c.st.Special[c.hostPath(p)] = sp
		c.mu.Unlock()
		return nil
	})
}
