package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cloudfs/cloudfs/index"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// fileData is the shared state of an open regular file (see the package
// doc). refs and ptHandles are guarded by FS.mu, everything else by mu.
type fileData struct {
	fsys *FS
	ino  uint64
	refs int
	mode uint32 // as loaded (passthrough eligibility)

	mu sync.RWMutex
	ptState

	staging     *os.File // open while the file has a staging file
	stagingName string
	// stagingFresh: the staging file came from the pool and no index row
	// names it yet (no commit recorded it): the last release gives it
	// back to the pool.
	stagingFresh bool
	ranges       index.Ranges // every staged range (committed and pending)
	added        index.Ranges // written since the last commit
	cut          index.Ranges // cut since the last commit
	size         int64
	mtime        int64
	ctime        int64
	dirty        bool // added/cut/size/times ahead of the index
	unpersisted  bool // index.MarkUnpersisted called since the last commit
	// dataUnsynced: the staging file may hold bytes not yet fdatasynced
	// (a durable commit syncs it first).
	dataUnsynced bool
	// wholeChunks: a ranged read of this file met a chunk without an
	// outboard (ChunkReader.ReadChunkRange); its random reads fetch whole
	// chunks from then on, as the file's other chunks are likely alike.
	wholeChunks atomic.Bool
}

// acquire returns the file data of inode ino, loading it from the index on
// first use; release it with release.
func (f *FS) acquire(ctx context.Context, ino uint64) (*fileData, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fd := f.files[ino]; fd != nil {
		fd.refs++
		return fd, nil
	}
	a, err := f.idx.GetAttr(bg(ctx), ino)
	if err != nil {
		return nil, err
	}
	if !a.IsRegular() {
		return nil, fmt.Errorf("open data of %d: %w", ino, index.ErrInvalid)
	}
	st, err := f.idx.Staging(bg(ctx), ino)
	if err != nil {
		return nil, err
	}
	// Staged bytes may be unsynced: closes do not fdatasync (Flush).
	fd := &fileData{fsys: f, ino: ino, refs: 1, mode: a.Mode, size: a.Size, mtime: a.Mtime, ctime: a.Ctime,
		stagingName: st.Name, ranges: st.Ranges, dataUnsynced: len(st.Ranges) > 0}
	if st.Name != "" {
		fd.staging, err = os.OpenFile(filepath.Join(f.stagingDir, st.Name), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open staging of %d: %w", ino, err)
		}
	}
	f.files[ino] = fd
	return fd, nil
}

// acquireCreated is acquire for the regular file a that Create just made:
// it has no data and no staging row, so nothing is read from the index.
func (f *FS) acquireCreated(a index.Attr) *fileData {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fd := f.files[a.Ino]; fd != nil { // cannot happen: the number is new
		fd.refs++
		return fd
	}
	fd := &fileData{fsys: f, ino: a.Ino, refs: 1, mode: a.Mode, size: a.Size, mtime: a.Mtime, ctime: a.Ctime}
	f.files[a.Ino] = fd
	return fd
}

// release drops a reference taken by acquire. The last one (once a
// passthrough session's handles are all gone, see ptReleased) ends the
// file data: finalReleaseLocked.
func (f *FS) release(ctx context.Context, fd *fileData) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fd.refs--
	if fd.refs > 0 || fd.ptHandles > 0 {
		return
	}
	f.finalReleaseLocked(ctx, fd)
}

// finalReleaseLocked ends a file data nobody uses any more: it ends its
// passthrough session, commits what is pending (a mapping may have written
// after the last close; not durably, as close), closes the staging file
// and drops a staging file that the uploader emptied. f.mu is held.
func (f *FS) finalReleaseLocked(ctx context.Context, fd *fileData) {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	session := fd.pt
	fd.ptRefreshLocked()
	fd.pt = false
	if err := fd.commitLocked(ctx, false); err != nil {
		// Keep the pending state in memory and retry (release_retry.go);
		// an open before then commits it at its own close or release.
		f.log.Error("commit on release (retried)", zap.Uint64("ino", fd.ino), zap.Error(err))
		f.parkLocked(fd)
		return
	}
	if session {
		// The last commit of the session kept the mark (or there was
		// none since): the staging file is quiet now.
		f.idx.EndUnpersisted(fd.ino)
		fd.unpersisted = false
	}
	delete(f.files, fd.ino)
	if fd.stagingFresh {
		if err := f.pool.put(fd.stagingName, fd.staging); err != nil {
			f.log.Error("return staging file", zap.Uint64("ino", fd.ino), zap.Error(err))
		}
		fd.staging, fd.stagingName, fd.stagingFresh = nil, "", false
		return
	}
	if fd.staging != nil {
		if err := fd.staging.Close(); err != nil {
			f.log.Error("close staging file", zap.Uint64("ino", fd.ino), zap.Error(err))
		}
		fd.staging = nil
	}
	if len(fd.ranges) == 0 && fd.stagingName != "" {
		name, err := f.idx.DropEmptyStaging(bg(ctx), fd.ino)
		if err != nil {
			f.log.Error("drop staging", zap.Uint64("ino", fd.ino), zap.Error(err))
		} else if name != "" {
			f.removeStaging(name)
		}
	}
}

// setAttr applies ch to inode ino. An open file's writes not committed
// yet are committed first, in the same transaction, so that their mtime
// does not later overwrite the one set here; the open file takes the
// times set.
func (f *FS) setAttr(ctx context.Context, ino uint64, ch index.AttrChange) (index.Attr, error) {
	f.mu.Lock()
	fd := f.files[ino]
	f.mu.Unlock()
	if fd == nil {
		return f.idx.SetAttr(bg(ctx), ino, ch)
	}
	fd.mu.Lock()
	defer fd.mu.Unlock()
	a, err := fd.commitAttrLocked(ctx, false, nil, &ch)
	if err != nil {
		return a, err
	}
	fd.mtime, fd.ctime = a.Mtime, a.Ctime
	return a, nil
}

// setOpenTimes gives the open file data of a's inode (if any) the times
// just set in the index (utimens, chmod, chown), so that a later commit or
// refresh of it does not bring back the times it held before.
func (f *FS) setOpenTimes(a index.Attr) {
	f.mu.Lock()
	fd := f.files[a.Ino]
	f.mu.Unlock()
	if fd == nil {
		return
	}
	fd.mu.Lock()
	fd.mtime, fd.ctime = a.Mtime, a.Ctime
	fd.mu.Unlock()
}

func (f *FS) removeStaging(name string) {
	if err := os.Remove(filepath.Join(f.stagingDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		f.log.Error("remove staging file", zap.String("name", name), zap.Error(err))
	}
}

// overlay lays the pending size and times over a.
func (fd *fileData) overlay(a *index.Attr) {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	fd.ptRefreshLocked()
	if fd.dirty {
		a.Size, a.Mtime, a.Ctime = fd.size, fd.mtime, fd.ctime
	}
}

// commitLocked writes the pending state to the index. Every commit
// survives kill -9 of the daemon. Durable: the staging file's data and the
// index (this commit and every earlier one) are on disk when it returns,
// so they survive power loss too (fsync).
func (fd *fileData) commitLocked(ctx context.Context, durable bool) error {
	return fd.commitInsertLocked(ctx, durable, nil)
}

// commitInsertLocked is commitLocked with extents inserted after the cut
// (the clones of copy_file_range).
func (fd *fileData) commitInsertLocked(ctx context.Context, durable bool, insert []index.Extent) error {
	_, err := fd.commitAttrLocked(ctx, durable, insert, nil)
	return err
}

// commitAttrLocked is commitInsertLocked that, with ch set, also applies
// the attribute change ch in the transaction that commits the data (or
// alone when there is none to commit), and returns the attributes that
// results in (with ch only).
func (fd *fileData) commitAttrLocked(ctx context.Context, durable bool, insert []index.Extent, ch *index.AttrChange) (index.Attr, error) {
	fd.ptRefreshLocked()
	if durable && fd.staging != nil && fd.dataUnsynced {
		if err := unix.Fdatasync(int(fd.staging.Fd())); err != nil {
			return index.Attr{}, fmt.Errorf("fdatasync staging of %d: %w", fd.ino, err)
		}
		fd.dataUnsynced = false
	}
	if hook := fd.fsys.faults.commit; hook != nil && fd.dirty {
		if err := hook(fd.ino); err != nil {
			return index.Attr{}, err
		}
	}
	if !fd.dirty {
		if ch != nil {
			return fd.fsys.idx.SetAttr(bg(ctx), fd.ino, *ch)
		}
		if durable {
			// Earlier commits of this file may not be durable yet;
			// Sync costs nothing when every commit is.
			return index.Attr{}, fd.fsys.idx.Sync(bg(ctx))
		}
		return index.Attr{}, nil
	}
	c := index.DataCommit{
		Size: fd.size, Mtime: fd.mtime, Ctime: fd.ctime,
		StagingName: fd.stagingName,
		Cut:         fd.cut,
		AddStaged:   fd.added,
		Insert:      insert,
		Durable:     durable,
		// The session's staging file keeps changing behind the index.
		KeepUnpersisted: fd.ptWriting(),
	}
	var (
		st  index.Staging
		a   index.Attr
		err error
	)
	if ch != nil {
		st, a, err = fd.fsys.idx.CommitDataAttr(bg(ctx), fd.ino, c, *ch)
	} else {
		st, err = fd.fsys.idx.CommitData(bg(ctx), fd.ino, c)
	}
	if err != nil {
		return a, err
	}
	fd.ranges, fd.added, fd.cut = st.Ranges, nil, nil
	fd.dirty, fd.unpersisted = false, fd.ptWriting()
	if fd.stagingName != "" {
		fd.stagingFresh = false // the commit named it
	}
	return a, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// ensureStagingLocked opens (creating) the staging file for writing.
func (fd *fileData) ensureStagingLocked() error {
	if fd.staging != nil {
		return nil
	}
	if fd.stagingName == "" {
		name, f, err := fd.fsys.pool.take()
		if err != nil {
			return fmt.Errorf("staging for %d: %w", fd.ino, err)
		}
		fd.stagingName, fd.staging, fd.stagingFresh = name, f, true
		return nil
	}
	f, err := os.OpenFile(filepath.Join(fd.fsys.stagingDir, fd.stagingName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("create staging of %d: %w", fd.ino, err)
	}
	fd.staging = f
	return nil
}

// beginChangeLocked marks the file changed in memory.
func (fd *fileData) beginChangeLocked() {
	if !fd.unpersisted {
		fd.fsys.idx.MarkUnpersisted(fd.ino)
		fd.unpersisted = true
	}
	fd.dirty = true
	fd.mtime = nowNS()
	fd.ctime = fd.mtime
}

// write stores data at off (at the end with appendMode) in the staging file.
func (fd *fileData) write(data []byte, off int64, appendMode bool) (int, error) {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	fd.ptRefreshLocked()
	if appendMode {
		off = fd.size
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if off+int64(len(data)) > maxFileSize {
		return 0, syscall.EFBIG
	}
	if err := fd.fsys.space.take(int64(len(data))); err != nil {
		return 0, err
	}
	if err := fd.ensureStagingLocked(); err != nil {
		return 0, err
	}
	fd.beginChangeLocked()
	n, err := fd.staging.WriteAt(data, off)
	fd.dataUnsynced = true
	if n > 0 {
		fd.ranges = fd.ranges.Add(off, int64(n))
		fd.added = fd.added.Add(off, int64(n))
		fd.size = max(fd.size, off+int64(n))
	}
	fd.ptRebaseLocked()
	if err != nil {
		return n, fmt.Errorf("write staging of %d: %w", fd.ino, err)
	}
	return n, nil
}

// readData reads the bytes at offset off, as many as dest holds up to
// the end of the file: staged bytes from the staging file, the rest
// through the extents and the chunk cache, holes as zeros. Only chunks
// under bytes that are not staged are read; a random read (not part of a
// sequential run) fetches only the parts of them it needs. It returns
// dest[:n], or when a single extent maps the whole range and nothing in it
// is staged, the chunk's own bytes (shared with the chunk cache's memory
// layer: the caller must not modify them), which spares copying every byte
// of a read once more.
func (fd *fileData) readData(ctx context.Context, dest []byte, off int64, random bool) ([]byte, error) {
	fd.mu.RLock()
	defer fd.mu.RUnlock()
	if off >= fd.size || len(dest) == 0 {
		return nil, nil
	}
	n := min(int64(len(dest)), fd.size-off)
	buf := dest[:n]
	staged := fd.ranges.Clip(off, n)
	if staged.Contains(off, n) {
		clear(buf) // a staging file shorter than its ranges reads as zeros
	} else {
		exts, err := fd.fsys.idx.Extents(bg(ctx), fd.ino, off, n)
		if err != nil {
			return nil, err
		}
		// Extents come sorted and do not overlap: the bytes between
		// the ones copied are holes (or staged, read below).
		pos := off
		for _, e := range exts {
			c, ok := e.Clip(off, n)
			if !ok || staged.Contains(c.Off, c.Len) {
				continue
			}
			data, err := fd.readExtent(ctx, c, random)
			if err != nil {
				return nil, fmt.Errorf("read %d at %d: chunk %s: %w", fd.ino, c.Off, c.Chunk, err)
			}
			if c.Off == off && c.Len == n && len(staged) == 0 {
				return data, nil
			}
			if c.Off > pos {
				clear(buf[pos-off : c.Off-off])
			}
			copy(buf[c.Off-off:], data)
			pos = max(pos, c.End())
		}
		clear(buf[pos-off:])
	}
	for _, r := range staged {
		if _, err := fd.staging.ReadAt(buf[r.Off-off:r.End()-off], r.Off); err != nil && err != io.EOF {
			return nil, fmt.Errorf("read staging of %d: %w", fd.ino, err)
		}
	}
	return buf, nil
}

// readExtent returns the c.Len bytes of chunk c.Chunk that extent c maps.
func (fd *fileData) readExtent(ctx context.Context, c index.Extent, random bool) ([]byte, error) {
	if random && !fd.wholeChunks.Load() {
		data, noOutboard, err := fd.fsys.chunks.ReadChunkRange(ctx, c.Chunk, c.ChunkOff, c.Len)
		if noOutboard {
			fd.wholeChunks.Store(true)
		}
		if err != nil {
			return nil, err
		}
		if int64(len(data)) != c.Len {
			return nil, fmt.Errorf("extent of %d bytes at %d beyond the chunk's end", c.Len, c.ChunkOff)
		}
		return data, nil
	}
	data, err := fd.fsys.chunks.ReadChunk(ctx, c.Chunk)
	if err != nil {
		return nil, err
	}
	if c.ChunkOff+c.Len > int64(len(data)) {
		return nil, fmt.Errorf("extent beyond the %d bytes of the chunk", len(data))
	}
	return data[c.ChunkOff : c.ChunkOff+c.Len], nil
}

// truncate sets the size (truncate(2), O_TRUNC) and commits.
func (fd *fileData) truncate(ctx context.Context, size int64) error {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	fd.ptRefreshLocked()
	if size == fd.size {
		return nil
	}
	fd.beginChangeLocked()
	if size < fd.size {
		fd.cutLocked(size, index.ToEnd(size))
		if fd.staging != nil {
			if err := fd.staging.Truncate(size); err != nil {
				return fmt.Errorf("truncate staging of %d: %w", fd.ino, err)
			}
			fd.dataUnsynced = true
		}
	} else if fd.pt {
		// In a session the kernel reads the staging file itself: it
		// must reach the new size (a sparse extension reads as zeros).
		if err := fd.staging.Truncate(size); err != nil {
			return fmt.Errorf("extend staging of %d: %w", fd.ino, err)
		}
		fd.ranges = fd.ranges.Add(fd.size, size-fd.size)
		fd.added = fd.added.Add(fd.size, size-fd.size)
	}
	fd.size = size
	fd.ptRebaseLocked()
	return fd.commitLocked(ctx, false)
}

// cutLocked removes [off, off+n) from the staged ranges and (at the next
// commit) the extents: those bytes become a hole.
func (fd *fileData) cutLocked(off, n int64) {
	fd.ranges = fd.ranges.Remove(off, n)
	fd.added = fd.added.Remove(off, n)
	fd.cut = fd.cut.Add(off, n)
}
