package restore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestInUseHolders: a device held by another (LVM, dm-crypt, md), or one
// whose partition is, is in use; one without holders is not (as far as
// sysfs says: the mount table and O_EXCL are checked besides).
func TestInUseHolders(t *testing.T) {
	old := sysBlock
	t.Cleanup(func() { sysBlock = old })
	sysBlock = t.TempDir()
	dev := unix.Mkdev(250, 7)
	mk := func(p string) {
		if err := os.MkdirAll(filepath.Join(sysBlock, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mk("250:7/holders")
	if why := inUse("/dev/fake", dev); why != "" {
		t.Fatalf("a free device: in use: %s", why)
	}
	mk("250:7/fake1/holders/dm-3")
	if err := os.WriteFile(filepath.Join(sysBlock, "250:7/fake1/partition"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if why := inUse("/dev/fake", dev); !strings.Contains(why, "partition fake1 is held by dm-3") {
		t.Fatalf("a held partition: %q", why)
	}
	mk("250:7/holders/md0")
	if why := inUse("/dev/fake", dev); why != "held by md0" {
		t.Fatalf("a held device: %q", why)
	}
}
