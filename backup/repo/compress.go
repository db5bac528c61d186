package repo

// Incompressible data (random, encrypted, already compressed) is common in
// disk images and zstd spends ~0.3 ms on each MiB of it before giving up.
// looksIncompressible samples a blob instead: a few windows spread over
// it whose byte histograms all look uniformly random (a chi-square test)
// mark it as not worth compressing, and it is stored as it is — which
// the format allows for any data blob and stock restic reads.
//
// A blob that fools the test (say, one random 4 KiB block repeated) is
// only stored larger than it could be; nothing else depends on it.

const (
	sampleWindows = 4
	sampleSize    = 4 << 10
	// blobs smaller than this are always compressed
	minSampled = 64 << 10
	// For n uniformly random bytes in 256 bins chi-square has mean 255
	// and standard deviation ~22.6: accept within about ±4.5 of them.
	// Text, code, zeros and structured data land far above; a sequence
	// like 0, 1, …, 255 repeated (uniform but compressible) far below.
	chiLow, chiHigh = 150, 360
)

func looksIncompressible(data []byte) bool {
	if len(data) < minSampled {
		return false
	}
	step := (len(data) - sampleSize) / (sampleWindows - 1)
	for i := range sampleWindows {
		if !uniform(data[i*step : i*step+sampleSize]) {
			return false
		}
	}
	return true
}

// uniform reports whether w's byte histogram passes the chi-square test
// for uniformly random bytes.
func uniform(w []byte) bool {
	var h [256]int32
	for _, b := range w {
		h[b]++
	}
	// chi² = Σ (c - e)² / e with e = n/256, computed as 256·Σc²/n - n
	var sum int64
	for _, c := range h {
		sum += int64(c) * int64(c)
	}
	n := int64(len(w))
	chi := 256*sum/n - n
	return chi > chiLow && chi < chiHigh
}
