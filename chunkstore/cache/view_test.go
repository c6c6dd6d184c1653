package cache

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/fault"
)

func (f *fixture) view(id chunkstore.ID, want []byte) {
	f.t.Helper()
	got, err := f.c.View(context.Background(), id)
	if err != nil {
		f.t.Fatalf("view %s: %v", id, err)
	}
	if !bytes.Equal(got, want) {
		f.t.Fatalf("view %s: wrong data", id)
	}
}

// TestViewServesFromMemory: a viewed chunk is served again without reading
// the disk (its cache file is gone) or the store.
func TestViewServesFromMemory(t *testing.T) {
	f := newFixture(t, 10*kib*kib)
	id, data := f.chunk(1, 300*kib)
	f.view(id, data)
	gets := f.store.Calls(fault.OpGet)
	if err := os.Remove(f.c.path("clean", id)); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		f.view(id, data)
	}
	if n := f.store.Calls(fault.OpGet); n != gets {
		t.Fatalf("store gets went from %d to %d; want served from memory", gets, n)
	}
}

// TestViewMemoryLimit: the memory layer keeps at most its limit, least
// recently viewed out first, and a chunk larger than the limit is not kept.
func TestViewMemoryLimit(t *testing.T) {
	f := newFixture(t, 10*kib*kib, WithMemoryLimit(250*kib))
	a, da := f.chunk(1, 100*kib)
	b, db := f.chunk(2, 100*kib)
	c, dc := f.chunk(3, 100*kib)
	big, dbig := f.chunk(4, 300*kib)
	f.view(a, da)
	f.view(b, db)
	f.view(a, da) // a is now the most recent
	f.view(c, dc) // evicts b
	f.view(big, dbig)
	if _, ok := f.c.mem.get(b); ok {
		t.Error("b still in memory after c pushed past the limit")
	}
	for _, id := range []chunkstore.ID{a, c} {
		if _, ok := f.c.mem.get(id); !ok {
			t.Errorf("%s not in memory", id)
		}
	}
	if _, ok := f.c.mem.get(big); ok {
		t.Error("a chunk larger than the limit was kept in memory")
	}
	if f.c.mem.used > 250*kib {
		t.Errorf("memory use %d past the limit", f.c.mem.used)
	}
}

// TestViewCorruptNeverEntersMemory: a corrupt chunk is an error, and is
// not served from memory afterwards.
func TestViewCorruptNeverEntersMemory(t *testing.T) {
	f := newFixture(t, 10*kib*kib)
	id, _ := f.chunk(1, 100*kib)
	f.store.Add(fault.Rule{Ops: fault.OpGet, Corrupt: true})
	if _, err := f.c.View(context.Background(), id); err == nil {
		t.Fatal("view of a corrupt chunk succeeded")
	}
	if _, ok := f.c.mem.get(id); ok {
		t.Fatal("corrupt chunk entered memory")
	}
}
