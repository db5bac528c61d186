//go:build !unix

package crypto

// laneMemory returns n words for a scrypt lane.
func laneMemory(n int) ([]uint32, func()) { return make([]uint32, n), func() {} }
