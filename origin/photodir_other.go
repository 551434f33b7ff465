//go:build !unix

package origin

import "io/fs"

// checkPrivateDir accepts any directory where ownership is not a Unix uid.
func checkPrivateDir(fs.FileInfo) error { return nil }
