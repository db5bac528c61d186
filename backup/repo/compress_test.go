package repo

import (
	"bytes"
	"compress/gzip"
	"math/rand/v2"
	"testing"
)

func TestLooksIncompressible(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	text := bytes.Repeat([]byte("the disk holds logs configs databases and binaries\n"), 1<<15)[:1<<20]
	counter := make([]byte, 1<<20)
	for i := range counter {
		counter[i] = byte(i)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	for gz.Len() < 1<<20 {
		_, _ = zw.Write(random(1 << 16))
		_, _ = zw.Write(text[:1<<16])
	}
	_ = zw.Close()
	halfZero := random(1 << 20)
	clear(halfZero[1<<19:])
	tailText := random(1 << 20)
	copy(tailText[1<<20-1<<16:], text)
	for _, tc := range []struct {
		name string
		data []byte
		want bool
	}{
		{"random 1 MiB", random(1 << 20), true},
		{"random 8 MiB+1", random(8<<20 + 1), true},
		{"gzip output", gz.Bytes()[:1<<20], true},
		{"random but small", random(1 << 15), false},
		{"zeros", make([]byte, 1<<20), false},
		{"text", text, false},
		{"0…255 repeated", counter, false},
		{"random, then zeros", halfZero, false},
		{"random, text at the end", tailText, false},
	} {
		if got := looksIncompressible(tc.data); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// random data must practically never be taken for compressible
	miss := 0
	for range 2000 {
		if !uniform(random(sampleSize)) {
			miss++
		}
	}
	if miss > 2 {
		t.Errorf("%d of 2000 random windows failed the test", miss)
	}
}
