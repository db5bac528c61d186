// Package repo is holiday's implementation of restic's repository format,
// version 2: config, password keys, encrypted and compressed unpacked
// files (snapshots, index, locks), packs of blobs with the header at the
// end (read back as they are stored, when asked: VerifyWrites), the
// in-memory index, trees and snapshots, locks, and check.
// Stock restic opens what it writes and it opens what restic writes.
//
// Blobs flow through it in pieces of at most a chunk (8 MiB); a file
// or a disk is never held whole in memory.
//
// It must never import anything of holiday's above backup; it may import
// backup/backend, backup/crypto and internal/....
package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
)

// ID is a SHA-256: of a blob's plaintext, or of a stored file's bytes.
type ID [32]byte

// Hash returns the ID of data.
func Hash(data []byte) ID { return sha256.Sum256(data) }

// HashData is Hash for a blob's plaintext, faster on runs of zeros:
// disk images hold many all-zero blocks, and telling one apart (at
// memory speed; other data stops at its first non-zero byte) is far
// cheaper than hashing it. The IDs of all-zero blobs are cached by
// length (a bounded number of lengths; small blobs are just hashed).
func HashData(data []byte) ID {
	if len(data) < len(zeroBlock) || !isZero(data) {
		return sha256.Sum256(data)
	}
	if id, ok := zeroIDs.Load(len(data)); ok {
		return id.(ID)
	}
	id := ID(sha256.Sum256(data))
	// Load first: once full, the count stays put (Add alone would wrap
	// an int32 after 2^31 misses and let the cache grow again)
	if zeroIDsN.Load() < maxZeroIDs && zeroIDsN.Add(1) <= maxZeroIDs {
		zeroIDs.Store(len(data), id)
	}
	return id
}

const maxZeroIDs = 1024

var (
	zeroIDs   sync.Map // length → ID of that many zeros
	zeroIDsN  atomic.Int32
	zeroBlock [64 << 10]byte
)

func isZero(b []byte) bool {
	for len(b) > 0 {
		n := min(len(b), len(zeroBlock))
		if !bytes.Equal(b[:n], zeroBlock[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}

// ParseID parses 64 hex digits.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("invalid ID %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("invalid ID %q: %w", s, err)
	}
	return id, nil
}

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Str is the short form shown to people (the first 8 hex digits).
func (id ID) Str() string { return hex.EncodeToString(id[:4]) }

// IsNull reports whether id is all zeros.
func (id ID) IsNull() bool { return id == ID{} }

// MarshalJSON writes the ID as a hex string.
func (id ID) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 66)
	b = append(b, '"')
	b = hex.AppendEncode(b, id[:])
	return append(b, '"'), nil
}

// UnmarshalJSON reads a hex string.
func (id *ID) UnmarshalJSON(b []byte) error {
	// the common case, 64 hex digits in quotes, without a second
	// decoder (a tree holds one ID per chunk of every file)
	if len(b) == 66 && b[0] == '"' && b[65] == '"' {
		var p ID
		if _, err := hex.Decode(p[:], b[1:65]); err == nil {
			*id = p
			return nil
		}
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	p, err := ParseID(s)
	if err != nil {
		return err
	}
	*id = p
	return nil
}

// BlobType says whether a blob holds file data or a tree.
type BlobType uint8

// Blob types. The zero value is invalid.
const (
	InvalidBlob BlobType = iota
	DataBlob
	TreeBlob
)

func (t BlobType) String() string {
	switch t {
	case DataBlob:
		return "data"
	case TreeBlob:
		return "tree"
	}
	return "invalid"
}

// MarshalJSON writes "data" or "tree".
func (t BlobType) MarshalJSON() ([]byte, error) {
	switch t {
	case DataBlob, TreeBlob:
		return []byte(`"` + t.String() + `"`), nil
	}
	return nil, fmt.Errorf("invalid blob type %d", t)
}

// UnmarshalJSON reads "data" or "tree".
func (t *BlobType) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"data"`:
		*t = DataBlob
	case `"tree"`:
		*t = TreeBlob
	default:
		return fmt.Errorf("invalid blob type %s", b)
	}
	return nil
}

// BlobHandle names a blob.
type BlobHandle struct {
	ID   ID
	Type BlobType
}
