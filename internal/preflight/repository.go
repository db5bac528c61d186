package preflight

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Repository is one of the plan's repositories (the repository or its
// copy_to) as `holiday plan` found it, read-only: opened with its
// password, and its Object Lock read the cheap way (the bucket's
// setting and one HEAD of the config). Whoever fills it judges it too
// (Findings); this package only carries and prints it.
type Repository struct {
	Role string `json:"role"` // "repository" or "copy_to"
	// URL is the location as the plan names it; a plan never holds
	// credentials in it (plans refuses them).
	URL       string `json:"url"`
	Reachable bool   `json:"reachable"` // opened with its password
	// Error and Hint say why it could not be opened.
	Error      string      `json:"error,omitempty"`
	Hint       string      `json:"hint,omitempty"`
	ObjectLock *ObjectLock `json:"object_lock,omitempty"` // nil unless Reachable
	Findings   []Finding   `json:"findings"`
}

// ObjectLock is a repository's protection against deletion.
type ObjectLock struct {
	Supported bool `json:"supported"` // the storage can retain files (S3); a directory cannot
	Bucket    bool `json:"bucket"`    // the bucket has Object Lock enabled
	// Mode and Days are the repository's setting: what every new file
	// but locks gets (none when Days is 0).
	Mode string `json:"mode,omitempty"`
	Days int    `json:"days,omitempty"`
	// ConfigUntil is the end of the config file's retention.
	ConfigUntil time.Time `json:"config_retained_until,omitzero"`
	// ImmutableUntil is when the first retention of what holiday wrote
	// ends (the config's: it was written first); zero when that has
	// passed or there is none, so the repository is not immutable now.
	ImmutableUntil time.Time `json:"immutable_until,omitzero"`
	// NewUntil is how long a snapshot written now would be retained.
	NewUntil time.Time `json:"new_snapshots_until,omitzero"`
}

// Blocked reports whether lockdown would stop before any host because of
// a repository (an error among its findings: it cannot be opened).
func (o *Output) Blocked() bool {
	for _, r := range o.Repositories {
		for _, f := range r.Findings {
			if f.Severity == SevError {
				return true
			}
		}
	}
	return false
}

// writeRepositories prints one line per repository, its findings under
// it, and a blank line; nothing when the plan names none.
func writeRepositories(w io.Writer, rs []*Repository) {
	if len(rs) == 0 {
		return
	}
	roleW := 0
	for _, r := range rs {
		roleW = max(roleW, len(r.Role)+1)
	}
	for _, r := range rs {
		fmt.Fprintf(w, "%-*s  %s  %s\n", roleW, r.Role+":", r.URL, repositoryState(r))
		if r.Hint != "" {
			fmt.Fprintf(w, "%*s  hint: %s\n", roleW, "", r.Hint)
		}
		for _, f := range r.Findings {
			fmt.Fprintf(w, "%*s  %s: %s\n", roleW, "", f.Severity, f.Message)
		}
	}
	fmt.Fprintln(w)
}

const day = "2006-01-02 15:04 MST"

// repositoryState is the line's verdict: reachable or not, immutable
// until when or why not.
func repositoryState(r *Repository) string {
	if !r.Reachable {
		return "NOT REACHABLE: " + r.Error
	}
	ol := r.ObjectLock
	var s string
	switch {
	case ol == nil || !ol.Supported:
		s = "not immutable (a directory: whoever can write to it can delete the backups)"
	case !ol.Bucket:
		s = "not immutable: the bucket has no Object Lock (anyone with these credentials can delete the backups)"
	case ol.Days == 0:
		s = "not immutable: the bucket has Object Lock but the repository gives new files no retention (it was made without object_lock)"
	case ol.ImmutableUntil.IsZero():
		cfg := "had none"
		if !ol.ConfigUntil.IsZero() {
			cfg = "ended " + ol.ConfigUntil.UTC().Format(day)
		}
		s = fmt.Sprintf("not immutable: the config's retention %s; new files are retained %d days (%s), a snapshot taken now until %s",
			cfg, ol.Days, strings.ToLower(ol.Mode), ol.NewUntil.UTC().Format(day))
	default:
		s = fmt.Sprintf("immutable until %s (the config, written first; new files are retained %d days (%s), a snapshot taken now until %s)",
			ol.ImmutableUntil.UTC().Format(day), ol.Days, strings.ToLower(ol.Mode), ol.NewUntil.UTC().Format(day))
	}
	return "reachable, " + s
}
