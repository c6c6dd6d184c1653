package uploader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index"
)

// errVanished marks a file whose staged bytes are gone (its staging file
// was removed or truncated behind the index's back): retrying cannot heal
// it.
var errVanished = errors.New("staged data vanished")

// fileReader reads a snapshotted file's content: staged ranges from its
// staging file, the rest from its extents' chunks (through the cache),
// holes as zeros. It is an io.ReaderAt for chunkstore.Rechunk; not safe for
// concurrent use.
type fileReader struct {
	ctx     context.Context
	f       *index.SnapFile
	staging *os.File
	get     func(context.Context, chunkstore.ID) ([]byte, error)
	lastID  chunkstore.ID
	last    []byte
}

func openFileReader(ctx context.Context, stagingDir string, f *index.SnapFile,
	get func(context.Context, chunkstore.ID) ([]byte, error)) (*fileReader, error) {
	r := &fileReader{ctx: ctx, f: f, get: get}
	if len(f.Staging.Ranges) > 0 {
		sf, err := os.Open(filepath.Join(stagingDir, f.Staging.Name))
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("file %d: staging file %s: %w", f.Ino, f.Staging.Name, errVanished)
		}
		if err != nil {
			return nil, fmt.Errorf("file %d: %w", f.Ino, err)
		}
		r.staging = sf
	}
	return r, nil
}

func (r *fileReader) Close() error {
	if r.staging == nil {
		return nil
	}
	return r.staging.Close()
}

// ReadAt fills p with the content at off (io.ReaderAt).
func (r *fileReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.f.Size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.f.Size-off))
	for done := 0; done < n; {
		k, err := r.readSome(p[done:n], off+int64(done))
		if err != nil {
			return done, err
		}
		done += k
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readSome reads a prefix of p at pos from one source (staging, one
// extent, or a hole) and returns its length (> 0).
func (r *fileReader) readSome(p []byte, pos int64) (int, error) {
	rs := r.f.Staging.Ranges
	if d, ok := rs.NextData(pos); ok && d == pos {
		n := int(min(int64(len(p)), rs.NextHole(pos)-pos))
		k, err := r.staging.ReadAt(p[:n], pos)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("file %d: read staging at %d: %w", r.f.Ino, pos, err)
		}
		clear(p[k:n]) // a staging file that ends early reads as zeros
		return n, nil
	}
	limit := int64(len(p))
	if d, ok := rs.NextData(pos); ok {
		limit = min(limit, d-pos)
	}
	exts := r.f.Extents
	i := sort.Search(len(exts), func(k int) bool { return exts[k].End() > pos })
	if i < len(exts) && exts[i].Off <= pos {
		e := exts[i]
		data, err := r.chunk(e.Chunk)
		if err != nil {
			return 0, err
		}
		from := e.ChunkOff + pos - e.Off
		n := min(limit, e.End()-pos)
		if from+n > int64(len(data)) {
			return 0, fmt.Errorf("file %d: extent at %d reaches past chunk %s (%d bytes): %w",
				r.f.Ino, e.Off, e.Chunk, len(data), chunkstore.ErrCorrupt)
		}
		return copy(p[:n], data[from:from+n]), nil
	}
	if i < len(exts) {
		limit = min(limit, exts[i].Off-pos)
	}
	clear(p[:limit])
	return int(limit), nil
}

func (r *fileReader) chunk(id chunkstore.ID) ([]byte, error) {
	if id == r.lastID && r.last != nil {
		return r.last, nil
	}
	data, err := r.get(r.ctx, id)
	if err != nil {
		return nil, fmt.Errorf("file %d: chunk %s: %w", r.f.Ino, id, err)
	}
	r.lastID, r.last = id, data
	return data, nil
}

// directRefs returns f's chunk list when its content is exactly its
// extents, each a whole chunk, tiling [0, Size) with no staged bytes: then
// nothing has to be read.
func directRefs(f *index.SnapFile) ([]chunkstore.Ref, bool) {
	if len(f.Staging.Ranges) > 0 {
		return nil, false
	}
	refs := make([]chunkstore.Ref, 0, len(f.Extents))
	var off int64
	for _, e := range f.Extents {
		if e.Off != off || !e.Whole() {
			return nil, false
		}
		refs = append(refs, chunkstore.Ref{Offset: e.Off, Length: e.Len, ID: e.Chunk})
		off = e.End()
	}
	return refs, off == f.Size
}

// rechunkPlan returns the chunk list Rechunk starts from and the ranges it
// must cut anew: whole-chunk extents that no staged range touches are kept
// (they are the chunks of the content last uploaded or loaded); everything
// else (staged bytes, slices of chunks, holes) is a placeholder to cut, and
// so is the kept chunk just before each placeholder, which may have been
// cut by the end of an earlier, shorter file rather than by its content.
func rechunkPlan(f *index.SnapFile) (old []chunkstore.Ref, edits []chunkstore.Range) {
	var pos int64
	gap := func(end int64) {
		if end <= pos {
			return
		}
		if n := len(old); n > 0 && !old[n-1].ID.IsZero() {
			edits = append(edits, chunkstore.Range{Off: old[n-1].Offset, Len: old[n-1].Length})
		}
		old = append(old, chunkstore.Ref{Offset: pos, Length: end - pos})
		edits = append(edits, chunkstore.Range{Off: pos, Len: end - pos})
		pos = end
	}
	for _, e := range f.Extents {
		if !e.Whole() || e.Off < pos || e.End() > f.Size || len(f.Staging.Ranges.Clip(e.Off, e.Len)) > 0 {
			continue
		}
		gap(e.Off)
		old = append(old, chunkstore.Ref{Offset: e.Off, Length: e.Len, ID: e.Chunk})
		pos = e.End()
	}
	gap(f.Size)
	return old, edits
}

// replacedChunk returns the chunk that held most of [off, off+n) before the
// file was edited (its extents still map the old content under staged
// bytes): the base to store a chunk cut there as a delta of.
func replacedChunk(exts []index.SnapExtent, off, n int64) (chunkstore.ID, bool) {
	i := sort.Search(len(exts), func(k int) bool { return exts[k].End() > off })
	var best chunkstore.ID
	var most int64
	for ; i < len(exts) && exts[i].Off < off+n; i++ {
		if c, ok := exts[i].Clip(off, n); ok && c.Len > most {
			best, most = exts[i].Chunk, c.Len
		}
	}
	return best, most > 0
}
