package integrity

import "regexp"

// webshellPatterns are constructs of common PHP/JSP webshells: code run
// from request data or from decoded blobs. Each is named in the finding.
var webshellPatterns = []struct {
	name string
	re   *regexp.Regexp
}{
	{"eval(base64_decode(", regexp.MustCompile(`(?i)\beval\s*\(\s*(base64_decode|gzinflate|gzuncompress|str_rot13|rawurldecode)\s*\(`)},
	{"assert($_REQUEST…)", regexp.MustCompile(`(?i)\bassert\s*\(\s*\$_(POST|GET|REQUEST|COOKIE)`)},
	{"eval($_REQUEST…)", regexp.MustCompile(`(?i)\beval\s*\(\s*\$_(POST|GET|REQUEST|COOKIE)`)},
	{"shell call on request data", regexp.MustCompile(`(?i)\b(system|exec|shell_exec|passthru|popen|proc_open|pcntl_exec)\s*\(\s*\$_(POST|GET|REQUEST|COOKIE|SERVER)`)},
	{"backtick on request data", regexp.MustCompile("`\\s*\\$_(POST|GET|REQUEST|COOKIE)")},
	{"preg_replace /e", regexp.MustCompile(`(?i)preg_replace\s*\(\s*['"]([/#~|]).*[/#~|][a-df-z]*e[a-z]*['"]`)},
	{"create_function on request data", regexp.MustCompile(`(?i)create_function\s*\([^)]*\$_(POST|GET|REQUEST|COOKIE)`)},
	{"JSP Runtime.exec(request…)", regexp.MustCompile(`Runtime\.getRuntime\(\)\.exec\s*\(\s*request\.getParameter`)},
	{"JSP ProcessBuilder(request…)", regexp.MustCompile(`new\s+ProcessBuilder\s*\([^)]*request\.getParameter`)},
}

// MatchWebshell returns the name of the first webshell pattern b matches,
// or "".
func MatchWebshell(b []byte) string {
	for _, p := range webshellPatterns {
		if p.re.Match(b) {
			return p.name
		}
	}
	return ""
}
