package crypto

import (
	"fmt"
	"time"

	"golang.org/x/crypto/scrypt"
)

// Params are scrypt's cost parameters as restic's key files store them.
type Params struct {
	N, R, P int
}

// MinParams is the floor below which holiday never derives a new key:
// restic's calibration memory (N·r·128 just under 60 MiB gives N = 2^15,
// r = 8) with at least one pass.
var MinParams = Params{N: 1 << 15, R: 8, P: 1}

// Calibration targets, restic's: about 500 ms and at most 60 MiB.
const (
	CalibrateTime   = 500 * time.Millisecond
	CalibrateMemory = 60 << 20
)

// Calibrate picks parameters for new keys the way restic does: N is the
// largest power of two whose memory (128·r·N) stays under 60 MiB with
// r = 8, then p is raised until one derivation takes about 500 ms on this
// machine. The result is never weaker than MinParams.
func Calibrate() (Params, error) {
	p := Params{N: 1, R: 8, P: 1}
	for 128*int64(p.R)*int64(p.N) < CalibrateMemory {
		p.N <<= 1
	}
	p.N >>= 1
	salt := make([]byte, 64)
	// the fastest of three runs: a first run pays for page faults and a
	// busy machine must not talk us into a weaker key
	var dur time.Duration
	for i := 0; i < 3; i++ {
		start := time.Now()
		if _, err := scrypt.Key([]byte("calibration"), salt, p.N, p.R, p.P, 64); err != nil {
			return p, err
		}
		if d := time.Since(start); i == 0 || d < dur {
			dur = d
		}
	}
	if dur < CalibrateTime {
		p.P = int(CalibrateTime / dur)
	}
	if p.P < 1 {
		p.P = 1
	}
	if p.N < MinParams.N {
		p.N = MinParams.N
	}
	return p, nil
}

// KDF derives a key from a password with scrypt, its lanes in parallel
// (the result is scrypt's; Calibrate times x/crypto's one-lane scrypt,
// so the parallelism never lowers the cost chosen for new keys).
func KDF(p Params, salt []byte, password string) (*Key, error) {
	if len(salt) < 16 {
		return nil, fmt.Errorf("scrypt salt of %d bytes is too short", len(salt))
	}
	b, err := scryptKey([]byte(password), salt, p.N, p.R, p.P, 64)
	if err != nil {
		return nil, fmt.Errorf("scrypt N=%d r=%d p=%d: %w", p.N, p.R, p.P, err)
	}
	return keyFromBytes(b), nil
}
