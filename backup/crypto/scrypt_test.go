package crypto

import (
	"bytes"
	"encoding/hex"
	"runtime"
	"testing"

	"golang.org/x/crypto/scrypt"
)

// TestScryptMatches: the parallel-lane scrypt gives x/crypto's result,
// including RFC 7914's test vectors, for p above and below the number
// of lanes run at once.
func TestScryptMatches(t *testing.T) {
	for _, v := range []struct {
		pw, salt  string
		N, r, p   int
		keyLen    int
		rfcVector string
	}{
		{"", "", 16, 1, 1, 64, "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906"},
		{"password", "NaCl", 1024, 8, 16, 64, "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640"},
		{"pw", "a salt of some length", 2, 1, 1, 32, ""},
		{"pw", "a salt of some length", 64, 3, 7, 64, ""},
		{"correct horse", "0123456789abcdef0123456789abcdef", 1 << 12, 8, 6, 64, ""},
	} {
		got, err := scryptKey([]byte(v.pw), []byte(v.salt), v.N, v.r, v.p, v.keyLen)
		if err != nil {
			t.Fatal(err)
		}
		want, err := scrypt.Key([]byte(v.pw), []byte(v.salt), v.N, v.r, v.p, v.keyLen)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("N=%d r=%d p=%d: %x, x/crypto says %x", v.N, v.r, v.p, got, want)
		}
		if v.rfcVector != "" && hex.EncodeToString(got) != v.rfcVector {
			t.Fatalf("N=%d r=%d p=%d: %x, RFC 7914 says %s", v.N, v.r, v.p, got, v.rfcVector)
		}
	}
	for _, bad := range [][3]int{{0, 8, 1}, {3, 8, 1}, {16, 0, 1}, {16, 8, 0}} {
		if _, err := scryptKey([]byte("pw"), []byte("salt"), bad[0], bad[1], bad[2], 64); err == nil {
			t.Fatalf("N=%d r=%d p=%d accepted", bad[0], bad[1], bad[2])
		}
	}
}

func BenchmarkScrypt(b *testing.B) {
	salt := make([]byte, 64)
	b.Run("x/crypto", func(b *testing.B) {
		for b.Loop() {
			_, _ = scrypt.Key([]byte("pw"), salt, 1<<15, 8, 6, 64)
		}
	})
	b.Run("lanes", func(b *testing.B) {
		for b.Loop() {
			_, _ = scryptKey([]byte("pw"), salt, 1<<15, 8, 6, 64)
		}
	})
}

// TestLaneCount: lanes run at once are bounded by p, the cores,
// maxLanes and the memory budget, and are never fewer than one.
func TestLaneCount(t *testing.T) {
	for _, c := range []struct{ N, r, p, procs, want int }{
		{1 << 15, 8, 6, 16, 4},  // restic's calibration: 32 MiB lanes, four fit
		{1 << 15, 8, 6, 2, 2},   // two cores
		{1 << 15, 8, 1, 16, 1},  // one lane
		{1 << 16, 8, 6, 16, 2},  // 64 MiB lanes: two fit
		{1 << 17, 8, 6, 16, 1},  // 128 MiB lanes: one
		{1 << 20, 8, 16, 16, 1}, // 1 GiB lanes: still one, not none
		{16, 1, 1, 1, 1},
	} {
		if got := laneCount(c.N, c.r, c.p, c.procs); got != c.want {
			t.Errorf("laneCount(N=%d, r=%d, p=%d, procs=%d) = %d, want %d", c.N, c.r, c.p, c.procs, got, c.want)
		}
	}
}

// TestSpareProc: a derivation whose lanes take every P adds one for the
// rest of the process while it runs (one that leaves a P free adds
// none), and derivations side by side give it back once, after the last.
func TestSpareProc(t *testing.T) {
	base := runtime.GOMAXPROCS(0)
	first := spareProc()
	second := spareProc()
	if got := runtime.GOMAXPROCS(0); got != base+1 {
		t.Fatalf("two derivations: GOMAXPROCS %d, want %d", got, base+1)
	}
	first()
	if got := runtime.GOMAXPROCS(0); got != base+1 {
		t.Fatalf("one derivation still running: GOMAXPROCS %d, want %d", got, base+1)
	}
	second()
	if got := runtime.GOMAXPROCS(0); got != base {
		t.Fatalf("after both: GOMAXPROCS %d, want %d", got, base)
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := scryptKey([]byte("pw"), make([]byte, 16), 1<<14, 8, base, 64); err != nil {
			t.Error(err)
		}
	}()
	seen := false
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			seen = seen || runtime.GOMAXPROCS(0) == base+1
		}
	}
	// more cores than maxLanes: the lanes leave Ps free, none is added
	want := laneCount(1<<14, 8, base, base) >= base
	if seen != want || runtime.GOMAXPROCS(0) != base {
		t.Errorf("a derivation with %d lanes on %d Ps: spare P seen %v, want %v; GOMAXPROCS after %d", laneCount(1<<14, 8, base, base), base, seen, want, runtime.GOMAXPROCS(0))
	}
}
