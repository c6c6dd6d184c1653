package fs

// copy_file_range: a clone of the source's extents (no chunk bytes move)
// and a copy of its staged bytes inside the kernel.

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/cloudfs/cloudfs/index"
	gofs "github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"
)

var _ = (gofs.NodeCopyFileRanger)((*node)(nil))

// CopyFileRange clones: the target range gets the source's extents (no
// chunk bytes move) and a copy of the source's staged bytes, made by the
// kernel between the two staging files.
func (n *node) CopyFileRange(ctx context.Context, fhIn gofs.FileHandle, offIn uint64, out *gofs.Inode,
	fhOut gofs.FileHandle, offOut uint64, length uint64, flags uint64) (uint32, syscall.Errno) {
	src, ok1 := fhIn.(*handle)
	dst, ok2 := fhOut.(*handle)
	if !ok1 || !ok2 || flags != 0 {
		return 0, syscall.EINVAL
	}
	if length > 1<<30 {
		length = 1 << 30 // the reply counts bytes in 32 bits
	}
	copied, err := copyRange(ctx, src.fd, int64(offIn), dst.fd, int64(offOut), int64(length))
	if err != nil {
		return 0, n.fsys.toErrno("copy_file_range", err)
	}
	return uint32(copied), 0
}

func copyRange(ctx context.Context, src *fileData, srcOff int64, dst *fileData, dstOff, n int64) (int64, error) {
	if srcOff < 0 || dstOff < 0 || n < 0 {
		return 0, syscall.EINVAL
	}
	if src == dst {
		src.mu.Lock()
		defer src.mu.Unlock()
		if srcOff < dstOff+n && dstOff < srcOff+n {
			return 0, syscall.EINVAL // overlapping ranges of one file
		}
	} else {
		first, second := src, dst
		if dst.ino < src.ino {
			first, second = dst, src
		}
		first.mu.Lock()
		defer first.mu.Unlock()
		second.mu.Lock()
		defer second.mu.Unlock()
	}
	src.ptRefreshLocked()
	dst.ptRefreshLocked()
	n = min(n, src.size-srcOff)
	if n <= 0 {
		return 0, nil
	}
	if dstOff+n > maxFileSize {
		return 0, syscall.EFBIG
	}
	exts, err := src.fsys.idx.Extents(bg(ctx), src.ino, srcOff, n)
	if err != nil {
		return 0, err
	}
	shift := dstOff - srcOff
	var clones []index.Extent
	for _, e := range exts {
		if c, ok := e.Clip(srcOff, n); ok {
			c.Off += shift
			clones = append(clones, c)
		}
	}
	staged := src.ranges.Clip(srcOff, n)
	if dst.pt && len(clones) > 0 {
		// The kernel reads a file in a passthrough session from its
		// staging file alone: the clone's bytes must be there.
		return copyMaterialize(ctx, src, srcOff, dst, dstOff, n, clones, staged)
	}
	if len(staged) > 0 {
		if err := dst.fsys.space.take(staged.Bytes()); err != nil {
			return 0, err
		}
		if err := dst.ensureStagingLocked(); err != nil {
			return 0, err
		}
	}
	dst.beginChangeLocked()
	dst.cutLocked(dstOff, n)
	for _, r := range staged {
		if err := copyBytes(src, dst, r.Off, r.Off+shift, r.Len); err != nil {
			return 0, err
		}
		dst.ranges = dst.ranges.Add(r.Off+shift, r.Len)
		dst.added = dst.added.Add(r.Off+shift, r.Len)
	}
	dst.size = max(dst.size, dstOff+n)
	if err := dst.ptSyncSizeLocked(); err != nil {
		return 0, err
	}
	if len(staged) > 0 {
		dst.dataUnsynced = true
	}
	// The clones go in with this commit, after its cut.
	return n, dst.commitInsertLocked(ctx, false, clones)
}

// copyMaterialize is copyRange into a file in a passthrough session (both
// file datas locked): the source's chunks are read and written into the
// target's staging file, and its staged bytes copied inside the kernel.
func copyMaterialize(ctx context.Context, src *fileData, srcOff int64, dst *fileData, dstOff, n int64,
	clones []index.Extent, staged index.Ranges) (int64, error) {
	shift := dstOff - srcOff
	if err := dst.fsys.space.take(n); err != nil {
		return 0, err
	}
	if err := dst.ensureStagingLocked(); err != nil {
		return 0, err
	}
	dst.beginChangeLocked()
	dst.cutLocked(dstOff, n)
	// What neither a clone nor a staged range covers is a hole: zeros.
	if err := unix.Fallocate(int(dst.staging.Fd()), fallocPunchHole|fallocKeepSize, dstOff, n); err != nil &&
		!errors.Is(err, syscall.EOPNOTSUPP) {
		return 0, err
	}
	for _, c := range clones {
		data, err := dst.fsys.chunks.ReadChunk(ctx, c.Chunk)
		if err != nil {
			return 0, fmt.Errorf("copy chunk %s: %w", c.Chunk, err)
		}
		if c.ChunkOff+c.Len > int64(len(data)) {
			return 0, fmt.Errorf("copy: extent beyond the %d bytes of chunk %s", len(data), c.Chunk)
		}
		if _, err := dst.staging.WriteAt(data[c.ChunkOff:c.ChunkOff+c.Len], c.Off); err != nil {
			return 0, err
		}
	}
	for _, r := range staged {
		if err := copyBytes(src, dst, r.Off, r.Off+shift, r.Len); err != nil {
			return 0, err
		}
	}
	dst.size = max(dst.size, dstOff+n)
	if err := dst.ptSyncSizeLocked(); err != nil {
		return 0, err
	}
	dst.ranges = dst.ranges.Add(dstOff, n)
	dst.added = dst.added.Add(dstOff, n)
	dst.dataUnsynced = true
	return n, dst.commitLocked(ctx, false)
}

// copyBytes copies n staged bytes between staging files inside the kernel
// (a reflink where the cache disk supports it).
func copyBytes(src, dst *fileData, srcOff, dstOff, n int64) error {
	for n > 0 {
		so, do := srcOff, dstOff
		c, err := unix.CopyFileRange(int(src.staging.Fd()), &so, int(dst.staging.Fd()), &do, int(n), 0)
		if err != nil {
			return err
		}
		if c == 0 { // the staging file ends early: the rest reads as zeros
			return nil
		}
		srcOff, dstOff, n = srcOff+int64(c), dstOff+int64(c), n-int64(c)
	}
	return nil
}
