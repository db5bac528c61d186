package integrity

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"
)

// Login is one record of utmp, wtmp or btmp.
type Login struct {
	Type string    `json:"type"` // user, login, dead, boot, runlevel, …
	PID  int32     `json:"pid"`
	Line string    `json:"line"`
	User string    `json:"user"`
	Host string    `json:"host"`
	Addr string    `json:"addr,omitempty"`
	Time time.Time `json:"time"`
}

// utmpSize is sizeof(struct utmp) on Linux with glibc for amd64 and
// arm64 (the 64-bit ABIs keep ut_tv as two int32 for compatibility).
//
// The parser is hand-written: the format is a fixed 384-byte record
// (utmp(5)), nothing in go.mod reads it, and the point of the evidence is
// to not run the host's own last/lastb/who.
const utmpSize = 384

var utmpTypes = map[int16]string{0: "empty", 1: "runlevel", 2: "boot", 3: "new-time", 4: "old-time",
	5: "init", 6: "login", 7: "user", 8: "dead", 9: "accounting"}

// ParseUtmp decodes utmp/wtmp/btmp records. A trailing partial record (a
// file truncated mid-write) is reported as an error after the whole ones.
func ParseUtmp(b []byte) ([]Login, error) {
	var out []Login
	for off := 0; off+utmpSize <= len(b); off += utmpSize {
		r := b[off : off+utmpSize]
		typ := int16(binary.LittleEndian.Uint16(r[0:]))
		l := Login{
			Type: utmpTypes[typ],
			PID:  int32(binary.LittleEndian.Uint32(r[4:])),
			Line: cstr(r[8:40]),
			User: cstr(r[44:76]),
			Host: cstr(r[76:332]),
			Time: time.Unix(int64(int32(binary.LittleEndian.Uint32(r[340:]))), int64(int32(binary.LittleEndian.Uint32(r[344:])))*1000).UTC(),
		}
		if l.Type == "" {
			l.Type = fmt.Sprintf("type-%d", typ)
		}
		addr := r[348:364]
		if !bytes.Equal(addr, make([]byte, 16)) {
			if bytes.Equal(addr[4:], make([]byte, 12)) {
				l.Addr = netip.AddrFrom4([4]byte(addr[:4])).String()
			} else {
				l.Addr = netip.AddrFrom16([16]byte(addr)).String()
			}
		}
		out = append(out, l)
	}
	if len(b)%utmpSize != 0 {
		return out, fmt.Errorf("%d trailing bytes: not a whole record (truncated or not utmp)", len(b)%utmpSize)
	}
	return out, nil
}

func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
