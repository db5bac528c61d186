// Package names holds the rules for names that holiday hands to other
// programs on a host (OS users, database names), shared by the plan's
// validation and the code on the host that runs the tools, so the two
// cannot drift apart.
package names

import "strings"

// OSUser reports whether u is a user name every tool takes as one
// argument: letters, digits, '_', '-', '.', at most 32 bytes, not
// starting with '-'.
func OSUser(u string) bool {
	if u == "" || len(u) > 32 || u[0] == '-' {
		return false
	}
	for _, r := range u {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// DatabaseProblem says what makes name unsafe to give a dump tool, or ""
// when nothing does: empty, a NUL or line break, over 64 bytes, and for
// MySQL (whose tools take it as a bare argument) a leading '-'.
func DatabaseProblem(name string, mysql bool) string {
	switch {
	case name == "":
		return "empty database name"
	case strings.ContainsAny(name, "\x00\n\r"):
		return "a NUL or line break in the name"
	case len(name) > 64:
		return "longer than 64 bytes"
	case mysql && strings.HasPrefix(name, "-"):
		return "starts with '-': MySQL's tools would read it as an option"
	}
	return ""
}
