package bucket

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/mem"
)

func TestMarkRoundTripAndBadMarks(t *testing.T) {
	ctx := context.Background()
	s := mem.New("marks")
	objs := []Ref{{RefChunk, chunkstore.Hash([]byte("a"))}, {RefPack, chunkstore.Hash([]byte("b"))},
		{RefTree, chunkstore.Hash([]byte("c"))}, {RefCommit, chunkstore.Hash([]byte("d"))}}
	now := time.Now()
	m, err := PutMark(ctx, s, now, time.Hour, "host", objs)
	if err != nil {
		t.Fatal(err)
	}
	keys, bad, err := ListMarks(ctx, s)
	if err != nil || len(keys) != 1 || len(bad) != 0 || keys[0] != m.Key {
		t.Fatalf("ListMarks: %v %v %v", keys, bad, err)
	}
	got, err := ReadMark(ctx, s, m.Key)
	if err != nil || len(got.Objects) != 4 || got.Objects[2] != objs[2] || got.Grace != time.Hour || !got.Time.Equal(now.UTC()) {
		t.Fatalf("ReadMark: %+v %v", got, err)
	}
	for _, o := range objs {
		if r, ok := ParseRef(o.Key()); !ok || r != o {
			t.Errorf("ParseRef(%s) = %v %v", o.Key(), r, ok)
		}
	}
	if _, ok := ParseRef("chunks/zz/" + objs[0].ID.String()); ok {
		t.Error("ParseRef took a key in the wrong fan directory")
	}
	data, _, _ := s.Get(ctx, m.Key)
	for name, b := range map[string][]byte{
		"no magic":   data[1:],
		"torn":       data[:len(data)-1],
		"bad kind":   append(append([]byte{}, data[:len(data)-33]...), append([]byte{'x'}, data[len(data)-32:]...)...),
		"zero grace": []byte(markMagic + `{"time":"2026-01-01T00:00:00Z","grace":0}` + "\n"),
	} {
		if _, err := parseMark("gc/x", b); !errors.Is(err, ErrBadMark) {
			t.Errorf("%s: %v, want ErrBadMark", name, err)
		}
	}
	if _, err := s.Put(ctx, chunkstore.GCPrefix+"junk", []byte("x"), chunkstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	if _, bad, _ := ListMarks(ctx, s); len(bad) != 1 {
		t.Errorf("a key no collection makes is not reported: %v", bad)
	}
}
