//go:build unix

package mirror

import (
	"os"

	"golang.org/x/sys/unix"
)

// spillRoom is how many bytes import may copy blobs into under TMPDIR:
// half of what its file system has free for this user.
func spillRoom() int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(os.TempDir(), &st); err != nil {
		return 0
	}
	return int64(st.Bavail) * int64(st.Bsize) / 2 // the field types differ by platform
}
