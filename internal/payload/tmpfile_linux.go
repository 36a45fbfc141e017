//go:build linux

package payload

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// createTemp makes the temporary file without a name (O_TMPFILE) and publishes it with a
// link: creating it takes no lock on dir's entries, which every concurrent Put would
// otherwise contend for, and a crash leaves nothing behind. Where the file system cannot
// (or /proc is missing), it falls back to a named temporary file.
func createTemp(dir string) (*tempFile, error) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		return createNamedTemp(dir)
	}
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, 0o640)
	if err != nil {
		return createNamedTemp(dir)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir, "(unnamed)"))
	return &tempFile{
		File: f,
		publish: func(dst string) error {
			// linkat refuses an existing dst with EEXIST, which matches os.ErrExist.
			err := unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), unix.AT_FDCWD, dst, unix.AT_SYMLINK_FOLLOW)
			if err != nil {
				return &os.LinkError{Op: "link", Old: f.Name(), New: dst, Err: err}
			}
			return nil
		},
		discard: func() {},
	}, nil
}
