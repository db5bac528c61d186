// Package mem is an in-memory repository backend for tests and for
// staging: the same contract as a directory, nothing durable.
//
// It must never import the repository (backup/repo) or anything above
// backup.
package mem

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/holiday-ops/holiday/backup/backend"
)

// Mem holds a repository's files in a map.
type Mem struct {
	mu    sync.RWMutex
	files map[backend.Handle][]byte
}

var _ backend.Backend = (*Mem)(nil)

// New returns an empty in-memory backend.
func New() *Mem { return &Mem{files: map[backend.Handle][]byte{}} }

func key(h backend.Handle) backend.Handle {
	if h.Type == backend.ConfigFile {
		h.Name = ""
	}
	return h
}

// Save implements backend.Backend.
func (m *Mem) Save(ctx context.Context, h backend.Handle, rd io.ReadSeeker) error {
	if err := h.Valid(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := rd.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	buf, err := io.ReadAll(rd)
	if err != nil {
		return fmt.Errorf("save %v: %w", h, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[key(h)]; ok {
		return fmt.Errorf("save %v: %w", h, backend.ErrExist)
	}
	m.files[key(h)] = buf
	return nil
}

// Load implements backend.Backend.
func (m *Mem) Load(ctx context.Context, h backend.Handle, length int, offset int64) (io.ReadCloser, error) {
	if err := h.Valid(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	buf, ok := m.files[key(h)]
	m.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("load %v: %w", h, backend.ErrNotExist)
	}
	if length < 0 || offset < 0 || offset > int64(len(buf)) || (length > 0 && offset+int64(length) > int64(len(buf))) {
		return nil, fmt.Errorf("load %v: range %d+%d beyond the file's %d bytes: %w", h, offset, length, len(buf), io.ErrUnexpectedEOF)
	}
	buf = buf[offset:]
	if length > 0 {
		buf = buf[:length]
	}
	return io.NopCloser(bytes.NewReader(buf)), nil
}

// Stat implements backend.Backend.
func (m *Mem) Stat(ctx context.Context, h backend.Handle) (backend.FileInfo, error) {
	if err := h.Valid(); err != nil {
		return backend.FileInfo{}, err
	}
	m.mu.RLock()
	buf, ok := m.files[key(h)]
	m.mu.RUnlock()
	if !ok {
		return backend.FileInfo{}, fmt.Errorf("stat %v: %w", h, backend.ErrNotExist)
	}
	name := h.Name
	if h.Type == backend.ConfigFile {
		name = "config"
	}
	return backend.FileInfo{Name: name, Size: int64(len(buf))}, nil
}

// List implements backend.Backend.
func (m *Mem) List(ctx context.Context, t backend.FileType, fn func(backend.FileInfo) error) error {
	var infos []backend.FileInfo
	m.mu.RLock()
	for h, buf := range m.files {
		if h.Type == t {
			name := h.Name
			if t == backend.ConfigFile {
				name = "config"
			}
			infos = append(infos, backend.FileInfo{Name: name, Size: int64(len(buf))})
		}
	}
	m.mu.RUnlock()
	for _, fi := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// Remove implements backend.Backend.
func (m *Mem) Remove(ctx context.Context, h backend.Handle) error {
	if err := h.Valid(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[key(h)]; !ok {
		return fmt.Errorf("remove %v: %w", h, backend.ErrNotExist)
	}
	delete(m.files, key(h))
	return nil
}
