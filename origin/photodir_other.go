//go:build !unix

package origin

import (
	"errors"
	"io/fs"
	"syscall"
)

// checkPrivateDir accepts any directory where ownership is not a Unix uid.
func checkPrivateDir(fs.FileInfo) error { return nil }

// diskFull says whether err is the file system having no room left.
func diskFull(err error) bool { return errors.Is(err, syscall.ENOSPC) }
