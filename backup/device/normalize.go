package device

import (
	"regexp"
	"sort"
	"strings"

	"github.com/rogpeppe/go-internal/diff"
)

// Removed replaces every secret in what holiday shows.
const Removed = "<removed>"

// Reencrypted replaces ciphertext that differs on every read.
const Reencrypted = "<encrypted>"

// Normalize returns cfg as diffs compare it: line endings unified,
// volatile lines (timestamps, uptime, the device's own change counters)
// dropped, and ciphertext the device re-encrypts on every read replaced
// by a fixed word. The stored backup is never normalized.
func Normalize(model, cfg string) string {
	d := Drivers[model]
	cfg = strings.ReplaceAll(cfg, "\r\n", "\n")
	if d == nil {
		return cfg
	}
	for _, r := range d.Reencrypted {
		cfg = r.ReplaceAllStringFunc(cfg, func(m string) string {
			sub := r.FindStringSubmatchIndex(m)
			if len(sub) < 4 || sub[2] < 0 {
				return Reencrypted
			}
			return m[:sub[2]] + Reencrypted + m[sub[3]:]
		})
	}
	var b strings.Builder
	for line := range strings.Lines(cfg) {
		l := strings.TrimRight(line, "\n")
		volatile := false
		for _, v := range d.Volatile {
			if v.MatchString(l) {
				volatile = true
				break
			}
		}
		if !volatile {
			b.WriteString(line)
		}
	}
	return b.String()
}

// Mask returns cfg with every secret the model's syntax shows replaced
// by <removed>: passwords and their hashes, SNMP communities, TACACS and
// RADIUS keys, pre-shared keys, private keys. Everything holiday prints,
// logs or diffs goes through Mask.
func Mask(model, cfg string) string {
	d := Drivers[model]
	if d == nil {
		// an unknown dialect: show nothing rather than a secret
		return Removed + "\n"
	}
	type span struct{ a, b int }
	var spans []span
	for _, r := range d.Secrets {
		names := r.SubexpNames()
		for _, m := range r.FindAllStringSubmatchIndex(cfg, -1) {
			for g := 1; g < len(names); g++ {
				if names[g] == "s" && m[2*g] >= 0 && m[2*g+1] > m[2*g] {
					spans = append(spans, span{m[2*g], m[2*g+1]})
				}
			}
		}
	}
	if len(d.SectionSecrets) > 0 {
		var pats []*regexp.Regexp
		off := 0
		for line := range strings.Lines(cfg) {
			// a section starts at a top-level header: RouterOS's /path,
			// FortiOS's config path
			if strings.HasPrefix(line, "/") || strings.HasPrefix(line, "config ") {
				pats = d.SectionSecrets[strings.TrimRight(line, " \r\n")]
			}
			for _, r := range pats {
				names := r.SubexpNames()
				for _, m := range r.FindAllStringSubmatchIndex(line, -1) {
					for g := 1; g < len(names); g++ {
						if names[g] == "s" && m[2*g] >= 0 && m[2*g+1] > m[2*g] {
							spans = append(spans, span{off + m[2*g], off + m[2*g+1]})
						}
					}
				}
			}
			off += len(line)
		}
	}
	if len(spans) == 0 {
		return cfg
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].a < spans[j].a })
	merged := spans[:1]
	for _, s := range spans[1:] {
		last := &merged[len(merged)-1]
		if s.a <= last.b {
			last.b = max(last.b, s.b)
		} else {
			merged = append(merged, s)
		}
	}
	var b strings.Builder
	pos := 0
	for _, s := range merged {
		b.WriteString(cfg[pos:s.a])
		b.WriteString(Removed)
		pos = s.b
	}
	b.WriteString(cfg[pos:])
	return b.String()
}

// Diff returns a unified diff of two configs as shown: normalized, then
// masked. Equal configs give "".
func Diff(model, oldName, oldCfg, newName, newCfg string) string {
	a := Mask(model, Normalize(model, oldCfg))
	b := Mask(model, Normalize(model, newCfg))
	return string(diff.Diff(oldName, []byte(a), newName, []byte(b)))
}

func sortStrings(s []string) { sort.Strings(s) }
