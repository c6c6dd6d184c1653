package index

import (
	"errors"
	"fmt"
)

// Sentinel errors. Methods return them wrapped with the operation; check
// them with errors.Is. The file system maps each to one errno.
var (
	ErrNotFound    = errors.New("no such file or directory") // ENOENT
	ErrExist       = errors.New("file exists")               // EEXIST
	ErrNotEmpty    = errors.New("directory not empty")       // ENOTEMPTY
	ErrNotDir      = errors.New("not a directory")           // ENOTDIR
	ErrIsDir       = errors.New("is a directory")            // EISDIR
	ErrNoData      = errors.New("no such attribute")         // ENODATA
	ErrInvalid     = errors.New("invalid argument")          // EINVAL
	ErrNotSymlink  = errors.New("not a symlink")             // EINVAL for readlink
	ErrTooManyLink = errors.New("too many links")            // EMLINK
	ErrNotLoaded   = errors.New("directory not loaded")      // see NotLoadedError
	ErrChanged     = errors.New("file changed meanwhile")    // ReplaceContent lost a race
	ErrFull        = errors.New("no space left on device")   // ENOSPC (SQLITE_FULL)
	// ErrBadRemote: an object from the remote parses but breaks a rule
	// the index checks (remote_check.go); EIO, logged.
	ErrBadRemote = errors.New("remote tree fails its checks")
)

// NotLoadedError says which directory's entries must be loaded from its
// remote tree (FillDir) before the operation can run. It matches
// ErrNotLoaded under errors.Is.
type NotLoadedError struct{ Dir uint64 }

func (e *NotLoadedError) Error() string { return fmt.Sprintf("directory %d not loaded", e.Dir) }

// Is makes errors.Is(err, ErrNotLoaded) true.
func (e *NotLoadedError) Is(target error) bool { return target == ErrNotLoaded }
