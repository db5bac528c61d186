package archiver

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/holiday-ops/holiday/backup/repo"
)

const modeMask = os.ModePerm | os.ModeType | os.ModeSetuid | os.ModeSetgid | os.ModeSticky

// NodeType returns restic's name for a file mode's type.
func NodeType(m os.FileMode) string {
	switch m & (os.ModeType | os.ModeCharDevice) {
	case 0:
		return repo.NodeFile
	case os.ModeDir:
		return repo.NodeDir
	case os.ModeSymlink:
		return repo.NodeSymlink
	case os.ModeDevice | os.ModeCharDevice:
		return repo.NodeCharDev
	case os.ModeDevice:
		return repo.NodeDev
	case os.ModeNamedPipe:
		return repo.NodeFifo
	case os.ModeSocket:
		return repo.NodeSocket
	}
	return ""
}

var names struct {
	sync.Mutex
	users, groups map[uint32]string
}

func lookupUser(uid uint32) string {
	names.Lock()
	defer names.Unlock()
	if names.users == nil {
		names.users, names.groups = map[uint32]string{}, map[uint32]string{}
	}
	if n, ok := names.users[uid]; ok {
		return n
	}
	n := ""
	if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
		n = u.Username
	}
	names.users[uid] = n
	return n
}

func lookupGroup(gid uint32) string {
	names.Lock()
	defer names.Unlock()
	if names.users == nil {
		names.users, names.groups = map[uint32]string{}, map[uint32]string{}
	}
	if n, ok := names.groups[gid]; ok {
		return n
	}
	n := ""
	if g, err := user.LookupGroupId(strconv.Itoa(int(gid))); err == nil {
		n = g.Name
	}
	names.groups[gid] = n
	return n
}

// NodeFromFileInfo fills a node with everything restic records: Go mode
// bits, owner ids and names, the three times in ns, inode, st_dev, link
// count, size, symlink target, st_rdev of devices and extended attributes.
func NodeFromFileInfo(path, name string, fi os.FileInfo) (*repo.Node, error) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, fmt.Errorf("%s: no stat information", path)
	}
	n := &repo.Node{
		Name:       name,
		Type:       NodeType(fi.Mode()),
		Mode:       fi.Mode() & modeMask,
		ModTime:    time.Unix(st.Mtim.Unix()),
		AccessTime: time.Unix(st.Atim.Unix()),
		ChangeTime: time.Unix(st.Ctim.Unix()),
		UID:        st.Uid,
		GID:        st.Gid,
		User:       lookupUser(st.Uid),
		Group:      lookupGroup(st.Gid),
		Inode:      st.Ino,
		DeviceID:   st.Dev,
	}
	if n.Type == "" {
		return nil, fmt.Errorf("%s: unsupported file type %v", path, fi.Mode().Type())
	}
	switch n.Type {
	case repo.NodeFile:
		n.Size = uint64(st.Size)
		n.Links = uint64(st.Nlink)
		n.Content = []repo.ID{}
	case repo.NodeSymlink:
		n.Links = uint64(st.Nlink)
		t, err := os.Readlink(path)
		if err != nil {
			return nil, fmt.Errorf("read symlink %s: %w", path, err)
		}
		n.LinkTarget = t
	case repo.NodeDev, repo.NodeCharDev:
		n.Links = uint64(st.Nlink)
		n.Device = st.Rdev
	}
	if n.Type != repo.NodeSymlink {
		xa, err := xattrs(path)
		if err != nil {
			return nil, err
		}
		n.ExtendedAttributes = xa
	}
	return n, nil
}

func xattrs(path string) ([]repo.ExtendedAttribute, error) {
	size, err := unix.Llistxattr(path, nil)
	if errors.Is(err, unix.ENOTSUP) || size == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list xattrs of %s: %w", path, err)
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(path, buf)
	if err != nil {
		return nil, fmt.Errorf("list xattrs of %s: %w", path, err)
	}
	var out []repo.ExtendedAttribute
	start := 0
	for i := 0; i < size; i++ {
		if buf[i] != 0 {
			continue
		}
		name := string(buf[start:i])
		start = i + 1
		if name == "" {
			continue
		}
		vs, err := unix.Lgetxattr(path, name, nil)
		if err != nil {
			continue
		}
		val := make([]byte, vs)
		vs, err = unix.Lgetxattr(path, name, val)
		if err != nil {
			continue
		}
		out = append(out, repo.ExtendedAttribute{Name: name, Value: val[:vs]})
	}
	return out, nil
}
