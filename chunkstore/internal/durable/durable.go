// Package durable holds the two file-system steps that make a local write
// survive a crash: fsync of a directory after an entry in it was created,
// renamed or removed, and writing a file's bytes with an optional fsync.
// The local store and the chunk cache share them.
package durable

import (
	"errors"
	"os"
	"syscall"
)

// SyncDir fsyncs directory dir so that entries created, renamed or removed
// in it are durable. File systems that cannot fsync a directory (EINVAL)
// are taken as durable already.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) {
		return nil
	}
	return err
}

// WriteFile creates (or truncates) name with data and mode 0600, fsyncing
// it before it returns when sync is set. It does not sync the directory.
func WriteFile(name string, data []byte, sync bool) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
