//go:build unix

package origin

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkPrivateDir refuses a directory that is not owned by this process's
// effective user or that its group or others may write to.
func checkPrivateDir(fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("cannot read its owner")
	}
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("it is owned by uid %d, not by this process's uid %d (another local user may have created it)", st.Uid, uid)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("its group or other users may write to it (mode %v)", fi.Mode().Perm())
	}
	return nil
}

// diskFull says whether err is the file system (or the user's quota) having
// no room left.
func diskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
