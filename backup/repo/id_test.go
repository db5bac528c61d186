package repo

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"strings"
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

// TestZeroIDsBounded: the cache of all-zero IDs stops growing at
// maxZeroIDs for good; its count of misses never wraps around to let
// it grow again (with an int32 count, 2^31 misses did).
func TestZeroIDsBounded(t *testing.T) {
	saved := zeroIDsN.Load()
	defer zeroIDsN.Store(saved)
	n := len(zeroBlock) + 12345
	zeroIDs.Delete(n)
	defer zeroIDs.Delete(n)
	zeroIDsN.Store(math.MaxInt32) // as after 2^31 misses
	if got, want := HashData(make([]byte, n)), ID(sha256.Sum256(make([]byte, n))); got != want {
		t.Fatalf("%d zeros: %s, want %s", n, got.Str(), want.Str())
	}
	if _, ok := zeroIDs.Load(n); ok {
		t.Error("an all-zero ID cached although the cache is full")
	}
	if zeroIDsN.Load() < maxZeroIDs {
		t.Error("the count of cached zero IDs wrapped around")
	}
}

// TestIDJSON: an ID reads from its quoted hex digits, however they are
// written, and nothing else is taken for one.
func TestIDJSON(t *testing.T) {
	id := Hash([]byte("x"))
	hexID := id.String()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{`"` + hexID + `"`, true},
		{`"` + strings.ToUpper(hexID) + `"`, true},
		{`"\u00` + hex.EncodeToString([]byte(hexID[:1])) + hexID[1:] + `"`, true}, // an escaped digit
		{`"` + hexID[:63] + `g"`, false},
		{`"` + hexID[:62] + `"`, false},
		{`"` + hexID + `0"`, false},
		{`null`, false},
		{`12`, false},
	} {
		var got ID
		err := json.Unmarshal([]byte(tc.in), &got)
		if tc.ok && (err != nil || got != id) {
			t.Errorf("%s: %v, %v; want %v", tc.in, got, err, id)
		}
		if !tc.ok && (err == nil || got != ID{}) {
			t.Errorf("%s: accepted as %v (err %v)", tc.in, got, err)
		}
	}
	b, err := json.Marshal(id)
	if err != nil || string(b) != `"`+hexID+`"` {
		t.Errorf("Marshal: %s %v", b, err)
	}
}
