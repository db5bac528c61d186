package crypto

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"runtime"
	"sync"
)

// maxLanes bounds how many of scrypt's p lanes run at once: each holds
// 128·r·N bytes (32 MiB at restic's calibration).
const maxLanes = 4

// laneBudget bounds the memory of the lanes running at once: a key file
// with a large N runs fewer of them (one at least, whatever it costs,
// as x/crypto would), not p times its memory.
const laneBudget = 128 << 20

// laneCount is how many of p lanes of 128·r·N bytes each run at once
// on procs cores.
func laneCount(N, r, p, procs int) int {
	return max(1, min(p, procs, maxLanes, laneBudget/(128*r*N)))
}

// scryptKey is scrypt (RFC 7914) with the same result as
// golang.org/x/crypto/scrypt.Key, but its p lanes — independent
// ROMix computations over slices of the first PBKDF2's output, which
// is what p is for — run in parallel on up to GOMAXPROCS cores (at
// most maxLanes, and only as many as fit in laneBudget). Every lane
// does all of its N-sized work: the cost to an attacker is unchanged;
// only the wait on a machine with idle cores shrinks.
func scryptKey(password, salt []byte, N, r, p, keyLen int) ([]byte, error) {
	if N <= 1 || N&(N-1) != 0 {
		return nil, fmt.Errorf("scrypt: N must be > 1 and a power of 2")
	}
	if r < 1 || p < 1 {
		return nil, fmt.Errorf("scrypt: r and p must be at least 1")
	}
	if uint64(r)*uint64(p) >= 1<<30 || r > maxInt/128/p || r > maxInt/256 || N > maxInt/128/r {
		return nil, fmt.Errorf("scrypt: parameters are too large")
	}
	b, err := pbkdf2.Key(sha256.New, string(password), salt, 1, p*128*r)
	if err != nil {
		return nil, err
	}
	procs := runtime.GOMAXPROCS(0)
	lanes := laneCount(N, r, p, procs)
	if lanes >= procs {
		// the lanes take every P: one more, for the rest of the process
		defer spareProc()()
	}
	next := make(chan int, p)
	for i := range p {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			xy := make([]uint32, 64*r)
			v, free := laneMemory(32 * N * r)
			defer free()
			for i := range next {
				romix(b[i*128*r:(i+1)*128*r], r, N, v, xy)
			}
		}()
	}
	wg.Wait()
	return pbkdf2.Key(sha256.New, string(password), b, 1, keyLen)
}

const maxInt = int(^uint(0) >> 1)

// spare counts the derivations that added a P (spareProc); base is
// GOMAXPROCS before the first of them.
var spare struct {
	sync.Mutex
	n, base int
}

// spareProc adds one P while a derivation's lanes fill all the others,
// and returns what gives it back (after the last derivation running).
// Without it every other goroutine of the process — an SSH handshake
// that overlaps the derivation, the file writes beside it — waits for
// the scheduler to poll the network and preempt a lane, up to 10 ms at
// each step, and a handshake of a few round trips takes three times as
// long; the P's thread is the kernel's to schedule on the cores the
// lanes use, and goes idle when nothing else runs.
func spareProc() func() {
	spare.Lock()
	if spare.n == 0 {
		spare.base = runtime.GOMAXPROCS(0)
		runtime.GOMAXPROCS(spare.base + 1)
	}
	spare.n++
	spare.Unlock()
	return func() {
		spare.Lock()
		if spare.n--; spare.n == 0 {
			runtime.GOMAXPROCS(spare.base)
		}
		spare.Unlock()
	}
}

// romix is RFC 7914's scryptROMix on one lane b (128·r bytes, read and
// written as little-endian 32-bit words); v holds N blocks of 32·r
// words, xy 64·r words of scratch.
func romix(b []byte, r, N int, v, xy []uint32) {
	R := 32 * r
	x := xy[:R]
	y := xy[R:]
	for i := range x {
		x[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	for i := 0; i < N; i += 2 {
		copy(v[i*R:], x)
		blockMix(x, y, r)
		copy(v[(i+1)*R:], y)
		blockMix(y, x, r)
	}
	for i := 0; i < N; i += 2 {
		j := int(integerify(x, r) & uint64(N-1))
		xorInto(x, v[j*R:(j+1)*R])
		blockMix(x, y, r)
		j = int(integerify(y, r) & uint64(N-1))
		xorInto(y, v[j*R:(j+1)*R])
		blockMix(y, x, r)
	}
	for i, w := range x {
		binary.LittleEndian.PutUint32(b[4*i:], w)
	}
}

func xorInto(dst, src []uint32) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] ^= src[i]
	}
}

// integerify reads the first 64 bits of the last 64-byte block.
func integerify(x []uint32, r int) uint64 {
	j := (2*r - 1) * 16
	return uint64(x[j]) | uint64(x[j+1])<<32
}

// blockMix is scryptBlockMix: in (2r blocks of 16 words) → out, with
// the even-numbered results first, then the odd ones.
func blockMix(in, out []uint32, r int) {
	var t [16]uint32
	copy(t[:], in[(2*r-1)*16:])
	for i := 0; i < 2*r; i += 2 {
		salsaXOR(&t, in[i*16:], out[i*8:])
		salsaXOR(&t, in[i*16+16:], out[i*8+r*16:])
	}
}

// salsaXOR sets t to Salsa20/8(t xor in) and copies it to out.
func salsaXOR(t *[16]uint32, in, out []uint32) {
	in = in[:16]
	out = out[:16]
	w0, w1, w2, w3 := t[0]^in[0], t[1]^in[1], t[2]^in[2], t[3]^in[3]
	w4, w5, w6, w7 := t[4]^in[4], t[5]^in[5], t[6]^in[6], t[7]^in[7]
	w8, w9, w10, w11 := t[8]^in[8], t[9]^in[9], t[10]^in[10], t[11]^in[11]
	w12, w13, w14, w15 := t[12]^in[12], t[13]^in[13], t[14]^in[14], t[15]^in[15]
	x0, x1, x2, x3, x4, x5, x6, x7 := w0, w1, w2, w3, w4, w5, w6, w7
	x8, x9, x10, x11, x12, x13, x14, x15 := w8, w9, w10, w11, w12, w13, w14, w15
	for range 4 {
		// columns
		x4 ^= bits.RotateLeft32(x0+x12, 7)
		x8 ^= bits.RotateLeft32(x4+x0, 9)
		x12 ^= bits.RotateLeft32(x8+x4, 13)
		x0 ^= bits.RotateLeft32(x12+x8, 18)
		x9 ^= bits.RotateLeft32(x5+x1, 7)
		x13 ^= bits.RotateLeft32(x9+x5, 9)
		x1 ^= bits.RotateLeft32(x13+x9, 13)
		x5 ^= bits.RotateLeft32(x1+x13, 18)
		x14 ^= bits.RotateLeft32(x10+x6, 7)
		x2 ^= bits.RotateLeft32(x14+x10, 9)
		x6 ^= bits.RotateLeft32(x2+x14, 13)
		x10 ^= bits.RotateLeft32(x6+x2, 18)
		x3 ^= bits.RotateLeft32(x15+x11, 7)
		x7 ^= bits.RotateLeft32(x3+x15, 9)
		x11 ^= bits.RotateLeft32(x7+x3, 13)
		x15 ^= bits.RotateLeft32(x11+x7, 18)
		// rows
		x1 ^= bits.RotateLeft32(x0+x3, 7)
		x2 ^= bits.RotateLeft32(x1+x0, 9)
		x3 ^= bits.RotateLeft32(x2+x1, 13)
		x0 ^= bits.RotateLeft32(x3+x2, 18)
		x6 ^= bits.RotateLeft32(x5+x4, 7)
		x7 ^= bits.RotateLeft32(x6+x5, 9)
		x4 ^= bits.RotateLeft32(x7+x6, 13)
		x5 ^= bits.RotateLeft32(x4+x7, 18)
		x11 ^= bits.RotateLeft32(x10+x9, 7)
		x8 ^= bits.RotateLeft32(x11+x10, 9)
		x9 ^= bits.RotateLeft32(x8+x11, 13)
		x10 ^= bits.RotateLeft32(x9+x8, 18)
		x12 ^= bits.RotateLeft32(x15+x14, 7)
		x13 ^= bits.RotateLeft32(x12+x15, 9)
		x14 ^= bits.RotateLeft32(x13+x12, 13)
		x15 ^= bits.RotateLeft32(x14+x13, 18)
	}
	x0 += w0
	x1 += w1
	x2 += w2
	x3 += w3
	x4 += w4
	x5 += w5
	x6 += w6
	x7 += w7
	x8 += w8
	x9 += w9
	x10 += w10
	x11 += w11
	x12 += w12
	x13 += w13
	x14 += w14
	x15 += w15
	out[0], t[0] = x0, x0
	out[1], t[1] = x1, x1
	out[2], t[2] = x2, x2
	out[3], t[3] = x3, x3
	out[4], t[4] = x4, x4
	out[5], t[5] = x5, x5
	out[6], t[6] = x6, x6
	out[7], t[7] = x7, x7
	out[8], t[8] = x8, x8
	out[9], t[9] = x9, x9
	out[10], t[10] = x10, x10
	out[11], t[11] = x11, x11
	out[12], t[12] = x12, x12
	out[13], t[13] = x13, x13
	out[14], t[14] = x14, x14
	out[15], t[15] = x15, x15
}
