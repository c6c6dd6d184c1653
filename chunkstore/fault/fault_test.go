package fault

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/mem"
	"github.com/cloudfs/cloudfs/chunkstore/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) chunkstore.Store { return New(mem.New(t.Name())) })
}

func TestRules(t *testing.T) {
	ctx := context.Background()
	boom := errors.New("boom")
	s := New(mem.New("rules"))
	if _, err := s.Put(ctx, "chunks/a", []byte("hello world"), chunkstore.Cond{}); err != nil {
		t.Fatal(err)
	}

	s.FailNth(OpGet, 2, boom)
	results := make([]error, 4)
	for i := range results {
		_, _, results[i] = s.Get(ctx, "chunks/a")
	}
	for i, err := range results {
		if want := i == 1; errors.Is(err, boom) != want || (!want && err != nil) {
			t.Errorf("get %d: %v (want failure only on the 2nd)", i+1, err)
		}
	}
	s.Clear()

	s.FailPrefix(OpStat|OpDelete, "chunks/", boom)
	if _, err := s.Stat(ctx, "chunks/a"); !errors.Is(err, boom) {
		t.Errorf("stat under prefix: %v, want boom", err)
	}
	if err := s.Delete(ctx, "other"); err != nil {
		t.Errorf("delete outside prefix: %v", err)
	}
	if _, _, err := s.Get(ctx, "chunks/a"); err != nil {
		t.Errorf("get is not in the rule's ops: %v", err)
	}
	s.Clear()

	s.Add(Rule{Ops: OpPut, Err: boom, AfterCall: true, Times: 1})
	if _, err := s.Put(ctx, "lost", []byte("x"), chunkstore.Cond{}); !errors.Is(err, boom) {
		t.Errorf("lost reply put: %v, want boom", err)
	}
	if _, _, err := s.Get(ctx, "lost"); err != nil {
		t.Errorf("a lost reply put must still write: %v", err)
	}

	s.Add(Rule{Ops: OpGet, Truncate: true, Times: 1})
	s.Add(Rule{Ops: OpGet | OpGetRange, Corrupt: true})
	got, _, err := s.Get(ctx, "chunks/a")
	if err != nil || string(got) != "hello" {
		t.Errorf("truncated get = %q, %v; want \"hello\"", got, err)
	}
	got, _, err = s.Get(ctx, "chunks/a")
	if err != nil || len(got) != 11 || bytes.Equal(got, []byte("hello world")) {
		t.Errorf("corrupted get = %q, %v; want 11 changed bytes", got, err)
	}
	got, err = chunkstore.GetRange(ctx, s, "chunks/a", 0, 5)
	if err != nil || len(got) != 5 || string(got) == "hello" {
		t.Errorf("corrupted range = %q, %v", got, err)
	}
	s.Clear()
	if got, _, err := s.Get(ctx, "chunks/a"); err != nil || string(got) != "hello world" {
		t.Errorf("after Clear get = %q, %v", got, err)
	}
	if n := s.Calls(OpGet); n != 9 {
		t.Errorf("Calls(OpGet) = %d, want 9", n)
	}
	if n, m := s.Calls(0), s.Calls(OpAll); n != m || n < 14 {
		t.Errorf("Calls(0) = %d, Calls(OpAll) = %d", n, m)
	}
}

func TestDelay(t *testing.T) {
	s := New(mem.New("delay"))
	s.Add(Rule{Delay: 30 * time.Millisecond})
	start := time.Now()
	if _, err := s.Stat(context.Background(), "x"); !errors.Is(err, chunkstore.ErrNotFound) {
		t.Errorf("stat: %v", err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("stat took %v, want >= 30ms", d)
	}
	s.Clear()
	s.Add(Rule{Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Stat(ctx, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("delayed stat past its deadline: %v", err)
	}
	s.Clear()
	s.FailNth(0, 1, nil)
	if err := s.Delete(context.Background(), "x"); !errors.Is(err, ErrInjected) {
		t.Errorf("FailNth with a nil error: %v, want ErrInjected", err)
	}
	if OpGet.String() != "get" || (OpPut|OpList).String() != "put|list" {
		t.Errorf("Op.String: %s %s", OpGet, OpPut|OpList)
	}
}
