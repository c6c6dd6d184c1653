package chunkstore_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/mem"
)

// TestGetPacked reads chunks back from a pack by their locations, and
// refuses locations that lie: out of bounds, past the pack's end, or at
// another chunk's bytes.
func TestGetPacked(t *testing.T) {
	ctx := context.Background()
	s := mem.New("mem")
	a, b := bytes.Repeat([]byte("a"), 5000), []byte("the second chunk")
	sa, _ := chunkstore.EncodeChunk(a)
	sb, _ := chunkstore.EncodeChunk(b)
	pack := append(append([]byte{}, sa...), sb...)
	pid := chunkstore.Hash(pack)
	if _, err := s.Put(ctx, chunkstore.PackKey(pid), pack, chunkstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	la := chunkstore.Loc{Pack: pid, Off: 0, Len: int64(len(sa))}
	lb := chunkstore.Loc{Pack: pid, Off: int64(len(sa)), Len: int64(len(sb))}
	for _, c := range []struct {
		plain []byte
		loc   chunkstore.Loc
	}{{a, la}, {b, lb}} {
		got, err := chunkstore.GetPacked(ctx, s, chunkstore.Hash(c.plain), c.loc)
		if err != nil || !bytes.Equal(got, c.plain) {
			t.Fatalf("GetPacked at %d: %d bytes, %v", c.loc.Off, len(got), err)
		}
	}
	bad := map[string]chunkstore.Loc{
		"another chunk's bytes": lb,
		"past the end":          {Pack: pid, Off: int64(len(pack)) - 2, Len: 10},
		"too long":              {Pack: pid, Len: chunkstore.MaxPackedLen + 1},
		"negative offset":       {Pack: pid, Off: -1, Len: 2},
		"beyond any pack":       {Pack: pid, Off: chunkstore.MaxPackSize, Len: 1},
		"no pack":               {Off: 0, Len: 2},
	}
	for name, l := range bad {
		if _, err := chunkstore.GetPacked(ctx, s, chunkstore.Hash(a), l); !errors.Is(err, chunkstore.ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
	if _, err := chunkstore.GetPacked(ctx, s, chunkstore.Hash(a), chunkstore.Loc{Pack: chunkstore.Hash([]byte("x")), Len: 3}); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("missing pack: err = %v, want ErrNotFound", err)
	}
	if k := chunkstore.ObjectKind(chunkstore.PackKey(pid)); k != "pack" {
		t.Errorf("ObjectKind of a pack key = %q", k)
	}
}
