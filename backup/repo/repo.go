package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/restic/chunker"

	"github.com/holiday-ops/holiday/backup/backend"
	"github.com/holiday-ops/holiday/backup/crypto"
)

// Config is the repository's config file (encrypted, never compressed).
type Config struct {
	Version           int         `json:"version"`
	ID                string      `json:"id"`
	ChunkerPolynomial chunker.Pol `json:"chunker_polynomial"`
	// ObjectLock is holiday's: retain new files (objectlock.go)
	ObjectLock *ObjectLock `json:"holiday_object_lock,omitempty"`
}

// KeyFile is one file under keys/: what unlocks the master key with a
// password. Its name is the SHA-256 of its bytes.
type KeyFile struct {
	Created  time.Time `json:"created"`
	Username string    `json:"username"`
	Hostname string    `json:"hostname"`
	KDF      string    `json:"kdf"`
	N        int       `json:"N"`
	R        int       `json:"r"`
	P        int       `json:"p"`
	Salt     []byte    `json:"salt"`
	Data     []byte    `json:"data"`
}

// ErrWrongPassword means no key file opens with the password given.
var ErrWrongPassword = errors.New("wrong password: no key in the repository opens with it")

// ErrNoRepository means the location holds no repository.
var ErrNoRepository = errors.New("no repository here (config file missing)")

// Repository is an open repository: the master key, the config, the index
// and the writers of new packs.
type Repository struct {
	be      backend.Backend
	key     *crypto.Key
	keyName string
	cfg     Config

	idx *Index

	encOnce sync.Once
	enc     *zstd.Encoder
	decOnce sync.Once
	dec     *zstd.Decoder

	// guard, when set (by Lock), is asked before an index or snapshot is
	// written: a lock that may have gone stale stops the write
	guard func() error
	// held is the lock taken by Lock or LockSharedAsync, if any: a
	// conflict its background confirmation finds stops the writing
	held atomic.Pointer[Held]

	wmu sync.Mutex
	w   *writer // write side, set up on first SaveBlob
	// unlisted are packs stored, whose index file a Flush that failed
	// after their upload did not write: the next Flush lists them
	unlisted []PackJSON

	rb atomic.Pointer[readBack] // VerifyWrites: the packs stored since

	lockHost string // SetLockHost; "" means the machine's hostname
}

// Backend is the storage under the repository.
func (r *Repository) Backend() backend.Backend { return r.be }

// Config returns the repository's config.
func (r *Repository) Config() Config { return r.cfg }

// KeyName is the ID of the key file that opened the repository.
func (r *Repository) KeyName() string { return r.keyName }

// Index is the repository's blob index (LoadIndex fills it).
func (r *Repository) Index() *Index { return r.idx }

func (r *Repository) encoder() *zstd.Encoder {
	r.encOnce.Do(func() {
		var err error
		r.enc, err = zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithEncoderCRC(false),
			zstd.WithWindowSize(512*1024))
		if err != nil {
			panic(err)
		}
	})
	return r.enc
}

func (r *Repository) decoder() *zstd.Decoder {
	r.decOnce.Do(func() {
		var err error
		r.dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			panic(err)
		}
	})
	return r.dec
}

// Init creates a new version 2 repository on be (which must be empty)
// with a first key for password.
func Init(ctx context.Context, be backend.Backend, password string) (*Repository, error) {
	return InitWith(ctx, be, password, InitOptions{})
}

// InitWith is Init with options: with ObjectLock, the backend must
// retain files (an S3 bucket with Object Lock enabled); the key and the
// config are then stored retained already.
func InitWith(ctx context.Context, be backend.Backend, password string, o InitOptions) (*Repository, error) {
	if ol := o.ObjectLock; ol != nil {
		rb, ok := be.(retainer)
		if !ok {
			return nil, fmt.Errorf("object lock needs an S3 repository on a bucket with Object Lock enabled")
		}
		if ol.Days < 1 {
			return nil, fmt.Errorf("object lock retention of %d days: want 1 or more", ol.Days)
		}
		on, err := rb.ObjectLockEnabled(ctx)
		if err != nil {
			return nil, err
		}
		if !on {
			return nil, fmt.Errorf("the bucket does not have Object Lock enabled (it is set when a bucket is created; init on a new bucket creates it so)")
		}
		if err := rb.SetRetention(ol.Mode, ol.Period()); err != nil {
			return nil, err
		}
	}
	if _, err := be.Stat(ctx, backend.Handle{Type: backend.ConfigFile}); err == nil {
		return nil, fmt.Errorf("a repository already exists here (config file present)")
	}
	pol, err := chunker.RandomPolynomial()
	if err != nil {
		return nil, fmt.Errorf("choose chunker polynomial: %w", err)
	}
	var rid [32]byte
	if _, err := rand.Read(rid[:]); err != nil {
		return nil, err
	}
	r := &Repository{
		be:  be,
		key: crypto.NewRandomKey(),
		cfg: Config{Version: 2, ID: hex.EncodeToString(rid[:]), ChunkerPolynomial: pol, ObjectLock: o.ObjectLock},
		idx: NewIndex(),
	}
	name, err := r.AddKey(ctx, password, "", "")
	if err != nil {
		return nil, err
	}
	r.keyName = name
	buf, err := json.Marshal(r.cfg)
	if err != nil {
		return nil, err
	}
	// The config is encrypted but never compressed.
	sealed := r.key.Seal(nil, buf)
	if err := be.Save(ctx, backend.Handle{Type: backend.ConfigFile}, bytes.NewReader(sealed)); err != nil {
		return nil, fmt.Errorf("save config: %w", err)
	}
	return r, nil
}

var calibrated struct {
	once sync.Once
	p    crypto.Params
	err  error
}

// AddKey adds a key file for password that opens the same master key and
// returns its name. Empty username or hostname are filled from this host.
func (r *Repository) AddKey(ctx context.Context, password, username, hostname string) (string, error) {
	calibrated.once.Do(func() { calibrated.p, calibrated.err = crypto.Calibrate() })
	if calibrated.err != nil {
		return "", fmt.Errorf("calibrate scrypt: %w", calibrated.err)
	}
	p := calibrated.p
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	if username == "" {
		if u, err := user.Current(); err == nil {
			username = u.Username
		}
	}
	salt := make([]byte, 64)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	userKey, err := crypto.KDF(p, salt, password)
	if err != nil {
		return "", err
	}
	mk, err := json.Marshal(r.key)
	if err != nil {
		return "", err
	}
	kf := KeyFile{
		Created: time.Now(), Username: username, Hostname: hostname,
		KDF: "scrypt", N: p.N, R: p.R, P: p.P, Salt: salt,
		Data: userKey.Seal(nil, mk),
	}
	buf, err := json.Marshal(kf)
	if err != nil {
		return "", err
	}
	id := Hash(buf)
	if err := r.be.Save(ctx, backend.Handle{Type: backend.KeyFile, Name: id.String()}, bytes.NewReader(buf)); err != nil {
		return "", fmt.Errorf("save key: %w", err)
	}
	return id.String(), nil
}

// LoadKeyFile reads the key file called name.
func LoadKeyFile(ctx context.Context, be backend.Backend, name string) (*KeyFile, error) {
	buf, err := backend.ReadAll(ctx, be, backend.Handle{Type: backend.KeyFile, Name: name})
	if err != nil {
		return nil, err
	}
	var kf KeyFile
	if err := json.Unmarshal(buf, &kf); err != nil {
		return nil, fmt.Errorf("key %s: %w", name[:min(8, len(name))], err)
	}
	return &kf, nil
}

func (kf *KeyFile) open(password string) (*crypto.Key, error) {
	if kf.KDF != "scrypt" {
		return nil, fmt.Errorf("unknown key derivation %q", kf.KDF)
	}
	uk, err := crypto.KDF(crypto.Params{N: kf.N, R: kf.R, P: kf.P}, kf.Salt, password)
	if err != nil {
		return nil, err
	}
	pt, err := uk.Open(nil, kf.Data)
	if err != nil {
		return nil, err
	}
	mk := &crypto.Key{}
	if err := json.Unmarshal(pt, mk); err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return mk, nil
}

// Open opens the repository on be with password: it finds a key file that
// the password unlocks and reads the config. The index is not loaded.
func Open(ctx context.Context, be backend.Backend, password string) (*Repository, error) {
	cfgBuf, err := backend.ReadAll(ctx, be, backend.Handle{Type: backend.ConfigFile})
	if backend.IsNotExist(err) {
		return nil, ErrNoRepository
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var names []string
	if err := be.List(ctx, backend.KeyFile, func(fi backend.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	r := &Repository{be: be, idx: NewIndex()}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		kf, err := LoadKeyFile(ctx, be, name)
		if err != nil {
			continue
		}
		mk, err := kf.open(password)
		if err != nil {
			continue
		}
		r.key, r.keyName = mk, name
		break
	}
	if r.key == nil {
		return nil, ErrWrongPassword
	}
	pt, err := r.key.Open(nil, cfgBuf)
	if err != nil {
		return nil, fmt.Errorf("decrypt config: %w", err)
	}
	if err := json.Unmarshal(pt, &r.cfg); err != nil {
		return nil, fmt.Errorf("parse config: %w", err)
	}
	if r.cfg.Version != 1 && r.cfg.Version != 2 {
		return nil, fmt.Errorf("repository format version %d is not supported (1 and 2 are)", r.cfg.Version)
	}
	if err := r.applyObjectLock(); err != nil {
		return nil, fmt.Errorf("object lock: %w", err)
	}
	return r, nil
}

// SaveUnpacked encrypts (and in version 2 compresses) a JSON document and
// stores it as a file of type t named by the hash of the stored bytes.
func (r *Repository) SaveUnpacked(ctx context.Context, t backend.FileType, doc []byte) (ID, error) {
	pt := doc
	if r.cfg.Version >= 2 {
		pt = r.encoder().EncodeAll(doc, []byte{2})
	}
	sealed := r.key.Seal(nil, pt)
	id := Hash(sealed)
	if err := r.be.Save(ctx, backend.Handle{Type: t, Name: id.String()}, bytes.NewReader(sealed)); err != nil {
		return ID{}, fmt.Errorf("save %v: %w", t, err)
	}
	return id, nil
}

// LoadUnpacked reads, verifies (name = hash of the bytes, MAC) and
// decrypts a file of type t, returning the JSON document.
func (r *Repository) LoadUnpacked(ctx context.Context, t backend.FileType, id ID) ([]byte, error) {
	h := backend.Handle{Type: t, Name: id.String()}
	buf, err := backend.ReadAll(ctx, r.be, h)
	if err != nil {
		return nil, err
	}
	if t != backend.ConfigFile && Hash(buf) != id {
		return nil, fmt.Errorf("%v: stored bytes do not match their name (damaged file)", h)
	}
	pt, err := r.key.Open(nil, buf)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", h, err)
	}
	return r.decodeUnpacked(pt)
}

func (r *Repository) decodeUnpacked(pt []byte) ([]byte, error) {
	if r.cfg.Version < 2 || len(pt) == 0 || pt[0] == '[' || pt[0] == '{' {
		return pt, nil
	}
	if pt[0] != 2 {
		return nil, fmt.Errorf("unknown encoding version %d", pt[0])
	}
	out, err := r.decoder().DecodeAll(pt[1:], nil)
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	return out, nil
}

// List calls fn with the ID of each file of type t.
func (r *Repository) List(ctx context.Context, t backend.FileType, fn func(ID, int64) error) error {
	return r.be.List(ctx, t, func(fi backend.FileInfo) error {
		id, err := ParseID(fi.Name)
		if err != nil {
			return nil // a stray name; List already skips most
		}
		return fn(id, fi.Size)
	})
}

// Keys describes the key files.
type Keys struct {
	Name    string
	Current bool
	KeyFile
}

// ListKeys returns the repository's key files.
func (r *Repository) ListKeys(ctx context.Context) ([]Keys, error) {
	var out []Keys
	err := r.be.List(ctx, backend.KeyFile, func(fi backend.FileInfo) error {
		kf, err := LoadKeyFile(ctx, r.be, fi.Name)
		if err != nil {
			return err
		}
		out = append(out, Keys{Name: fi.Name, Current: fi.Name == r.keyName, KeyFile: *kf})
		return nil
	})
	return out, err
}

// RemoveKey removes a key file. The key that opened the repository cannot
// be removed (it may be the last one).
func (r *Repository) RemoveKey(ctx context.Context, name string) error {
	if name == r.keyName {
		return fmt.Errorf("refusing to remove the key in use; open the repository with another key first")
	}
	return r.be.Remove(ctx, backend.Handle{Type: backend.KeyFile, Name: name})
}

// FindID resolves a unique prefix of a file name of type t.
func (r *Repository) FindID(ctx context.Context, t backend.FileType, prefix string) (ID, error) {
	var found []ID
	err := r.List(ctx, t, func(id ID, _ int64) error {
		if len(prefix) <= 64 && id.String()[:len(prefix)] == prefix {
			found = append(found, id)
		}
		return nil
	})
	if err != nil {
		return ID{}, err
	}
	switch len(found) {
	case 0:
		return ID{}, fmt.Errorf("no %v matches %q", t, prefix)
	case 1:
		return found[0], nil
	}
	return ID{}, fmt.Errorf("prefix %q matches %d %v files; give more digits", prefix, len(found), t)
}

var _ = io.EOF
