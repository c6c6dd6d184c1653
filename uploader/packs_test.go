package uploader

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index"
)

// countKeys counts the store's objects under prefix.
func countKeys(t *testing.T, f *fixture, prefix string) int {
	t.Helper()
	n := 0
	if err := f.mem.List(f.ctx, prefix, func(chunkstore.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSmallFilesGoInPacks: a round of many small files puts them in a few
// packs and no chunk objects; a large file's small tail goes in a pack
// too, its large chunks stay objects of their own; a fresh machine reads
// every file back through the locations in the trees; the same content
// written again is found in its pack (nothing put), and the check before
// that commit asks for the pack once instead of each chunk.
func TestSmallFilesGoInPacks(t *testing.T) {
	f := newFixture(t)
	d := f.create(index.RootIno, "src", modeDir|0o755)
	const files = 300
	want := map[string][]byte{}
	for i := range files {
		data := randBytes(uint64(100+i), 20<<10+i) // 20 KiB each: 6 MiB in all
		name := fmt.Sprintf("f%03d", i)
		f.write(f.create(d, name, modeReg|0o644), 0, data)
		want["/src/"+name] = data
	}
	big := randBytes(7, 3<<20+1000) // large chunks and, likely, a small tail
	f.write(f.create(index.RootIno, "big", modeReg|0o644), 0, big)
	want["/big"] = big
	r := f.round()
	if r.Chunks.Packs < 2 || r.Chunks.Packs > 3 || r.Chunks.Packed < files {
		t.Fatalf("round %+v: want %d small chunks in 2-3 packs", r.Chunks, files)
	}
	if p := countKeys(t, f, chunkstore.PacksPrefix); p != r.Chunks.Packs {
		t.Fatalf("%d pack objects, the round put %d", p, r.Chunks.Packs)
	}
	if c := countKeys(t, f, chunkstore.ChunksPrefix); c != r.Chunks.Uploaded-r.Chunks.Packed || c < 2 {
		t.Fatalf("%d chunk objects, want the big file's %d large chunks", c, r.Chunks.Uploaded-r.Chunks.Packed)
	}
	f.checkReachable()
	ns := loadRemote(t, f.mem)
	for p, data := range want {
		wantFile(t, ns, p, data)
	}

	// A copy of packed content: found in its pack, each pack checked once.
	var mu sync.Mutex
	stats := map[string]int{}
	f.hooked.setHook(func(op, key string, after bool) error {
		if op == "stat" && !after {
			mu.Lock()
			stats[key]++
			mu.Unlock()
		}
		return nil
	})
	d2 := f.create(index.RootIno, "copy", modeDir|0o755)
	for i := range 50 {
		f.write(f.create(d2, fmt.Sprintf("c%02d", i), modeReg|0o644), 0, want[fmt.Sprintf("/src/f%03d", i)])
	}
	packs := countKeys(t, f, chunkstore.PacksPrefix)
	r = f.round()
	if r.Chunks.Uploaded != 0 || r.Chunks.Present != 50 || countKeys(t, f, chunkstore.PacksPrefix) != packs {
		t.Fatalf("copy of packed files: %+v, want all 50 present and no new pack", r.Chunks)
	}
	mu.Lock()
	for k, n := range stats {
		if !strings.HasPrefix(k, chunkstore.PacksPrefix) || n != 1 {
			t.Errorf("pre-commit check: %d stats of %s, want one of each pack and nothing else", n, k)
		}
	}
	if len(stats) == 0 {
		t.Error("the check before the commit asked for no pack")
	}
	mu.Unlock()
	f.checkReachable()
	ns = loadRemote(t, f.mem)
	for i := range 50 {
		wantFile(t, ns, fmt.Sprintf("/copy/c%02d", i), want[fmt.Sprintf("/src/f%03d", i)])
	}
}

// TestPackedChunkOnPeer: a machine that loaded another's tree reads a
// packed chunk from its pack, and its own copy of the file dedups against
// that pack through the location it loaded.
func TestPackedChunkOnPeer(t *testing.T) {
	f := newFixture(t)
	data := randBytes(9, 5000)
	f.write(f.create(index.RootIno, "a", modeReg|0o644), 0, data)
	if r := f.round(); r.Chunks.Packed != 1 {
		t.Fatalf("round %+v: want the file packed", r.Chunks)
	}
	p := f.peer("peer")
	a := p.lookup("a")
	if got := p.read(a.Ino); string(got) != string(data) {
		t.Fatalf("peer read %d bytes, want the file's %d", len(got), len(data))
	}
	p.write(p.create(index.RootIno, "b", modeReg|0o644), 0, data)
	if r := p.round(); r.Chunks.Uploaded != 0 || r.Chunks.Present != 1 {
		t.Fatalf("peer's copy: %+v, want it found in the pack", r.Chunks)
	}
	p.checkReachable()
	wantFile(t, loadRemote(t, f.mem), "/b", data)
}
