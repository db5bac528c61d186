package device

import "bytes"

// vterm turns a CLI's byte stream into the lines a person would see: it
// keeps finished lines and the line the cursor is on, applies carriage
// returns, backspaces and cursor-left/right and erase-line escapes (pagers
// erase themselves with these; RouterOS repaints its prompt), and drops
// other escapes (colours), NUL and BEL (Comware wraps its prompt in
// them). It is fed in whatever pieces the network delivers, so an escape
// split across two reads is still recognised.
type vterm struct {
	done  bytes.Buffer // finished lines, each ending in '\n'
	line  []byte       // the current line
	col   int          // cursor within line
	moved bool         // the cursor went back on this line: trailing blanks are erasure
	esc   []byte       // an unfinished escape sequence
	cr    bool         // a '\r' was seen and not yet resolved
}

func (v *vterm) write(p []byte) {
	for _, c := range p {
		if v.esc != nil {
			v.escape(c)
			continue
		}
		if v.cr {
			v.cr = false
			if c != '\n' {
				v.col, v.moved = 0, true // a lone CR: overwrite from the start
			}
		}
		switch c {
		case 0x1b:
			v.esc = []byte{c}
		case '\r':
			v.cr = true
		case '\n':
			v.newline()
		case '\b':
			if v.col > 0 {
				v.col--
				v.moved = true
			}
		case 0, 0x07:
			// Comware's NUL before and BEL after the prompt
		default:
			v.put(c)
		}
	}
}

func (v *vterm) put(c byte) {
	if v.col < len(v.line) {
		v.line[v.col] = c
	} else {
		v.line = append(v.line, c)
	}
	v.col++
}

func (v *vterm) newline() {
	l := v.line
	if v.moved {
		l = bytes.TrimRight(l, " ")
	}
	v.done.Write(l)
	v.done.WriteByte('\n')
	v.line, v.col, v.moved = v.line[:0], 0, false
}

// escape consumes one byte of an escape sequence: CSI (ESC [ params
// final) is interpreted for cursor moves and erasure; anything else is
// dropped after its final byte.
func (v *vterm) escape(c byte) {
	v.esc = append(v.esc, c)
	if len(v.esc) == 2 {
		if c != '[' {
			v.esc = nil // a two-byte escape (ESC 7, ESC =, …)
		}
		return
	}
	if c >= 0x40 && c <= 0x7e {
		n := 0
		for _, d := range v.esc[2 : len(v.esc)-1] {
			if d >= '0' && d <= '9' {
				n = n*10 + int(d-'0')
			}
		}
		if n == 0 {
			n = 1
		}
		switch c {
		case 'D':
			v.col = max(0, v.col-n)
			v.moved = true
		case 'C':
			v.col += n
			for len(v.line) < v.col {
				v.line = append(v.line, ' ')
			}
		case 'K':
			v.line = v.line[:min(v.col, len(v.line))]
		case 'G':
			v.col = max(0, n-1)
			v.moved = true
		}
		v.esc = nil
		return
	}
	if len(v.esc) > 32 {
		v.esc = nil // not a sequence we know; stop swallowing
	}
}

// current returns the line the cursor is on.
func (v *vterm) current() string { return string(v.line) }

// clearLine forgets the current line (a pager prompt just answered):
// whatever the device sends to erase it then erases nothing.
func (v *vterm) clearLine() {
	v.line, v.col, v.moved = v.line[:0], 0, true
}

// take returns the finished lines and forgets them.
func (v *vterm) take() string {
	s := v.done.String()
	v.done.Reset()
	return s
}
