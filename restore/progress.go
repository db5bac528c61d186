package restore

import (
	"io"
	"sync/atomic"
	"time"
)

// Progress is how far a rollback's writing onto the host is: the files
// or a disk's blocks written and their bytes, of the bytes to write in
// all (known before the first is sent: the differing files' sizes, the
// differing blocks', the dump's). RollbackOptions.Progress hears it while
// the rollback writes; RollbackResult.Written holds the final figures.
type Progress struct {
	Kind    string        `json:"kind"`             // files, disk, postgres, mysql
	Files   int64         `json:"files,omitempty"`  // files whose content was written (files)
	Blocks  int64         `json:"blocks,omitempty"` // blocks written (disk)
	Bytes   int64         `json:"bytes"`            // bytes sent to the host to write (or load)
	Total   int64         `json:"total"`            // bytes to send in all
	Elapsed time.Duration `json:"elapsed_ns"`
}

// meter counts a rollback's writing and reports it about once a second
// until end. A nil *meter counts nothing (a Revert's writing).
type meter struct {
	kind                 string
	total                int64
	files, blocks, bytes atomic.Int64
	start                time.Time
	stop, stopped        chan struct{}
}

// startMeter starts counting a writing of total bytes; report, if set,
// hears the figures about once a second.
func startMeter(kind string, total int64, report func(Progress)) *meter {
	m := &meter{kind: kind, total: total, start: time.Now(), stop: make(chan struct{}), stopped: make(chan struct{})}
	if report == nil {
		close(m.stopped)
		return m
	}
	go func() {
		defer close(m.stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				report(m.now())
			}
		}
	}()
	return m
}

// add counts n bytes sent; fileDone a file whose content is all sent;
// block a disk block of n bytes sent.
func (m *meter) add(n int64) {
	if m != nil {
		m.bytes.Add(n)
	}
}

func (m *meter) fileDone() {
	if m != nil {
		m.files.Add(1)
	}
}

func (m *meter) block(n int64) {
	if m != nil {
		m.blocks.Add(1)
		m.bytes.Add(n)
	}
}

func (m *meter) now() Progress {
	return Progress{Kind: m.kind, Files: m.files.Load(), Blocks: m.blocks.Load(), Bytes: m.bytes.Load(), Total: m.total, Elapsed: time.Since(m.start)}
}

// end stops the reports (none comes after it returns) and gives the
// final figures.
func (m *meter) end() *Progress {
	close(m.stop)
	<-m.stopped
	p := m.now()
	return &p
}

// meterWriter counts the bytes written through it (a dump on its way to
// the host's loader).
type meterWriter struct {
	w io.Writer
	m *meter
}

func (w meterWriter) Write(p []byte) (int, error) {
	n, err := w.w.Write(p)
	w.m.add(int64(n))
	return n, err
}
