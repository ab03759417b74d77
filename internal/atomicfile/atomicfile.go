// Package atomicfile writes a file so that readers see either its old
// content or the whole new one, never part of it, and a crash leaves no
// half-written file under its name: config, the capability cache,
// metrics files, JSON documents and bundle sidecars are all written so.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// Write fills a temporary file next to path (".NAME.partial-PID-*": hidden,
// on the same file system, without NAME's suffix, so that collectors of
// *.prom or *.json files skip it), syncs it, gives it mode perm and
// renames it over path, then syncs the folder. On any error path is left
// as it was and the temporary file is removed. Errors name path.
func Write(path string, perm os.FileMode, fill func(io.Writer) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".partial-"+strconv.Itoa(os.Getpid())+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	err = func() error {
		if err := fill(tmp); err != nil {
			return err
		}
		if err := tmp.Sync(); err != nil {
			return err
		}
		return tmp.Chmod(perm)
	}()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// WriteBytes is Write of data.
func WriteBytes(path string, perm os.FileMode, data []byte) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}
