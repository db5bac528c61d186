package repo

import (
	"crypto/sha256"
	"testing"
)

// TestHashData: the zero shortcut gives the same IDs as hashing, for
// zero runs of many lengths (cached or not) and for data that is zero
// but for one byte anywhere.
func TestHashData(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 64 << 10, 64<<10 + 1, 1 << 20, 1<<20 + 7, 3 << 20} {
		b := make([]byte, n)
		for range 2 { // the second time from the cache
			if got, want := HashData(b), ID(sha256.Sum256(b)); got != want {
				t.Fatalf("%d zeros: %s, want %s", n, got.Str(), want.Str())
			}
		}
		for _, i := range []int{0, n / 2, n - 1} {
			if n == 0 {
				break
			}
			c := make([]byte, n)
			c[i] = 1
			if got, want := HashData(c), ID(sha256.Sum256(c)); got != want {
				t.Fatalf("%d bytes with byte %d set: %s, want %s", n, i, got.Str(), want.Str())
			}
		}
	}
}
