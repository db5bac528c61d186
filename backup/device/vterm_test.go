package device

import (
	"strings"
	"testing"
)

// TestDeviceVterm: what each vendor's byte stream looks like on a screen,
// fed whole and one byte at a time (a read may end anywhere).
func TestDeviceVterm(t *testing.T) {
	cases := []struct {
		name, in   string
		done, line string
	}{
		{"crlf", "a\r\nb\r\n", "a\nb\n", ""},
		{"fortios double cr", "show\r\r\nconfig\r\n", "show\nconfig\n", ""},
		{"ios pager erased with backspaces", "line1\r\n --More-- " + strings.Repeat("\b", 10) + strings.Repeat(" ", 10) + strings.Repeat("\b", 10) + "line2\r\n", "line1\nline2\n", ""},
		{"vrp pager erased with cursor-left", "a\r\n  ---- More ----\x1b[16D                \x1b[16Db\r\n", "a\nb\n", ""},
		{"fortios pager erased with cr", "a\r\n--More-- \r         \rb\r\n", "a\nb\n", ""},
		{"comware nul and bel around the prompt", "\x00<sw1>\x07", "", "<sw1>"},
		{"routeros repaint of the prompt", "[admin@MikroTik] > \r\x1b[K[admin@MikroTik] > ", "", "[admin@MikroTik] > "},
		{"colours dropped", "\x1b[m\x1b[36m# comment\x1b[m\r\n", "# comment\n", ""},
		{"erase to end of line", "abcdef\x1b[3D\x1b[K\r\n", "abc\n", ""},
		{"trailing blanks kept when nothing was erased", "banner  \r\n", "banner  \n", ""},
		{"unknown long escape does not swallow the config", "\x1b[" + strings.Repeat("1;", 40) + "hostname r1\r\n", "", ""},
	}
	for _, c := range cases {
		for _, bytewise := range []bool{false, true} {
			var v vterm
			if bytewise {
				for i := range len(c.in) {
					v.write([]byte{c.in[i]})
				}
			} else {
				v.write([]byte(c.in))
			}
			if c.name == "unknown long escape does not swallow the config" {
				if got := v.take(); !strings.Contains(got, "r1") {
					t.Errorf("%s: %q", c.name, got)
				}
				continue
			}
			if got := v.take(); got != c.done {
				t.Errorf("%s (bytewise %v): lines %q, want %q", c.name, bytewise, got, c.done)
			}
			if got := v.current(); got != c.line {
				t.Errorf("%s (bytewise %v): current line %q, want %q", c.name, bytewise, got, c.line)
			}
		}
	}
}

// FuzzDeviceVterm: any byte stream, split anywhere, gives the same
// screen, and never a line with a control character in it.
func FuzzDeviceVterm(f *testing.F) {
	f.Add([]byte("a\r\n --More-- \b\b\b  \b\bb\r\n\x1b[16D\x00<x>\x07"), 3)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		var whole, split vterm
		whole.write(b)
		if len(b) > 0 {
			cut = ((cut % len(b)) + len(b)) % len(b)
		} else {
			cut = 0
		}
		split.write(b[:cut])
		split.write(b[cut:])
		w, s := whole.take()+"|"+whole.current(), split.take()+"|"+split.current()
		if w != s {
			t.Fatalf("split at %d changes the screen:\n%q\n%q", cut, w, s)
		}
		for _, c := range []byte(w) {
			if c == 0 || c == 0x07 || c == 0x1b || c == '\b' || c == '\r' {
				t.Fatalf("control byte %#x on screen: %q", c, w)
			}
		}
	})
}
