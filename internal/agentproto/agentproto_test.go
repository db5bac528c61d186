package agentproto

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pipeConns returns two ends joined by in-memory pipes.
func pipeConns() (a, b *Conn) {
	ar, bw := io.Pipe()
	br, aw := io.Pipe()
	return NewConn(ar, aw), NewConn(br, bw)
}

func TestHello(t *testing.T) {
	for _, tc := range []struct {
		name     string
		agent    func(c *Conn) // the far end
		wantErr  error
		wantVers bool
	}{
		{name: "match", agent: func(c *Conn) { ServerHello(c, Hello{Build: "abc"}) }},
		{name: "old agent", wantVers: true, agent: func(c *Conn) {
			var h Hello
			c.ReadJSON(FrameHello, &h)
			c.WriteJSON(FrameHello, Hello{Magic: Magic, Protocol: Version - 1 + 100, Build: "old"})
		}},
		{name: "foreign program", wantErr: ErrForeign, agent: func(c *Conn) {
			go io.Copy(io.Discard, c.r) // a program that ignores its stdin
			c.w.WriteString("usage: holiday [command]\n")
			c.w.Flush()
		}},
		{name: "foreign json", wantErr: ErrForeign, agent: func(c *Conn) {
			var h Hello
			c.ReadJSON(FrameHello, &h)
			c.WriteJSON(FrameHello, map[string]any{"magic": "other"})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctl, ag := pipeConns()
			go tc.agent(ag)
			peer, err := ClientHello(ctl, Hello{Build: "abc"})
			var ve *VersionError
			switch {
			case tc.wantVers:
				if !errors.As(err, &ve) || ve.RemoteBuild != "old" {
					t.Fatalf("want VersionError, got %v", err)
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("want %v, got %v", tc.wantErr, err)
				}
			default:
				if err != nil || peer.Build != "abc" {
					t.Fatalf("hello: %+v %v", peer, err)
				}
			}
			t.Logf("%v", err)
		})
	}
}

func TestServerAnswersMismatch(t *testing.T) {
	ctl, ag := pipeConns()
	done := make(chan error, 1)
	go func() { _, err := ServerHello(ag, Hello{Build: "new"}); done <- err }()
	ctl.WriteJSON(FrameHello, Hello{Magic: Magic, Protocol: 99})
	var h Hello
	if err := ctl.ReadJSON(FrameHello, &h); err != nil || h.Protocol != Version {
		t.Fatalf("agent did not answer a mismatched hello: %+v %v", h, err)
	}
	var ve *VersionError
	if err := <-done; !errors.As(err, &ve) || ve.Remote != 99 {
		t.Fatalf("agent side: %v", err)
	}
}

func TestFramesAndData(t *testing.T) {
	var buf bytes.Buffer
	c := NewConn(&buf, &buf)
	big := bytes.Repeat([]byte("x"), 2*DataChunk+7)
	w := c.DataWriter()
	if n, err := w.Write(big); err != nil || n != len(big) {
		t.Fatal(n, err)
	}
	w.Close()
	c.WriteJSON(FrameResult, Result{Value: []byte(`1`)})
	var got []byte
	frames := 0
	for {
		typ, p, err := c.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if typ == FrameEOF {
			break
		}
		frames++
		got = append(got, p...)
	}
	if !bytes.Equal(got, big) || frames != 3 {
		t.Fatalf("data: %d bytes in %d frames", len(got), frames)
	}
	var r Result
	if err := c.ReadJSON(FrameResult, &r); err != nil || string(r.Value) != "1" {
		t.Fatal(r, err)
	}
	if _, _, err := c.ReadFrame(); err != io.EOF {
		t.Fatalf("clean end: %v", err)
	}
	// A frame cut short is an unexpected EOF, not a clean end.
	c2 := NewConn(strings.NewReader("D\x00\x00\x00\x10abc"), io.Discard)
	c2.first = false
	if _, _, err := c2.ReadFrame(); err != io.ErrUnexpectedEOF {
		t.Fatalf("short frame: %v", err)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("H\x00\x00\x00\x02{}"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c := NewConn(bytes.NewReader(b), io.Discard)
		for i := 0; i < 4; i++ {
			if _, _, err := c.ReadFrame(); err != nil {
				return
			}
		}
	})
}

// TestReadFrameInto: a payload that fits goes into the caller's buffer,
// a larger one into a new slice, and neither reads past its frame.
func TestReadFrameInto(t *testing.T) {
	var wire bytes.Buffer
	c := NewConn(&wire, &wire)
	for _, p := range []string{"small", strings.Repeat("x", 100), ""} {
		if err := c.WriteFrame(FrameData, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 0, 64)
	for i, tc := range []struct {
		want  string
		inBuf bool
	}{{"small", true}, {strings.Repeat("x", 100), false}, {"", true}} {
		ft, p, err := c.ReadFrameInto(buf)
		if err != nil || ft != FrameData || string(p) != tc.want {
			t.Fatalf("frame %d: %s %q %v; want %q", i, ft, p, err, tc.want)
		}
		if inBuf := cap(p) > 0 && &p[:1][0] == &buf[:1][0]; inBuf != tc.inBuf {
			t.Errorf("frame %d: read into the caller's buffer %v, want %v", i, inBuf, tc.inBuf)
		}
	}
	if _, _, err := c.ReadFrameInto(buf); err != io.EOF {
		t.Errorf("after the last frame: %v, want EOF", err)
	}
}

// TestWriteFrameFrom: a span of a file goes out as one frame, spliced
// into a pipe or copied into anything else; a file that ends early pads
// the frame to its length (the next frame still reads) and says why.
func TestWriteFrameFrom(t *testing.T) {
	data := make([]byte, 300<<10)
	for i := range data {
		data[i] = byte(i * 7)
	}
	path := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, out := range []string{"pipe", "buffer"} {
		t.Run(out, func(t *testing.T) {
			var w io.Writer
			var r io.Reader
			var buf bytes.Buffer
			if out == "pipe" {
				pr, pw, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer pr.Close()
				w, r = pw, pr
				go func() { <-t.Context().Done(); pw.Close() }()
			} else {
				w, r = &buf, &buf
			}
			c := NewConn(r, w)
			got := make(chan error, 1)
			frames := [][]byte{data[4096 : 4096+200<<10], append(append([]byte(nil), data[250<<10:]...), make([]byte, 50<<10)...), []byte("next")}
			write := func() {
				if err := c.WriteFrameFrom(FrameData, f, 4096, 200<<10); err != nil {
					got <- fmt.Errorf("whole span: %w", err)
					return
				}
				err := c.WriteFrameFrom(FrameData, f, 250<<10, 100<<10)
				if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "disk at 307200") {
					got <- fmt.Errorf("span past the end: %v, want the end named", err)
					return
				}
				got <- c.WriteFrame(FrameData, []byte("next"))
			}
			if out == "pipe" {
				go write()
			} else {
				write()
			}
			for i, want := range frames {
				ft, p, err := c.ReadFrame()
				if err != nil || ft != FrameData || !bytes.Equal(p, want) {
					t.Fatalf("frame %d: %s, %d bytes, %v; want %d bytes", i, ft, len(p), err, len(want))
				}
			}
			if err := <-got; err != nil {
				t.Fatal(err)
			}
		})
	}
}
