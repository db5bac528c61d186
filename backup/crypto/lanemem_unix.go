//go:build unix

package crypto

import (
	"syscall"
	"unsafe"
)

// laneMemory returns n words for a scrypt lane and a function that gives
// them back. They are mapped outside the Go heap and unmapped at once
// when done: two lanes' 64 MiB would otherwise stay in the process's
// footprint (peak RSS) for the whole command that follows.
func laneMemory(n int) ([]uint32, func()) {
	b, err := syscall.Mmap(-1, 0, 4*n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]uint32, n), func() {}
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&b[0])), n), func() { _ = syscall.Munmap(b) }
}
