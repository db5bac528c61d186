// Package crypto is restic's authenticated encryption: AES-256 in counter
// mode with a Poly1305-AES MAC over the ciphertext, stored as
// IV || CIPHERTEXT || MAC, and the scrypt key derivation that unlocks a
// repository's master key from a password.
//
// Poly1305-AES (Bernstein 2005) uses a fresh one-time key per message:
// r (the clamped half of the MAC key) and AES_k(nonce). x/crypto's
// poly1305 is the one-time MAC; the AES step is done here.
//
// It must never import anything of holiday's.
package crypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"

	//lint:ignore SA1019 restic's format is Poly1305-AES: the one-time key is r with AES_k(nonce), fresh per message, as Bernstein's construction requires
	"golang.org/x/crypto/poly1305"
)

const (
	ivSize  = aes.BlockSize
	macSize = poly1305.TagSize
	// Extension is how many bytes encryption adds to a plaintext.
	Extension = ivSize + macSize
	// MACSize is the length of the MAC that ends a sealed message.
	MACSize = macSize
)

// ErrUnauthenticated means a MAC did not verify: the data was damaged or
// tampered with, or the key is wrong.
var ErrUnauthenticated = errors.New("ciphertext verification failed (MAC mismatch)")

// poly1305 requires r to have these bits cleared (the paper's "clamping").
var rMask = [16]byte{0xff, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f, 0xfc, 0xff, 0xff, 0x0f}

// Key is a repository's master key (or a key derived from a password).
type Key struct {
	Encrypt [32]byte // AES-256
	MACK    [16]byte // AES-128 key that turns the nonce into the one-time pad
	MACR    [16]byte // Poly1305 r, clamped

	block cipher.Block // AES-256 with Encrypt
	macK  cipher.Block // AES-128 with MACK
}

// NewRandomKey returns a fresh master key.
func NewRandomKey() *Key {
	k := &Key{}
	if _, err := rand.Read(k.Encrypt[:]); err != nil {
		panic(err)
	}
	if _, err := rand.Read(k.MACK[:]); err != nil {
		panic(err)
	}
	if _, err := rand.Read(k.MACR[:]); err != nil {
		panic(err)
	}
	k.init()
	return k
}

// keyFromBytes builds a key from 64 bytes: encryption key, then MAC k, then
// MAC r (the order of scrypt's output in restic's key files).
func keyFromBytes(b []byte) *Key {
	k := &Key{}
	copy(k.Encrypt[:], b[:32])
	copy(k.MACK[:], b[32:48])
	copy(k.MACR[:], b[48:64])
	k.init()
	return k
}

func (k *Key) init() {
	for i := range k.MACR {
		k.MACR[i] &= rMask[i]
	}
	var err error
	if k.block, err = aes.NewCipher(k.Encrypt[:]); err != nil {
		panic(err)
	}
	if k.macK, err = aes.NewCipher(k.MACK[:]); err != nil {
		panic(err)
	}
}

// Valid reports whether the key has non-zero parts.
func (k *Key) Valid() bool {
	var zero16 [16]byte
	var zero32 [32]byte
	return k != nil && k.Encrypt != zero32 && k.MACK != zero16 && k.MACR != zero16
}

type macJSON struct {
	K []byte `json:"k"`
	R []byte `json:"r"`
}

type keyJSON struct {
	MAC     macJSON `json:"mac"`
	Encrypt []byte  `json:"encrypt"`
}

// MarshalJSON writes the key as restic's key files hold it.
func (k *Key) MarshalJSON() ([]byte, error) {
	return json.Marshal(keyJSON{MAC: macJSON{K: k.MACK[:], R: k.MACR[:]}, Encrypt: k.Encrypt[:]})
}

// UnmarshalJSON reads a master key.
func (k *Key) UnmarshalJSON(b []byte) error {
	var j keyJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	if len(j.MAC.K) != 16 || len(j.MAC.R) != 16 || len(j.Encrypt) != 32 {
		return fmt.Errorf("master key has wrong lengths")
	}
	copy(k.MACK[:], j.MAC.K)
	copy(k.MACR[:], j.MAC.R)
	copy(k.Encrypt[:], j.Encrypt)
	k.init()
	if !k.Valid() {
		return fmt.Errorf("master key is zero")
	}
	return nil
}

func (k *Key) mac(out *[16]byte, nonce, msg []byte) {
	var otk [32]byte
	copy(otk[:16], k.MACR[:])
	k.macK.Encrypt(otk[16:], nonce)
	poly1305.Sum(out, msg, &otk)
}

// CiphertextLength is the sealed size of a plaintext of n bytes.
func CiphertextLength(n int) int { return n + Extension }

// Seal appends IV || AES-CTR(plaintext) || MAC to dst with a fresh random
// IV and returns the result. plaintext must not overlap dst's new bytes,
// except exactly: it may already sit at dst[len(dst)+16:] (encryption in
// place, with room for the IV before it and the MAC after it).
func (k *Key) Seal(dst, plaintext []byte) []byte {
	n := len(dst)
	total := n + CiphertextLength(len(plaintext))
	if cap(dst) < total {
		nd := make([]byte, n, total)
		copy(nd, dst)
		dst = nd
	}
	dst = dst[:total]
	iv := dst[n : n+ivSize]
	if _, err := rand.Read(iv); err != nil {
		panic(err)
	}
	ct := dst[n+ivSize : total-macSize]
	cipher.NewCTR(k.block, iv).XORKeyStream(ct, plaintext)
	var tag [16]byte
	k.mac(&tag, iv, ct)
	copy(dst[total-macSize:], tag[:])
	return dst
}

// Verify checks the MAC of IV || CIPHERTEXT || MAC without decrypting:
// a sealed blob copied as it is (prune's repack) is checked this way.
func (k *Key) Verify(sealed []byte) error {
	if len(sealed) < Extension {
		return fmt.Errorf("ciphertext of %d bytes is shorter than IV and MAC: %w", len(sealed), ErrUnauthenticated)
	}
	var tag [16]byte
	k.mac(&tag, sealed[:ivSize], sealed[ivSize:len(sealed)-macSize])
	if subtle.ConstantTimeCompare(tag[:], sealed[len(sealed)-macSize:]) != 1 {
		return ErrUnauthenticated
	}
	return nil
}

// Open verifies and decrypts IV || CIPHERTEXT || MAC, appending the
// plaintext to dst. Nothing is decrypted unless the MAC verifies.
func (k *Key) Open(dst, sealed []byte) ([]byte, error) {
	if len(sealed) < Extension {
		return nil, fmt.Errorf("ciphertext of %d bytes is shorter than IV and MAC: %w", len(sealed), ErrUnauthenticated)
	}
	iv := sealed[:ivSize]
	ct := sealed[ivSize : len(sealed)-macSize]
	var tag [16]byte
	k.mac(&tag, iv, ct)
	if subtle.ConstantTimeCompare(tag[:], sealed[len(sealed)-macSize:]) != 1 {
		return nil, ErrUnauthenticated
	}
	n := len(dst)
	if cap(dst)-n < len(ct) {
		nd := make([]byte, n, n+len(ct))
		copy(nd, dst)
		dst = nd
	}
	dst = dst[:n+len(ct)]
	cipher.NewCTR(k.block, iv).XORKeyStream(dst[n:], ct)
	return dst, nil
}

// DecryptUnchecked decrypts sealed in place and returns the plaintext
// (a slice of sealed) without checking its MAC. It is for one caller
// only: the read-back of an uncompressed data blob just written
// (backup/repo), which compares the stored MAC with the one it wrote and
// the plaintext's SHA-256 with the blob's ID; together those vouch for
// every byte of sealed — IV, ciphertext and MAC — and computing the MAC
// would only repeat it. Anything read for use, and anything whose
// plaintext is parsed or decompressed, must go through Open.
func (k *Key) DecryptUnchecked(sealed []byte) ([]byte, error) {
	if len(sealed) < Extension {
		return nil, fmt.Errorf("ciphertext of %d bytes is shorter than IV and MAC: %w", len(sealed), ErrUnauthenticated)
	}
	ct := sealed[ivSize : len(sealed)-macSize]
	cipher.NewCTR(k.block, sealed[:ivSize]).XORKeyStream(ct, ct)
	return ct, nil
}
