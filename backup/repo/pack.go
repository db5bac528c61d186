package repo

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/crypto"
)

// A pack is EncryptedBlob1 || … || EncryptedBlobN || EncryptedHeader ||
// HeaderLength (uint32 LE, the length of the encrypted header). Each
// header entry is a type byte (0 data, 1 tree, 2 compressed data, 3
// compressed tree), the encrypted length (uint32 LE), for compressed
// blobs the plaintext length (uint32 LE), and the plaintext's SHA-256.
const (
	entrySize           = 1 + 4 + 32
	compressedEntrySize = 1 + 4 + 4 + 32
	// PackSize is the size at which a pack is closed and stored.
	PackSize = 16 << 20
	// maxHeaderSize bounds a header we are willing to read.
	maxHeaderSize = 16 << 20
)

// packer streams encrypted blobs of one type into a temporary file (in
// the backend's temp area when it offers one), hashing as it goes: a
// pack never sits whole in memory.
type packer struct {
	f       *os.File
	w       *bufio.Writer
	n       int
	h       hash.Hash
	entries []PackedBlob
	// tags are the entries' MACs, 16 bytes each (the read-back compares
	// the stored ones with them)
	tags []byte
	err  error
}

func newPacker(be backend.Backend) (*packer, error) {
	var f *os.File
	var err error
	if tf, ok := be.(backend.TempFiler); ok {
		f, err = tf.TempFile()
	} else {
		f, err = os.CreateTemp("", "holiday-pack-")
	}
	if err != nil {
		return nil, fmt.Errorf("temporary pack file: %w", err)
	}
	return &packer{f: f, w: bufio.NewWriterSize(f, 1<<20), h: sha256.New()}, nil
}

func (p *packer) write(b []byte) {
	if p.err != nil {
		return
	}
	_, p.err = p.w.Write(b)
	p.h.Write(b)
	p.n += len(b)
}

func (p *packer) add(bh BlobHandle, sealed []byte, ulen int) {
	off := p.n
	p.write(sealed)
	p.tags = append(p.tags, sealed[len(sealed)-crypto.MACSize:]...)
	p.entries = append(p.entries, PackedBlob{BlobHandle: bh, Offset: uint32(off), Length: uint32(len(sealed)), UncompressedLength: uint32(ulen)})
}

func (p *packer) size() int { return p.n }

// discard removes the temporary file.
func (p *packer) discard() {
	p.f.Close()
	os.Remove(p.f.Name())
}

// finish appends the encrypted header and its length, flushes, and
// returns the pack's ID.
func (p *packer) finish(key *crypto.Key) (ID, error) {
	hdr := make([]byte, 0, len(p.entries)*compressedEntrySize)
	for _, e := range p.entries {
		t := byte(0)
		if e.Type == TreeBlob {
			t = 1
		}
		if e.UncompressedLength > 0 {
			t |= 2
		}
		hdr = append(hdr, t)
		hdr = binary.LittleEndian.AppendUint32(hdr, e.Length)
		if e.UncompressedLength > 0 {
			hdr = binary.LittleEndian.AppendUint32(hdr, e.UncompressedLength)
		}
		hdr = append(hdr, e.ID[:]...)
	}
	sealed := key.Seal(nil, hdr)
	sealed = binary.LittleEndian.AppendUint32(sealed, uint32(len(sealed)))
	p.write(sealed)
	if p.err == nil {
		p.err = p.w.Flush()
	}
	if p.err == nil {
		_, p.err = p.f.Seek(0, io.SeekStart)
	}
	if p.err != nil {
		return ID{}, fmt.Errorf("write pack: %w", p.err)
	}
	var id ID
	p.h.Sum(id[:0])
	for i := range p.entries {
		p.entries[i].Pack = id
	}
	return id, nil
}

// ParsePackHeader decodes a decrypted pack header.
func ParsePackHeader(hdr []byte, pack ID) ([]PackedBlob, error) {
	var out []PackedBlob
	off := uint32(0)
	for len(hdr) > 0 {
		var pb PackedBlob
		t := hdr[0]
		n := entrySize
		switch t {
		case 0, 1:
		case 2, 3:
			n = compressedEntrySize
		default:
			return nil, fmt.Errorf("pack %s: invalid blob type %d in header", pack.Str(), t)
		}
		if len(hdr) < n {
			return nil, fmt.Errorf("pack %s: header truncated", pack.Str())
		}
		pb.Type = DataBlob
		if t&1 == 1 {
			pb.Type = TreeBlob
		}
		pb.Length = binary.LittleEndian.Uint32(hdr[1:5])
		rest := hdr[5:n]
		if t >= 2 {
			pb.UncompressedLength = binary.LittleEndian.Uint32(rest[:4])
			rest = rest[4:]
		}
		copy(pb.ID[:], rest)
		pb.Pack = pack
		pb.Offset = off
		off += pb.Length
		out = append(out, pb)
		hdr = hdr[n:]
	}
	return out, nil
}

// ErrPackHeader marks a pack whose header cannot be read.
var ErrPackHeader = errors.New("pack header damaged")

// LoadPackHeader reads and decrypts the header at the end of a pack of
// the given size and returns its blobs.
func (r *Repository) LoadPackHeader(ctx context.Context, pack ID, size int64) ([]PackedBlob, error) {
	h := backend.Handle{Type: backend.PackFile, Name: pack.String()}
	if size < 4+crypto.Extension {
		return nil, fmt.Errorf("pack %s: %d bytes is too small: %w", pack.Str(), size, ErrPackHeader)
	}
	rd, err := r.be.Load(ctx, h, 4, size-4)
	if err != nil {
		return nil, err
	}
	var lb [4]byte
	_, err = io.ReadFull(rd, lb[:])
	rd.Close()
	if err != nil {
		return nil, err
	}
	hl := int64(binary.LittleEndian.Uint32(lb[:]))
	if hl < crypto.Extension || hl > maxHeaderSize || hl > size-4 {
		return nil, fmt.Errorf("pack %s: header length %d does not fit the pack's %d bytes: %w", pack.Str(), hl, size, ErrPackHeader)
	}
	rd, err = r.be.Load(ctx, h, int(hl), size-4-hl)
	if err != nil {
		return nil, err
	}
	sealed, err := io.ReadAll(rd)
	rd.Close()
	if err != nil {
		return nil, err
	}
	hdr, err := r.key.Open(nil, sealed)
	if err != nil {
		return nil, fmt.Errorf("pack %s: header: %w: %w", pack.Str(), err, ErrPackHeader)
	}
	blobs, err := ParsePackHeader(hdr, pack)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrPackHeader)
	}
	var end int64
	for _, b := range blobs {
		end += int64(b.Length)
	}
	if end != size-4-hl {
		return nil, fmt.Errorf("pack %s: header describes %d bytes of blobs, the pack holds %d: %w", pack.Str(), end, size-4-hl, ErrPackHeader)
	}
	return blobs, nil
}

// OpenPackHeader decrypts and parses a sealed pack header.
func (r *Repository) OpenPackHeader(pack ID, sealed []byte) ([]PackedBlob, error) {
	hdr, err := r.key.Open(nil, sealed)
	if err != nil {
		return nil, err
	}
	return ParsePackHeader(hdr, pack)
}
