package agentctl

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSelfCache: this executable's SHA-256 comes from the cache file
// while the file keeps the identity written there, and is hashed again
// (and the cache rewritten) when it changed, belongs to another path or
// the cache is unreadable.
func TestSelfCache(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "holiday")
	content := []byte("#!/bin/false\nnot really holiday\n")
	if err := os.WriteFile(exe, content, 0o700); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	real := hex.EncodeToString(sum[:])
	planted := strings.Repeat("ab", 32)
	cache := filepath.Join(dir, "agent-sha256")
	// plant rewrites the cache's SHA-256 line, keeping path and identity:
	// what LoadBinary then returns is read from the cache, not hashed
	plant := func() {
		b, err := os.ReadFile(cache)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(b), "\n")
		lines[2] = planted
		if err := os.WriteFile(cache, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		cache string
		setup func()
		want  string
	}{
		{"no cache file: hashed", cache, func() {}, real},
		{"identity unchanged: from the cache", cache, plant, planted},
		{"written since, same bytes: hashed", cache, func() {
			plant()
			time.Sleep(10 * time.Millisecond)
			if err := os.WriteFile(exe, content, 0o700); err != nil { // a new ctime
				t.Fatal(err)
			}
		}, real},
		{"another path's: hashed", cache, func() {
			plant()
			b, _ := os.ReadFile(cache)
			os.WriteFile(cache, []byte(strings.Replace(string(b), exe, exe+"2", 1)), 0o600)
		}, real},
		{"garbage: hashed", cache, func() { os.WriteFile(cache, []byte("x\ny\nz\n"), 0o600) }, real},
		{"no cache: hashed", "", plant, real},
		{"cache directory missing: hashed", filepath.Join(dir, "missing", "agent-sha256"), func() {}, real},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			b, err := loadCached(exe, tc.cache)
			if err != nil {
				t.Fatal(err)
			}
			if b.SHA256 != tc.want || b.Size != int64(len(content)) || b.Path != exe {
				t.Errorf("got %+v, want SHA-256 %.12s… of %d bytes", b, tc.want, len(content))
			}
			if tc.want == real && tc.cache == cache {
				if got, _ := os.ReadFile(cache); !strings.HasSuffix(string(got), "\n"+real+"\n") {
					t.Errorf("cache not rewritten after hashing: %q", got)
				}
			}
		})
	}
}
