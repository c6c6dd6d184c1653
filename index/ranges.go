package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Range is the byte range [Off, Off+Len) of a file.
type Range struct {
	Off, Len int64
}

// End returns the first offset after r.
func (r Range) End() int64 { return r.Off + r.Len }

// ToEnd is the length that makes a Range reach the largest file offset.
func ToEnd(off int64) int64 { return math.MaxInt64 - off }

// Ranges is a set of bytes as sorted, non-overlapping, non-adjacent ranges.
// Methods never modify their receiver; they return a new set.
type Ranges []Range

// Add returns rs with [off, off+n) added.
func (rs Ranges) Add(off, n int64) Ranges {
	if n <= 0 {
		return rs
	}
	end := off + n
	out := make(Ranges, 0, len(rs)+1)
	i := 0
	for ; i < len(rs) && rs[i].End() < off; i++ {
		out = append(out, rs[i])
	}
	for ; i < len(rs) && rs[i].Off <= end; i++ {
		off = min(off, rs[i].Off)
		end = max(end, rs[i].End())
	}
	out = append(out, Range{off, end - off})
	return append(out, rs[i:]...)
}

// AddAll returns the union of rs and other.
func (rs Ranges) AddAll(other Ranges) Ranges {
	for _, r := range other {
		rs = rs.Add(r.Off, r.Len)
	}
	return rs
}

// Remove returns rs without [off, off+n).
func (rs Ranges) Remove(off, n int64) Ranges {
	if n <= 0 {
		return rs
	}
	end := off + n
	out := make(Ranges, 0, len(rs)+1)
	for _, r := range rs {
		if r.End() <= off || r.Off >= end {
			out = append(out, r)
			continue
		}
		if r.Off < off {
			out = append(out, Range{r.Off, off - r.Off})
		}
		if r.End() > end {
			out = append(out, Range{end, r.End() - end})
		}
	}
	return out
}

// RemoveAll returns rs without any byte of other.
func (rs Ranges) RemoveAll(other Ranges) Ranges {
	for _, r := range other {
		rs = rs.Remove(r.Off, r.Len)
	}
	return rs
}

// Clip returns the parts of rs inside [off, off+n).
func (rs Ranges) Clip(off, n int64) Ranges {
	end := off + n
	var out Ranges
	for _, r := range rs {
		if r.End() <= off || r.Off >= end {
			continue
		}
		out = append(out, Range{max(r.Off, off), min(r.End(), end) - max(r.Off, off)})
	}
	return out
}

// Contains reports whether every byte of [off, off+n) is in rs.
func (rs Ranges) Contains(off, n int64) bool {
	c := rs.Clip(off, n)
	return len(c) == 1 && c[0].Off == off && c[0].Len == n
}

// Bytes returns the number of bytes in rs.
func (rs Ranges) Bytes() int64 {
	var t int64
	for _, r := range rs {
		t += r.Len
	}
	return t
}

// NextData returns the smallest offset >= off inside rs, or false.
func (rs Ranges) NextData(off int64) (int64, bool) {
	for _, r := range rs {
		if r.End() > off {
			return max(off, r.Off), true
		}
	}
	return 0, false
}

// NextHole returns the smallest offset >= off outside rs.
func (rs Ranges) NextHole(off int64) int64 {
	for _, r := range rs {
		if r.Off > off {
			break
		}
		if r.End() > off {
			off = r.End()
		}
	}
	return off
}

// MarshalBinary encodes rs as varint deltas.
func (rs Ranges) MarshalBinary() ([]byte, error) {
	buf := make([]byte, 0, 4*len(rs))
	var prev int64
	for _, r := range rs {
		buf = binary.AppendUvarint(buf, uint64(r.Off-prev))
		buf = binary.AppendUvarint(buf, uint64(r.Len))
		prev = r.End()
	}
	return buf, nil
}

var errBadRanges = errors.New("corrupt range list")

// UnmarshalRanges decodes what Ranges.MarshalBinary encoded.
func UnmarshalRanges(b []byte) (Ranges, error) {
	var rs Ranges
	var prev int64
	for len(b) > 0 {
		gap, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errBadRanges
		}
		b = b[n:]
		l, n := binary.Uvarint(b)
		if n <= 0 || l == 0 || gap > math.MaxInt64 || l > math.MaxInt64 {
			return nil, errBadRanges
		}
		b = b[n:]
		off := prev + int64(gap)
		if off < prev || off+int64(l) < off || (len(rs) > 0 && gap == 0) {
			return nil, errBadRanges
		}
		rs = append(rs, Range{off, int64(l)})
		prev = off + int64(l)
	}
	return rs, nil
}

func (r Range) String() string { return fmt.Sprintf("[%d,%d)", r.Off, r.End()) }
