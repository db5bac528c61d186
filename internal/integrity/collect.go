package integrity

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Args is what the control node asks of a collection. The zero value
// takes a baseline.
type Args struct {
	// WebRoots are the plan's web roots: hashed, and their scripts
	// searched for webshell patterns.
	WebRoots []string `json:"web_roots,omitempty"`
	// Since starts the window of the auth log (the baseline's time); zero
	// reads no auth log.
	Since time.Time `json:"since,omitzero"`
	// Logs are the baseline's logs: the agent tells for each whether its
	// old content is still the start of the file, of a rotated file, or
	// gone ([Log.Prefix]).
	Logs map[string]Log `json:"logs,omitempty"`
	// CrossView runs the host's own ps and ss and reports what they hide.
	CrossView bool `json:"cross_view,omitempty"`
}

// Collect reads the state of the system under root ("/" on a host; a
// fake tree in tests). /proc and /sys are read under root too. A collector
// that fails records a Problem; the others still report.
func Collect(ctx context.Context, root string, a Args) *State {
	start := time.Now()
	c := &collection{root: root, args: a, st: &State{
		Format: FormatVersion, Taken: start.UTC(), WebRoot: a.WebRoots,
		Files: map[string]File{}, Special: map[string]Special{}, Logs: map[string]Log{},
	}}
	c.st.Host, _ = os.Hostname()
	if b, err := os.ReadFile(c.path("/etc/hostname")); err == nil && root != "/" {
		c.st.Host = strings.TrimSpace(string(b))
	}
	c.st.Kernel = strings.TrimSpace(c.readString("/proc/sys/kernel/osrelease"))
	c.st.BootID = strings.TrimSpace(c.readString("/proc/sys/kernel/random/boot_id"))

	// Volatile views first (processes, sockets), then the files; the
	// slow walks run side by side.
	c.run(ctx, "processes", c.processes)
	c.run(ctx, "listeners", c.listeners)
	if a.CrossView {
		c.run(ctx, "cross-view", c.crossView)
	}
	c.run(ctx, "modules", c.modules)
	c.run(ctx, "accounts", c.accounts)
	c.run(ctx, "packages", c.packages)
	c.run(ctx, "dpkg-log", c.dpkgLog)
	var wg sync.WaitGroup
	for _, f := range []struct {
		name string
		fn   func(context.Context) error
	}{
		{"files", c.files}, {"special", c.special}, {"logs", c.logs}, {"auth-log", c.authLog}, {"tmp", c.tmpExecs},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(ctx, f.name, f.fn)
		}()
	}
	wg.Wait()
	c.run(ctx, "keys", c.keys) // needs accounts and sshd_config
	c.st.Took = time.Since(start).Round(time.Millisecond).String()
	return c.st
}

type collection struct {
	root string
	args Args
	mu   sync.Mutex // guards st's maps and Errors while walks run
	st   *State
	own  map[string]string // dpkg: path → package
}

func (c *collection) run(ctx context.Context, name string, fn func(context.Context) error) {
	if err := fn(ctx); err != nil {
		c.mu.Lock()
		c.st.Errors = append(c.st.Errors, Problem{Collector: name, Error: err.Error()})
		c.mu.Unlock()
	}
}

// path maps an absolute path on the host to the tree under root.
func (c *collection) path(p string) string {
	if c.root == "/" || c.root == "" {
		return p
	}
	return filepath.Join(c.root, p)
}

// hostPath maps a path under root back to the host's absolute path.
func (c *collection) hostPath(p string) string {
	if c.root == "/" || c.root == "" {
		return p
	}
	r, err := filepath.Rel(c.root, p)
	if err != nil {
		return p
	}
	return "/" + r
}

func (c *collection) readString(p string) string {
	b, _ := os.ReadFile(c.path(p))
	return string(b)
}
