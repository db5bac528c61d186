// Package backend defines where a repository's files live: a five-method
// interface (save atomically, load a range, stat, list, remove) whose
// contract is written here and checked for every implementation by
// backend/backendtest. The repository above it knows nothing of
// directories or object stores; a backend knows nothing of encryption,
// packs or indexes.
//
// It and its subpackages must never import the repository (backup/repo) or
// anything above backup; they may import only the standard library,
// golang.org/x/... and holiday's internal/... (backend/s3 also the AWS
// SDK).
package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// FileType is the kind of a repository file; it decides the folder it lives
// in (restic's layout: config, keys/, locks/, snapshots/, index/, data/xx/).
type FileType uint8

// The file types of a restic repository.
const (
	ConfigFile FileType = iota + 1
	KeyFile
	LockFile
	SnapshotFile
	IndexFile
	PackFile
)

// AllTypes lists every file type, in the order a listing of a repository
// usually wants them.
var AllTypes = []FileType{ConfigFile, KeyFile, LockFile, SnapshotFile, IndexFile, PackFile}

func (t FileType) String() string {
	switch t {
	case ConfigFile:
		return "config"
	case KeyFile:
		return "key"
	case LockFile:
		return "lock"
	case SnapshotFile:
		return "snapshot"
	case IndexFile:
		return "index"
	case PackFile:
		return "data"
	}
	return fmt.Sprintf("FileType(%d)", uint8(t))
}

// Dir is the folder of t inside a repository, restic's names.
func (t FileType) Dir() string {
	switch t {
	case ConfigFile:
		return ""
	case KeyFile:
		return "keys"
	case LockFile:
		return "locks"
	case SnapshotFile:
		return "snapshots"
	case IndexFile:
		return "index"
	case PackFile:
		return "data"
	}
	return ""
}

// Handle names one file of a repository. For ConfigFile the Name is
// ignored (there is one config); for the others it is the file's storage
// ID in lower-case hex.
type Handle struct {
	Type FileType
	Name string
}

func (h Handle) String() string {
	if h.Type == ConfigFile {
		return "config"
	}
	return h.Type.Dir() + "/" + h.Name
}

// Valid reports whether h can name a file: a known type and, except for
// the config, a name that is lower-case hex of at least two characters
// (so that data/xx/ can be derived and no name can climb out of its
// folder).
func (h Handle) Valid() error {
	if h.Type < ConfigFile || h.Type > PackFile {
		return fmt.Errorf("invalid file type %d", h.Type)
	}
	if h.Type == ConfigFile {
		return nil
	}
	if len(h.Name) < 2 {
		return fmt.Errorf("invalid name %q for %v file", h.Name, h.Type)
	}
	for _, c := range h.Name {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("invalid name %q for %v file: not lower-case hex", h.Name, h.Type)
		}
	}
	return nil
}

// FileInfo is what Stat and List report about a file.
type FileInfo struct {
	Name string // as in Handle.Name ("config" for the config)
	Size int64
}

// ErrNotExist is returned (wrapped) by Load, Stat and Remove when the file
// does not exist. Match it with errors.Is; it is fs.ErrNotExist, so
// os.IsNotExist-style checks agree.
var ErrNotExist = fs.ErrNotExist

// ErrExist is returned (wrapped) by Save when a file of that name already
// exists: repository files are written once and never replaced.
var ErrExist = fs.ErrExist

// Backend stores the files of one repository.
//
// The contract, which backendtest.Run checks:
//
//   - Save stores the bytes read from rd to EOF under h, atomically: a
//     concurrent or later Load, Stat or List sees either no file or the
//     whole file, never a part, also after a crash of the process or the
//     machine (the data is durable when Save returns nil). A name is
//     written once: if h already exists Save fails with an error matching
//     ErrExist and the existing file is untouched. Save may seek rd back
//     to its start and read it again (to retry); it does not close rd. On
//     error, nothing is left under h.
//   - Load returns a reader of length bytes starting at offset; length 0
//     means to the end of the file. Reading past the end of the file is an
//     error: a range that the file does not hold in full yields
//     io.ErrUnexpectedEOF from the reader (or from Load), never a silent
//     short read. The caller closes the reader. A missing file is
//     ErrNotExist.
//   - Stat reports a file's size, or ErrNotExist.
//   - List calls fn once for each file of type t, in no particular order,
//     and stops at the first error fn returns, returning it. Files that
//     are not named like storage IDs (temporary files, strays) are not
//     listed. Files saved or removed during a List may or may not appear.
//   - Remove deletes a file; a missing file is ErrNotExist.
//
// All methods honour ctx and are safe for concurrent use.
type Backend interface {
	Save(ctx context.Context, h Handle, rd io.ReadSeeker) error
	Load(ctx context.Context, h Handle, length int, offset int64) (io.ReadCloser, error)
	Stat(ctx context.Context, h Handle) (FileInfo, error)
	List(ctx context.Context, t FileType, fn func(FileInfo) error) error
	Remove(ctx context.Context, h Handle) error
}

// TempFiler is implemented by backends that can take over a finished
// temporary file without copying it. Files from TempFile, written and
// passed to Save, may be adopted in place (the local directory links
// them); the caller still closes and removes its temporary name after
// Save. Writers use it so that a pack never sits whole in memory.
type TempFiler interface {
	TempFile() (*os.File, error)
}

// ReadAll loads a whole file into memory: for small files only (config,
// keys, snapshots, index, locks), never for packs.
func ReadAll(ctx context.Context, be Backend, h Handle) ([]byte, error) {
	rd, err := be.Load(ctx, h, 0, 0)
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(rd)
}

// IsNotExist reports whether err says a file does not exist.
func IsNotExist(err error) bool { return errors.Is(err, ErrNotExist) }

// LimitedReadCloser turns a reader that may end early into one that reports
// io.ErrUnexpectedEOF when fewer than n bytes arrive, so that a truncated
// file can never pass for a short one.
func LimitedReadCloser(rc io.ReadCloser, n int64) io.ReadCloser {
	return &exactReader{rc: rc, left: n}
}

type exactReader struct {
	rc   io.ReadCloser
	left int64
}

func (r *exactReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.rc.Read(p)
	r.left -= int64(n)
	if err == io.EOF {
		if r.left > 0 {
			return n, io.ErrUnexpectedEOF
		}
		err = nil
	}
	if r.left == 0 && err == nil && n == 0 {
		return 0, io.EOF
	}
	return n, err
}

func (r *exactReader) Close() error { return r.rc.Close() }
