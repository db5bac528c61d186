package hostbackup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holiday-ops/holiday/backup/restorer"
	"github.com/holiday-ops/holiday/internal/agentproto"
)

// fakeDump is a dump of fixed bytes: it counts what was read of it and
// ends with err (nil: a whole dump).
type fakeDump struct {
	r    *bytes.Reader
	read atomic.Int64
	eof  chan struct{}
	err  error
}

func (d *fakeDump) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.read.Add(int64(n))
	if err == io.EOF {
		select {
		case <-d.eof:
		default:
			close(d.eof)
		}
	}
	return n, err
}

func (d *fakeDump) Wait() error { return d.err }

// withDumper makes the host side's dumps d for the test.
func withDumper(t *testing.T, d *fakeDump) {
	t.Helper()
	dumperMu.Lock()
	old := dumper
	dumperMu.Unlock()
	RegisterDumper(func(context.Context, StreamSpec) (Dump, error) { return d, nil })
	t.Cleanup(func() { RegisterDumper(old) })
}

func newFakeDump(data []byte, err error) *fakeDump {
	return &fakeDump{r: bytes.NewReader(data), eof: make(chan struct{}), err: err}
}

// TestStreamPolynomialLater: a dump's Request without the chunker
// polynomial (sent before the repository was open) starts the dump at
// once; the host holds its output, at most holdMax of it (the dump then
// waits), until the control node's first message brings the polynomial.
// The snapshot holds the dump byte for byte in the same chunks as with
// the polynomial in the Request, and dates from when the Request went
// out. A dump that fails while held fails the backup; a polynomial that
// is not one fails the host.
func TestStreamPolynomialLater(t *testing.T) {
	rnd := make([]byte, holdMax+3<<20)
	rand.NewChaCha8([32]byte{3}).Read(rnd)
	spec := &StreamSpec{Engine: "postgres", Database: "shop", Name: "shop.pgdump"}
	backup := func(t *testing.T, s *Store, d *fakeDump, later bool) (content []byte, chunks int, err error) {
		t.Helper()
		withDumper(t, d)
		req := Request{Source: SourceStream, Stream: spec}
		if !later {
			req.Polynomial = uint64(s.R.Config().ChunkerPolynomial)
		}
		sent := time.Now().Add(-time.Hour) // a Request long gone
		l := startHost(t, req, nil)
		if later {
			// the host reads ahead, up to holdMax, before the polynomial
			want := min(int64(d.r.Size()), holdMax)
			for deadline := time.Now().Add(10 * time.Second); d.read.Load() < want && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			if got := d.read.Load(); got != want {
				t.Errorf("the host read %d bytes of the dump before the polynomial; want %d", got, want)
			}
		}
		sn, _, _, err := Backup(context.Background(), s, l, req, Options{Hostname: "h1", Paths: []string{"/postgres/shop"}, Started: sent})
		if err != nil {
			return nil, 0, err
		}
		if !sn.Time.Equal(sent) {
			t.Errorf("snapshot time %v; want the Request's, %v", sn.Time, sent)
		}
		n, err := restorer.FindNode(context.Background(), s.R, *sn.Tree, "/shop.pgdump")
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := restorer.Dump(context.Background(), s.R, n, &b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes(), len(n.Content), nil
	}
	for _, size := range []int{5 << 20, len(rnd)} {
		s, _ := testRepo(t)
		data := rnd[:size]
		got, chunks, err := backup(t, s, newFakeDump(data, nil), true)
		if err != nil {
			t.Fatalf("%d bytes, polynomial later: %v", size, err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%d bytes, polynomial later: the snapshot holds %d other bytes", size, len(got))
		}
		_, with, err := backup(t, NewStore(context.Background(), s.R), newFakeDump(data, nil), false)
		// (5 MiB of random bytes are one chunk ~1 % of the time, by the
		// repository's random polynomial; the larger size, over the
		// chunker's 8 MiB maximum, is always several)
		if err != nil || with != chunks || size > 8<<20 && chunks < 2 {
			t.Errorf("%d bytes: %d chunks with the polynomial later, %d (%v) with it in the Request; want the same, several", size, chunks, with, err)
		}
	}
	t.Run("dump fails while held", func(t *testing.T) {
		s, r := testRepo(t)
		_, _, err := backup(t, s, newFakeDump(rnd[:1<<20], errors.New("pg_dump of shop was killed by signal KILL")), true)
		if err == nil || !strings.Contains(err.Error(), "pg_dump of shop was killed by signal KILL") {
			t.Errorf("a dump killed while held: %v", err)
		}
		if sns, _ := r.Snapshots(context.Background(), nil); len(sns) != 0 {
			t.Errorf("%d snapshots of a failed dump", len(sns))
		}
	})
	t.Run("not a polynomial", func(t *testing.T) {
		withDumper(t, newFakeDump(rnd[:1<<20], nil))
		l := startHost(t, Request{Source: SourceStream, Stream: spec}, nil)
		l.WriteJSON(agentproto.FrameMessage, Down{Polynomial: 6})
		go func() { // whatever the host sends, up to its Result
			for {
				if _, _, err := l.ReadFrame(); err != nil {
					return
				}
			}
		}()
		if err := <-l.done; err == nil || !strings.Contains(err.Error(), "polynomial 0x6 is not valid") {
			t.Errorf("host given a bad polynomial: %v", err)
		}
	})
}
