package integrity

import (
	"io/fs"
	"time"
)

// FormatVersion is the version of [State]'s JSON encoding. A baseline of
// another version is refused rather than misread.
const FormatVersion = 1

// State is one collection of a host: what a baseline stores and what a
// check compares with it. Everything in it was read by the agent from the
// kernel's views and files, not from the host's tools, except CrossView.
type State struct {
	Format  int       `json:"format"`
	Host    string    `json:"host"`
	Taken   time.Time `json:"taken"`
	Kernel  string    `json:"kernel,omitempty"`
	BootID  string    `json:"boot_id,omitempty"`
	WebRoot []string  `json:"web_roots,omitempty"`

	Accounts []Account `json:"accounts"`
	Groups   []Group   `json:"groups"`
	// Shadow maps an account to the SHA-256 of its password field: a
	// changed password shows, the hash itself never leaves the host.
	Shadow map[string]string `json:"shadow,omitempty"`
	Keys   []AuthKey         `json:"keys"`
	// Files are the watched files by absolute path: /etc, system binaries
	// and libraries, cron and at spools, profile scripts in homes, web
	// roots (see [Watched]).
	Files map[string]File `json:"files"`
	// Special are the SUID/SGID files and those with file capabilities,
	// anywhere on the system's filesystems.
	Special   map[string]Special `json:"special"`
	Listeners []Listener         `json:"listeners"`
	// Ephemeral is the kernel's ip_local_port_range.
	Ephemeral [2]int   `json:"ephemeral"`
	Modules   []Module `json:"modules"`
	Taint     uint64   `json:"taint"`
	// Packages maps an installed dpkg package (name:arch when multi-arch)
	// to its version.
	Packages map[string]string `json:"packages,omitempty"`
	// DpkgLogged are the package changes dpkg's log records since
	// Args.Since (check only): package → version left ("" removed).
	DpkgLogged map[string]string `json:"dpkg_logged,omitempty"`
	Logs       map[string]Log    `json:"logs"`
	// TmpExecs are the executables in /tmp, /var/tmp and /dev/shm.
	TmpExecs map[string]File `json:"tmp_execs"`

	// Live facts, judged by themselves rather than against the baseline.
	Processes []Process  `json:"processes"`
	Logins    []AuthLine `json:"logins,omitempty"` // auth log lines since Args.Since
	CrossView *CrossView `json:"cross_view,omitempty"`

	Errors []Problem `json:"errors,omitempty"`
	Took   string    `json:"took"`
}

// Problem is a collector that could not do all of its job. A check with
// problems still reports; the problems are shown beside the findings.
type Problem struct {
	Collector string `json:"collector"`
	Error     string `json:"error"`
}

// Account is a line of /etc/passwd.
type Account struct {
	Name  string `json:"name"`
	UID   int    `json:"uid"`
	GID   int    `json:"gid"`
	Home  string `json:"home"`
	Shell string `json:"shell"`
}

// Group is a line of /etc/group.
type Group struct {
	Name    string   `json:"name"`
	GID     int      `json:"gid"`
	Members []string `json:"members,omitempty"`
}

// AuthKey is one key line of an authorized_keys file.
type AuthKey struct {
	File    string `json:"file"`
	User    string `json:"user"`
	Type    string `json:"type"`
	SHA256  string `json:"sha256"` // of the key blob, as ssh-keygen -l prints it
	Comment string `json:"comment,omitempty"`
	Options string `json:"options,omitempty"`
}

// File is a watched file's metadata and content hash.
type File struct {
	Mode    fs.FileMode `json:"mode"`
	UID     int         `json:"uid"`
	GID     int         `json:"gid"`
	Size    int64       `json:"size"`
	MTime   time.Time   `json:"mtime"`
	SHA256  string      `json:"sha256,omitempty"` // regular files
	Link    string      `json:"link,omitempty"`   // symlinks
	Package string      `json:"package,omitempty"`
	// Webshell names the pattern a web-root script matched.
	Webshell string `json:"webshell,omitempty"`
}

// Special is a SUID/SGID file or one with file capabilities.
type Special struct {
	Mode fs.FileMode `json:"mode"`
	UID  int         `json:"uid"`
	Caps string      `json:"caps,omitempty"` // security.capability xattr, hex
}

// Listener is a listening socket with the executables holding it.
type Listener struct {
	Proto string   `json:"proto"` // tcp, tcp6, udp, udp6
	Addr  string   `json:"addr"`
	Port  uint16   `json:"port"`
	Exes  []string `json:"exes,omitempty"`
	PIDs  []int    `json:"pids,omitempty"`
}

// Module is a loaded kernel module (/proc/modules).
type Module struct {
	Name  string `json:"name"`
	Taint string `json:"taint,omitempty"` // the (OE…) flags
}

// Log is a file under /var/log: its size and inode, the hash of its whole
// content, and, at a check, what became of the baseline's content.
type Log struct {
	Size   int64  `json:"size"`
	Ino    uint64 `json:"ino"`
	SHA256 string `json:"sha256"`
	// Prefix is set at a check for a log the baseline held: "grew" (the
	// baseline's bytes are still its start), "rotated:<path>" (they are
	// the start of that rotated file), or "rewritten".
	Prefix string `json:"prefix,omitempty"`
	// Gone is set at a check for a baseline log no longer at its path.
	Gone bool `json:"gone,omitempty"`
}

// Process is a running process from /proc.
type Process struct {
	PID     int       `json:"pid"`
	PPID    int       `json:"ppid"`
	UID     int       `json:"uid"`
	Comm    string    `json:"comm"`
	Cmdline string    `json:"cmdline,omitempty"`
	Exe     string    `json:"exe,omitempty"` // the link's target, " (deleted)" kept
	Start   time.Time `json:"start"`
}

// AuthLine is one authentication event from the auth log.
type AuthLine struct {
	Time   time.Time `json:"time"`
	OK     bool      `json:"ok"`
	User   string    `json:"user"`
	Source string    `json:"source"`
	Method string    `json:"method,omitempty"`
	File   string    `json:"file"`
}

// CrossView is what the host's own ps and ss hide compared with /proc.
type CrossView struct {
	PS            string   `json:"ps"` // the ps that ran, "" if none
	SS            string   `json:"ss"`
	HiddenPIDs    []int    `json:"hidden_pids,omitempty"`
	HiddenSockets []string `json:"hidden_sockets,omitempty"`
	Note          string   `json:"note,omitempty"`
}
