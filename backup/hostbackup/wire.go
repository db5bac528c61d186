// Package hostbackup is the host-backup data path (DESIGN §2, §7): the
// agent on a host walks, reads, chunks and hashes a source (a file tree, a
// block device or a dump stream); the control node decides which chunks
// it needs, verifies each one's hash on arrival, and alone compresses,
// encrypts, packs and writes them into the repository, which reads each
// pack back as it is stored (a snapshot is written once its packs read
// back sound). The host never
// receives a password, key or storage credential, and never learns
// whether another host's data is in the repository.
//
// host.go is the agent's side (the "host-backup" operation, registered by
// actions with `holiday agent`); control.go is the control node's side;
// known.go decides what the host may be told the repository has; tree.go
// turns the host's walk back into restic trees; freeze.go holds fsfreeze
// and its dead-man.
//
// The exchange on one agent session, after the Request:
//
//	agent → control  Up{Nodes}        every entry of the walk, in order
//	control → agent  Down{Verdict}    which of those files to read (the others are unchanged);
//	                                  the first one carries the chunker polynomial when the
//	                                  Request did not (a walk started before the repository was open);
//	                                  a dump gets no verdict, and a Down{Polynomial} first thing
//	                                  when its Request had none
//	agent → control  Up{Contents}     the chunk IDs of files read, batched
//	control → agent  Down{Want}       which of those chunks to send
//	agent → control  Data frames      exactly the chunks wanted, in order
//	agent → control  Up{Done}, Result
//
// Both sides pipeline: the agent walks ahead of the verdicts and reads
// ahead of the wants, within a bounded window of chunk data held in
// memory, so the link stays busy without a round trip per blob.
//
// A disk or a dump of a host the repository knows nothing of (no earlier
// snapshot of its own, nothing sent yet in the run) would be asked for
// whole: the control node says so with its first Want (Down.Unasked),
// and from then on the agent neither hashes the chunks nor waits for
// wants — each Up{Contents, Unasked} lists the chunks' lengths (zero
// blocks still marked, never sent) and is followed at once by the data
// of its other chunks, in order. The control node computes each ID from
// the data as it arrives, which is the hash it checks in the other mode.
// A host so answered learns nothing of the repository (it is told the
// same for any data), and chunks repeated within the source cross twice
// (dedup happens when they are stored); a file tree, where repeats are
// common, is always asked for.
//
// It may import backup/... and internal/... only.
package hostbackup

import (
	"github.com/holiday-ops/holiday/backup/repo"
)

// OpName is the agent operation.
const OpName = "host-backup"

// Source kinds of a Request.
const (
	SourceFiles  = "files"
	SourceDisk   = "disk"
	SourceStream = "stream"
)

// Request is the agent operation's argument: one source. It carries the
// chunker polynomial (a repository parameter, not a secret) and nothing
// else of the repository's.
type Request struct {
	Source string `json:"source"`
	// Files: absolute paths and exclude globs (a pattern without a
	// slash matches a name anywhere, one with a slash the whole path).
	Paths   []string `json:"paths,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
	// Disk: the block device, the fixed block size, and whether its
	// mounted filesystem is frozen during the read.
	Device    string `json:"device,omitempty"`
	BlockSize int    `json:"block_size,omitempty"`
	Freeze    bool   `json:"freeze,omitempty"`
	// Stream: a database dump the host starts itself.
	Stream *StreamSpec `json:"stream,omitempty"`
	// Polynomial is the repository's chunker polynomial. A files source
	// may leave it 0 and start walking before the control node has
	// opened the repository: the first Down{Verdict} then carries it,
	// and no file is read before. A stream may leave it 0 too: the dump
	// starts at once, the host holds its output (up to holdMax, then the
	// dump waits on its pipe) and chunks it once the control node's
	// first message, Down{Polynomial}, has come.
	Polynomial uint64 `json:"polynomial"`
}

// StreamSpec names a dump on the host; the fields are backup/dbdump's
// Spec.
type StreamSpec struct {
	Engine   string `json:"engine"`
	Database string `json:"database,omitempty"`
	Globals  bool   `json:"globals,omitempty"`
	User     string `json:"user,omitempty"`
	// Compress is pg_dump's --compress level (dbdump.Spec.Compress).
	Compress int `json:"compress,omitempty"`
	// Name is the file name the dump is stored under.
	Name string `json:"name"`
	// Verify: the host verifies the dump as it is chunked (every byte
	// the chunker reads also goes, in order, to pg_restore or its MySQL
	// equivalent), and a dump that does not restore fails the operation
	// like one cut short; Scratch restores it into a scratch database
	// that is then dropped (the plan's restore_check).
	Verify  bool `json:"verify,omitempty"`
	Scratch bool `json:"scratch,omitempty"`
}

// Entry is one node of the walk: its absolute path and its metadata as
// archiver.NodeFromFileInfo reads it, without content, in the JSON form
// of a tree's node (a batch of them crosses in one pass). Seq numbers
// the entries of a session from 0.
type Entry struct {
	Seq  int64         `json:"seq"`
	Path string        `json:"path"`
	Node repo.NodeJSON `json:"node"`
}

// Chunk is one blob of a file, in order. A zero block (disks) carries no
// ID: the control node knows the ID of that many zeros and never asks
// for it. No chunk of an Up{Unasked} carries one either.
type Chunk struct {
	ID   repo.ID `json:"id,omitzero"`
	Len  uint32  `json:"len"`
	Zero bool    `json:"zero,omitempty"`
}

// Content is (part of) a file's chunks. A file read in several parts
// sends More until its last part, which carries its size as read. Err
// says the file could not be read after all (Vanished: it is gone).
type Content struct {
	Seq      int64   `json:"seq"`
	Chunks   []Chunk `json:"chunks,omitempty"`
	More     bool    `json:"more,omitempty"`
	Size     uint64  `json:"size"`
	Err      string  `json:"err,omitempty"`
	Vanished bool    `json:"vanished,omitempty"`
}

// Up is a Message frame from the agent.
type Up struct {
	Nodes    []Entry   `json:"nodes,omitempty"`
	Contents []Content `json:"contents,omitempty"`
	// Unasked: the chunks of Contents carry no IDs and the data of each
	// one not Zero follows this frame at once, in order (after a
	// Down.Unasked).
	Unasked bool `json:"unasked,omitempty"`
	Done    bool `json:"done,omitempty"`
}

// Verdict answers one Up{Nodes}: of its regular files (up to and
// including Upto), read those in Read; take the others from the parent.
type Verdict struct {
	Upto int64   `json:"upto"`
	Read []int64 `json:"read,omitempty"`
}

// Want answers one Up{Contents}: the indices (into that message's chunks,
// counted across its contents) whose data the agent must send, in order.
type Want struct {
	Need []int32 `json:"need,omitempty"`
}

// Down is a Message frame from the control node.
type Down struct {
	Verdict *Verdict `json:"verdict,omitempty"`
	Want    *Want    `json:"want,omitempty"`
	// Unasked, with a Want: the control node needs every chunk of this
	// source; the agent sends the next contents Unasked.
	Unasked bool `json:"unasked,omitempty"`
	// Polynomial comes with the first Verdict when the Request had none
	// (a stream's: alone, as the first message).
	Polynomial uint64 `json:"polynomial,omitempty"`
}

// Result is the operation's result value.
type Result struct {
	Files     int64  `json:"files"`
	Dirs      int64  `json:"dirs"`
	BytesRead int64  `json:"bytes_read"`
	Frozen    bool   `json:"frozen,omitempty"`     // the filesystem was frozen for the whole read
	Mount     string `json:"mount,omitempty"`      // the frozen (or not frozen) mount point
	NotFrozen string `json:"not_frozen,omitempty"` // why a disk was read without freeze
}
