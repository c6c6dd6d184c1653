package chunkstore

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// small cuts test data into many chunks quickly.
var small = Params{Pol: TestPol, MinSize: 4 << 10, MaxSize: 64 << 10, AverageBits: 14}

func randomData(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// chunkAll cuts data from offset 0 and checks the invariants of the result.
func chunkAll(t *testing.T, data []byte, p Params) []Ref {
	t.Helper()
	c, err := NewChunker(bytes.NewReader(data), 0, p)
	if err != nil {
		t.Fatal(err)
	}
	var refs []Ref
	for {
		ch, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		r := ch.Ref()
		if !bytes.Equal(ch.Data, data[r.Offset:r.End()]) || ch.ID != Hash(ch.Data) {
			t.Fatalf("chunk at %d: data or id do not match the input", r.Offset)
		}
		refs = append(refs, r)
	}
	if err := validateRefs(refs); err != nil || refsEnd(refs) != int64(len(data)) {
		t.Fatalf("chunks do not tile the input: %v", err)
	}
	for i, r := range refs {
		last := i == len(refs)-1
		if r.Length > int64(p.MaxSize) || (!last && r.Length < int64(p.MinSize)) {
			t.Fatalf("chunk %d has length %d outside [%d, %d]", i, r.Length, p.MinSize, p.MaxSize)
		}
	}
	return refs
}

func TestChunkerRepeatableAndRestartable(t *testing.T) {
	data := randomData(1, 2<<20)
	a, b := chunkAll(t, data, small), chunkAll(t, data, small)
	if len(a) < 20 || !equalRefs(a, b) {
		t.Fatalf("%d chunks; two runs equal: %v", len(a), equalRefs(a, b))
	}
	// Restart at the boundary of chunk k: the tail is cut the same way.
	k := len(a) / 2
	c, err := NewChunker(bytes.NewReader(data[a[k].Offset:]), a[k].Offset, small)
	if err != nil {
		t.Fatal(err)
	}
	for i := k; ; i++ {
		ch, err := c.Next()
		if err == io.EOF {
			if i != len(a) {
				t.Fatalf("restart ended after chunk %d of %d", i, len(a))
			}
			break
		}
		if err != nil || ch.Ref() != a[i] {
			t.Fatalf("restart chunk %d = %+v, %v; want %+v", i, ch.Ref(), err, a[i])
		}
	}
	if ch, err := mustChunker(t, nil).Next(); err != io.EOF {
		t.Errorf("empty input: %+v, %v; want io.EOF", ch, err)
	}
}

func mustChunker(t *testing.T, data []byte) *Chunker {
	c, err := NewChunker(bytes.NewReader(data), 0, small)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func equalRefs(a, b []Ref) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParamsValidate(t *testing.T) {
	for _, tc := range []struct {
		p  Params
		ok bool
	}{
		{DefaultParams(TestPol), true},
		{small, true},
		{Params{Pol: 0, MinSize: 4096, MaxSize: 8192}, false},
		{Params{Pol: TestPol + 2, MinSize: 4096, MaxSize: 8192}, false}, // reducible
		{Params{Pol: TestPol, MinSize: 32, MaxSize: 8192}, false},
		{Params{Pol: TestPol, MinSize: 8192, MaxSize: 4096}, false},
		{Params{Pol: TestPol, MinSize: 4096, MaxSize: MaxChunkSize + 1}, false},
		{Params{Pol: TestPol, MinSize: 4096, MaxSize: 8192, AverageBits: 31}, false},
	} {
		if err := tc.p.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v, want ok %v", tc.p, err, tc.ok)
		}
	}
	if _, err := NewChunker(bytes.NewReader(nil), 0, Params{}); err == nil {
		t.Errorf("NewChunker with zero Params succeeded")
	}
}

// edit returns a copy of data with n bytes at off overwritten (growing it
// if needed) and then cut or padded to size (-1: keep).
func edit(data []byte, off, n, size int) []byte {
	out := append([]byte{}, data...)
	if off+n > len(out) {
		out = append(out, make([]byte, off+n-len(out))...)
	}
	copy(out[off:off+n], randomData(uint64(off+7), n))
	if size >= 0 {
		if size < len(out) {
			out = out[:size]
		} else {
			out = append(out, randomData(99, size-len(out))...)
		}
	}
	return out
}

func TestRechunk(t *testing.T) {
	base := randomData(2, 2<<20)
	old := chunkAll(t, base, small)
	mid := int(old[len(old)/2].Offset)
	for _, tc := range []struct {
		name      string
		newData   []byte
		edits     []Range
		maxChunks int // at most this many chunks are cut anew
	}{
		{"none", base, nil, 0},
		{"one byte mid-chunk", edit(base, mid+100, 1, -1), []Range{{int64(mid + 100), 1}}, 4},
		{"across a boundary", edit(base, mid-10, 20, -1), []Range{{int64(mid - 10), 20}}, 5},
		{"two far edits", edit(edit(base, 5000, 3, -1), mid, 3, -1), []Range{{5000, 3}, {int64(mid), 3}}, 8},
		{"first byte", edit(base, 0, 1, -1), []Range{{0, 1}}, 4},
		{"last byte", edit(base, len(base)-1, 1, -1), []Range{{int64(len(base) - 1), 1}}, 4},
		{"append", edit(base, 0, 0, len(base)+100000), nil, 12},
		{"shrink mid-chunk", edit(base, 0, 0, mid+333), nil, 2},
		{"shrink to a boundary", edit(base, 0, 0, mid), nil, 2},
		{"truncate to zero", nil, nil, 0},
		{"edit then shrink", edit(base, mid+5, 2, mid+5000), []Range{{int64(mid + 5), 2}}, 4},
		{"conservative edit list", base, []Range{{0, int64(len(base))}}, len(old)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := chunkAll(t, tc.newData, small)
			var cut []Ref
			got, st, err := Rechunk(bytes.NewReader(tc.newData), int64(len(tc.newData)), old, tc.edits, small, func(c Chunk) error {
				if !bytes.Equal(c.Data, tc.newData[c.Offset:c.Offset+int64(len(c.Data))]) {
					t.Errorf("fn got wrong data at %d", c.Offset)
				}
				cut = append(cut, c.Ref())
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !equalRefs(got, want) {
				t.Fatalf("rechunk gave %d chunks, full chunking %d; they differ", len(got), len(want))
			}
			if st.Chunks != len(cut) || st.Chunks > tc.maxChunks || st.Chunks+st.Reused != len(got) {
				t.Errorf("stats %+v with %d chunks, want at most %d cut", st, len(got), tc.maxChunks)
			}
		})
	}
}

func TestRechunkNewFileAndErrors(t *testing.T) {
	data := randomData(3, 300<<10)
	want := chunkAll(t, data, small)
	n := 0
	got, st, err := Rechunk(bytes.NewReader(data), int64(len(data)), nil, nil, small, func(Chunk) error { n++; return nil })
	if err != nil || !equalRefs(got, want) || n != len(want) || st.Bytes != int64(len(data)) {
		t.Fatalf("new file: %d refs, %d calls, %+v, %v; want %d", len(got), n, st, err, len(want))
	}
	stop := errors.New("stop")
	if _, _, err := Rechunk(bytes.NewReader(data), int64(len(data)), nil, nil, small, func(Chunk) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("fn error: %v, want stop", err)
	}
	bad := []Ref{{Offset: 0, Length: 10}, {Offset: 11, Length: 5}}
	if _, _, err := Rechunk(bytes.NewReader(data), 16, bad, nil, small, func(Chunk) error { return nil }); !errors.Is(err, errBadRefs) {
		t.Errorf("gapped old list: %v, want errBadRefs", err)
	}
}

// TestRechunkUpToMinSize: a file (or the rest of one from a boundary) of at
// most MinSize bytes is one chunk without a chunker, and that is what the
// chunker cuts; a short read is an error, not a short chunk.
func TestRechunkUpToMinSize(t *testing.T) {
	for _, n := range []int{1, 4096, int(small.MinSize) - 1, int(small.MinSize), int(small.MinSize) + 1, 3 * int(small.MinSize)} {
		data := randomData(uint64(n), n)
		want := chunkAll(t, data, small)
		var cut [][]byte
		got, _, err := Rechunk(bytes.NewReader(data), int64(n), nil, nil, small, func(c Chunk) error {
			cut = append(cut, bytes.Clone(c.Data))
			return nil
		})
		if err != nil || !equalRefs(got, want) || len(cut) != len(want) || !bytes.Equal(cut[0], data[:want[0].Length]) {
			t.Fatalf("%d bytes: %v, %v; want %v", n, got, err, want)
		}
	}
	short := bytes.NewReader(make([]byte, 100))
	if _, _, err := Rechunk(short, 200, nil, nil, small, func(Chunk) error { return nil }); err == nil {
		t.Fatal("Rechunk of a reader shorter than the size succeeded")
	}
}

// TestChunkSizeDistribution measures the chunk sizes of the default Params
// on random data (the figures quoted in the DefaultMinSize comment).
func TestChunkSizeDistribution(t *testing.T) {
	if testing.Short() {
		t.Skip("chunks 48 MiB")
	}
	data := randomData(4, 48<<20)
	refs := chunkAll(t, data, DefaultParams(TestPol))
	mean := float64(len(data)) / float64(len(refs))
	t.Logf("%d chunks, mean %.2f MiB", len(refs), mean/(1<<20))
	if mean < DefaultMinSize || mean > 3<<20 {
		t.Errorf("mean chunk %.0f bytes, want between min size and 3 MiB", mean)
	}
}

// TestRechunkRandom compares Rechunk with full chunking over random edits
// and size changes.
func TestRechunkRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	base := randomData(6, 1<<20)
	old := chunkAll(t, base, small)
	for i := range 25 {
		data := base
		var edits []Range
		for range 1 + r.IntN(3) {
			off, n := r.IntN(len(base)), 1+r.IntN(3000)
			data = edit(data, off, n, -1)
			edits = append(edits, Range{int64(off), int64(n)})
		}
		if r.IntN(3) == 0 {
			data = edit(data, 0, 0, r.IntN(2<<20))
		}
		want := chunkAll(t, data, small)
		got, _, err := Rechunk(bytes.NewReader(data), int64(len(data)), old, edits, small, func(Chunk) error { return nil })
		if err != nil || !equalRefs(got, want) {
			t.Fatalf("case %d (edits %v, size %d): rechunk differs from full chunking (%v)", i, edits, len(data), err)
		}
	}
}
