package chunkstore

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/restic/chunker"
)

// Chunk size bounds and the average chunk size of new volumes.
//
// restic/chunker cuts where the low AverageBits bits of the rolling Rabin
// fingerprint are zero, so the expected distance between cuts (beyond
// MinSize) is 2^AverageBits bytes. New volumes use 512 KiB min, 19 average
// bits and 8 MiB max: an expected chunk of 1 MiB (MinSize plus the 512 KiB
// geometric tail), the average the design asks for. restic's own setting
// (20 bits, 1.5 MiB expected; 1.41 MiB measured over 48 MiB of random data)
// gives fewer, larger chunks, and so coarser deduplication of edits.
const (
	DefaultMinSize     = 512 << 10
	DefaultMaxSize     = 8 << 20
	DefaultAverageBits = 19
)

// TestPol is a fixed irreducible polynomial of degree 53 for tests and
// benchmarks, so chunk boundaries are repeatable. Volumes use a random one.
const TestPol = chunker.Pol(0x3DA3358B4DC173)

// windowSize is restic/chunker's rolling-hash window; MinSize may not be
// smaller.
const windowSize = 64

// Params are the chunking parameters of a volume. All machines that mount a
// volume must use the same Params, or equal content is cut differently and
// no longer deduplicates.
type Params struct {
	// Pol is the irreducible polynomial of the Rabin fingerprint.
	Pol chunker.Pol `json:"polynomial"`
	// MinSize and MaxSize bound a chunk's length (the last chunk of a file
	// may be shorter than MinSize).
	MinSize uint `json:"min_size"`
	MaxSize uint `json:"max_size"`
	// AverageBits sets the expected distance between cuts beyond MinSize to
	// 2^AverageBits bytes. Zero means DefaultAverageBits.
	AverageBits int `json:"average_bits"`
}

// DefaultParams returns the default size bounds with polynomial pol.
func DefaultParams(pol chunker.Pol) Params {
	return Params{Pol: pol, MinSize: DefaultMinSize, MaxSize: DefaultMaxSize, AverageBits: DefaultAverageBits}
}

// averageBits returns p.AverageBits with zero meaning the default.
func (p Params) averageBits() int {
	if p.AverageBits == 0 {
		return DefaultAverageBits
	}
	return p.AverageBits
}

// irreducibleCache memoises Pol.Irreducible (a volume has one polynomial,
// and testing it costs more than chunking a small file: NewChunker runs
// Validate for every file the uploader chunks). Pol -> bool.
var irreducibleCache sync.Map

func irreducible(p chunker.Pol) bool {
	if v, ok := irreducibleCache.Load(p); ok {
		return v.(bool)
	}
	ok := p.Irreducible()
	irreducibleCache.Store(p, ok)
	return ok
}

// Validate reports whether p can be used for chunking.
func (p Params) Validate() error {
	switch {
	case p.Pol == 0 || p.Pol.Deg() > 53 || p.Pol.Deg() < 9:
		return fmt.Errorf("chunker params: polynomial %v must have a degree between 9 and 53", p.Pol)
	case !irreducible(p.Pol):
		return fmt.Errorf("chunker params: polynomial %v is not irreducible", p.Pol)
	case p.MinSize < windowSize:
		return fmt.Errorf("chunker params: min size %d is below the window size %d", p.MinSize, windowSize)
	case p.MaxSize < p.MinSize || p.MaxSize > MaxChunkSize:
		return fmt.Errorf("chunker params: max size %d must be between min size %d and %d", p.MaxSize, p.MinSize, MaxChunkSize)
	case p.averageBits() < 1 || p.averageBits() > 30:
		return fmt.Errorf("chunker params: average bits %d must be between 1 and 30", p.AverageBits)
	}
	return nil
}

// Chunk is one piece of content cut by a Chunker.
type Chunk struct {
	// Offset is the chunk's position in the file.
	Offset int64
	// ID is the BLAKE3-256 hash of Data.
	ID ID
	// Data is the chunk's content. It is only valid until the next call
	// of the Chunker (or callback) that produced it.
	Data []byte
}

// Ref returns where c lies in its file and which chunk it is.
func (c Chunk) Ref() Ref { return Ref{Offset: c.Offset, Length: int64(len(c.Data)), ID: c.ID} }

// Ref places a chunk in a file: Length bytes at Offset are chunk ID.
type Ref struct {
	Offset int64
	Length int64
	ID     ID
}

// End returns the offset just past r.
func (r Ref) End() int64 { return r.Offset + r.Length }

// Chunker cuts a stream into content-defined chunks. It is not safe for
// concurrent use.
type Chunker struct {
	c   *chunker.Chunker
	off int64
	buf []byte
}

// NewChunker returns a Chunker reading r, whose first byte is at file offset
// start. start must be a chunk boundary of the file (0, or the end of a chunk
// a Chunker cut with the same Params), or the chunks cut will differ from
// those of chunking the whole file.
func NewChunker(r io.Reader, start int64, p Params) (*Chunker, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	c := chunker.NewWithBoundaries(r, p.Pol, p.MinSize, p.MaxSize)
	c.SetAverageBits(p.averageBits())
	return &Chunker{c: c, off: start}, nil
}

// Next returns the next chunk, or io.EOF after the last one. An empty stream
// has no chunks. Read errors are returned wrapped.
func (c *Chunker) Next() (Chunk, error) {
	ch, err := c.c.Next(c.buf)
	if err == io.EOF {
		return Chunk{}, io.EOF
	}
	if err != nil {
		return Chunk{}, fmt.Errorf("chunk at offset %d: %w", c.off, err)
	}
	c.buf = ch.Data
	out := Chunk{Offset: c.off, ID: Hash(ch.Data), Data: ch.Data}
	c.off += int64(ch.Length)
	return out, nil
}

// Range is a byte range [Off, Off+Len) of a file.
type Range struct {
	Off, Len int64
}

// RechunkStats says how much work Rechunk did.
type RechunkStats struct {
	// Chunks and Bytes count the chunks cut (passed to fn) and their bytes.
	Chunks int
	Bytes  int64
	// Reused counts the old chunks kept without reading them.
	Reused int
}

// Rechunk returns the chunk list of a file that was chunked as old and then
// edited in place: the bytes in edits were overwritten and the file now has
// size bytes (a size change counts as an edit of the tail). r reads the
// edited file. Chunks that no edit touched are kept without reading them;
// chunking restarts at the start of each touched chunk and runs until a cut
// lands on an old boundary followed by an untouched chunk. The result equals
// chunking the whole edited file from offset 0.
//
// fn is called, in file order, with every chunk that was cut anew (some may
// equal an old chunk); its Data is valid only during the call. An error from
// fn stops Rechunk and is returned. old must be a contiguous list from
// offset 0 (empty for a new file) cut with the same Params.
func Rechunk(r io.ReaderAt, size int64, old []Ref, edits []Range, p Params, fn func(Chunk) error) ([]Ref, RechunkStats, error) {
	var st RechunkStats
	if err := validateRefs(old); err != nil {
		return nil, st, err
	}
	dirty := dirtyChunks(old, size, edits)
	var out []Ref
	i := 0
	for i < len(old) && old[i].Offset < size {
		if !dirty[i] {
			out = append(out, old[i])
			st.Reused++
			i++
			continue
		}
		next, err := recutFrom(r, size, old[i].Offset, old, dirty, p, fn, &out, &st)
		if err != nil {
			return nil, st, err
		}
		i = next
	}
	if end := refsEnd(out); end < size {
		// A new file (no old chunks): cut it all.
		if _, err := recutFrom(r, size, end, nil, nil, p, fn, &out, &st); err != nil {
			return nil, st, err
		}
	}
	return out, st, nil
}

// recutFrom chunks from start (a boundary) to EOF or until a cut lands on
// the start of a clean old chunk, whose index it returns.
func recutFrom(r io.ReaderAt, size, start int64, old []Ref, dirty []bool, p Params, fn func(Chunk) error, out *[]Ref, st *RechunkStats) (int, error) {
	// take hands a chunk cut anew to fn and records it.
	take := func(ch Chunk) (Ref, error) {
		if err := fn(ch); err != nil {
			return Ref{}, err
		}
		ref := ch.Ref()
		*out = append(*out, ref)
		st.Chunks++
		st.Bytes += ref.Length
		return ref, nil
	}
	if n := size - start; n > 0 && n <= int64(p.MinSize) {
		// The chunker never cuts before MinSize: what is left is one
		// chunk. Most small files end here, and building a chunker (a
		// 512 KiB buffer) cost more than hashing them.
		if err := p.Validate(); err != nil {
			return 0, err
		}
		data := make([]byte, n)
		if got, err := r.ReadAt(data, start); got < len(data) {
			return 0, fmt.Errorf("rechunk: read at %d: %w", start, err)
		}
		if _, err := take(Chunk{Offset: start, ID: Hash(data), Data: data}); err != nil {
			return 0, err
		}
		return len(old), nil
	}
	c, err := NewChunker(io.NewSectionReader(r, start, size-start), start, p)
	if err != nil {
		return 0, err
	}
	for {
		ch, err := c.Next()
		if err == io.EOF {
			return len(old), nil
		}
		if err != nil {
			return 0, fmt.Errorf("rechunk: %w", err)
		}
		ref, err := take(ch)
		if err != nil {
			return 0, err
		}
		end := ref.End()
		if end >= size {
			return len(old), nil
		}
		// Back in step: the cut is an old boundary and the chunk there is
		// clean, so everything from it on is cut as before.
		j := sort.Search(len(old), func(k int) bool { return old[k].Offset >= end })
		if j < len(old) && old[j].Offset == end && !dirty[j] {
			return j, nil
		}
	}
}

// dirtyChunks marks the old chunks that edits overlap, the chunk holding
// the last byte before a size change, and every chunk at or past size.
func dirtyChunks(old []Ref, size int64, edits []Range) []bool {
	dirty := make([]bool, len(old))
	mark := func(off, end int64) {
		// First chunk whose end is past off.
		i := sort.Search(len(old), func(k int) bool { return old[k].End() > off })
		for ; i < len(old) && old[i].Offset < end; i++ {
			dirty[i] = true
		}
	}
	for _, e := range edits {
		if e.Len > 0 {
			mark(e.Off, e.Off+e.Len)
		}
	}
	if oldSize := refsEnd(old); oldSize != size && len(old) > 0 {
		lo := min(oldSize, size)
		// The chunk holding byte lo-1 was cut by EOF (growth) or loses its
		// tail (shrink); it and everything after it are re-cut.
		mark(max(lo-1, 0), oldSize)
	}
	return dirty
}

// refsEnd returns the end of the last ref, 0 for none.
func refsEnd(refs []Ref) int64 {
	if len(refs) == 0 {
		return 0
	}
	return refs[len(refs)-1].End()
}

var errBadRefs = errors.New("chunk list is not contiguous from offset 0")

// validateRefs checks that refs tile [0, end) with non-empty chunks.
func validateRefs(refs []Ref) error {
	var off int64
	for i, r := range refs {
		if r.Offset != off || r.Length <= 0 {
			return fmt.Errorf("rechunk: ref %d at %d+%d, want offset %d: %w", i, r.Offset, r.Length, off, errBadRefs)
		}
		off = r.End()
	}
	return nil
}
