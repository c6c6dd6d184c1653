package gc_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/mem"
	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/index/gc"
	"github.com/cloudfs/cloudfs/index/tree"
)

// vol builds a volume in a mem store by hand.
type vol struct {
	t     *testing.T
	s     *mem.Store
	head  chunkstore.ID
	etag  string
	gen   uint64
	start time.Time
}

func newVol(t *testing.T) *vol {
	return &vol{t: t, s: mem.New("gc"), start: time.Now()}
}

func (v *vol) chunk(data []byte) chunkstore.ID {
	id := chunkstore.Hash(data)
	if _, err := v.s.Put(context.Background(), chunkstore.ChunkKey(id), chunkstore.Encode(data), chunkstore.Cond{}); err != nil {
		v.t.Fatal(err)
	}
	return id
}

// commit writes a root tree of files name -> chunk and makes it head.
func (v *vol) commit(files map[string]chunkstore.ID, sizes map[string]int) chunkstore.ID {
	ctx := context.Background()
	t := &tree.Tree{}
	for name, id := range files {
		n := sizes[name]
		t.Entries = append(t.Entries, tree.Entry{Name: name, Type: tree.TypeFile, Mode: 0o644, Size: uint64(n),
			Chunks: []tree.ChunkRef{{ID: id, Length: uint32(n)}}})
	}
	data, rootID, err := tree.Encode(t)
	if err != nil {
		v.t.Fatal(err)
	}
	if err := bucket.PutObject(ctx, v.s, tree.Object{Kind: tree.KindTree, ID: rootID, Data: data}); err != nil {
		v.t.Fatal(err)
	}
	v.gen++
	c := &tree.Commit{Root: rootID, Device: "test", TimeNs: time.Now().UnixNano(), Generation: v.gen,
		Stats: tree.Stats{Dirs: 1, Files: uint64(len(files))}}
	if !v.head.IsZero() {
		c.Parents = []chunkstore.ID{v.head}
	}
	id, err := bucket.PutCommit(ctx, v.s, c)
	if err != nil {
		v.t.Fatal(err)
	}
	tag, err := bucket.SwapHead(ctx, v.s, id, v.etag)
	if err != nil {
		v.t.Fatal(err)
	}
	v.head, v.etag = id, tag
	return id
}

func (v *vol) has(key string) bool {
	_, err := v.s.Stat(context.Background(), key)
	if err != nil && !errors.Is(err, chunkstore.ErrNotFound) {
		v.t.Fatal(err)
	}
	return err == nil
}

// gc runs a collection at v.start+at, keeping only head by policy.
func (v *vol) gc(at time.Duration, mod func(*gc.Options)) *gc.Report {
	v.t.Helper()
	o := gc.Options{KeepLast: 1, KeepWithin: time.Second, Grace: time.Hour, Host: "test",
		Now: func() time.Time { return v.start.Add(at) }}
	if mod != nil {
		mod(&o)
	}
	rep, err := gc.Run(context.Background(), v.s, o)
	if err != nil {
		v.t.Fatalf("gc at +%v: %v", at, err)
	}
	return rep
}

func TestMarkThenSweepAfterGrace(t *testing.T) {
	v := newVol(t)
	a, b := v.chunk([]byte("file a")), v.chunk([]byte("file b"))
	first := v.commit(map[string]chunkstore.ID{"a": a, "b": b}, map[string]int{"a": 6, "b": 6})
	v.commit(map[string]chunkstore.ID{"a": a}, map[string]int{"a": 6})
	orphan := v.chunk([]byte("a failed round's chunk"))

	// Everything young: nothing is marked. The first commit, young, is
	// kept with what it reaches; the orphan is unreachable but young.
	if rep := v.gc(0, nil); rep.Marked.Objects != 0 || rep.Young.Objects != 1 || rep.KeptCommits != 2 {
		t.Fatalf("young volume: marked %d, young %d, kept %d commits, want 0, 1, 2", rep.Marked.Objects, rep.Young.Objects, rep.KeptCommits)
	}
	rep := v.gc(2*time.Hour, nil)
	if rep.Marked.Objects != 4 || rep.Freed.Objects != 0 {
		t.Fatalf("first old run: marked %d freed %d, want 4 and 0", rep.Marked.Objects, rep.Freed.Objects)
	}
	if !v.has(chunkstore.ChunkKey(orphan)) || !v.has(chunkstore.ChunkKey(b)) {
		t.Fatal("a mark deleted something")
	}
	// Within the mark's grace period: pending, nothing deleted.
	rep = v.gc(2*time.Hour+30*time.Minute, nil)
	if rep.Pending.Objects != 4 || rep.Freed.Objects != 0 || rep.Marked.Objects != 0 {
		t.Fatalf("run inside the grace period: pending %d freed %d marked %d, want 4 0 0", rep.Pending.Objects, rep.Freed.Objects, rep.Marked.Objects)
	}
	rep = v.gc(3*time.Hour+time.Minute, nil)
	if rep.Freed.Objects != 4 || rep.MarksSwept != 1 {
		t.Fatalf("sweep: freed %d, swept %d marks, want 4 and 1", rep.Freed.Objects, rep.MarksSwept)
	}
	for _, k := range []string{chunkstore.ChunkKey(orphan), chunkstore.ChunkKey(b), chunkstore.CommitKey(first)} {
		if v.has(k) {
			t.Errorf("%s survived the sweep", k)
		}
	}
	if !v.has(chunkstore.ChunkKey(a)) || !v.has(chunkstore.CommitKey(v.head)) {
		t.Fatal("the sweep deleted what head reaches")
	}
	if err := bucket.CheckReachable(context.Background(), v.s); err != nil {
		t.Fatalf("after the sweep: %v", err)
	}
	keys, _, err := bucket.ListMarks(context.Background(), v.s)
	if err != nil || len(keys) != 0 {
		t.Fatalf("marks left: %v %v", keys, err)
	}
}

func TestRescuedAndDevicesAndRetention(t *testing.T) {
	v := newVol(t)
	a, b := v.chunk([]byte("file a")), v.chunk([]byte("file b"))
	v.commit(map[string]chunkstore.ID{"a": a, "b": b}, map[string]int{"a": 6, "b": 6})
	v.commit(map[string]chunkstore.ID{"a": a}, map[string]int{"a": 6})
	// With the default retention, both commits are kept.
	if rep := v.gc(2*time.Hour, func(o *gc.Options) { o.KeepLast, o.KeepWithin, o.DryRun = 0, 0, true }); rep.Marked.Objects != 0 || rep.KeptCommits != 2 {
		t.Fatalf("default retention: marked %d, kept %d commits, want 0 and 2", rep.Marked.Objects, rep.KeptCommits)
	}
	rep := v.gc(2*time.Hour, nil)
	if rep.Marked.Objects != 3 { // b, the first commit, its tree
		t.Fatalf("marked %d, want 3", rep.Marked.Objects)
	}
	// b comes back before the sweep: rescued.
	v.commit(map[string]chunkstore.ID{"a": a, "b": b}, map[string]int{"a": 6, "b": 6})
	rep = v.gc(3*time.Hour+time.Minute, nil)
	if !v.has(chunkstore.ChunkKey(b)) || rep.Rescued.Objects < 1 {
		t.Fatalf("b named again by head was deleted or not counted rescued (rescued %d)", rep.Rescued.Objects)
	}
	// A live device's commit keeps what it reaches.
	c := v.chunk([]byte("file c"))
	devCommit := v.commit(map[string]chunkstore.ID{"c": c}, map[string]int{"c": 6})
	v.commit(map[string]chunkstore.ID{"a": a}, map[string]int{"a": 6})
	d := bucket.Device{ID: "laptop", Host: "laptop", Instance: "x", Commit: devCommit.String(), Time: v.start.Add(4 * time.Hour)}
	if _, err := bucket.PutDevice(context.Background(), v.s, d, "", true); err != nil {
		t.Fatal(err)
	}
	v.gc(5*time.Hour, nil)
	v.gc(6*time.Hour+time.Minute, nil)
	if !v.has(chunkstore.ChunkKey(c)) || !v.has(chunkstore.CommitKey(devCommit)) {
		t.Fatal("a live device's commit lost its content")
	}
	// The device expires: c goes.
	v.gc(200*24*time.Hour, nil)
	rep = v.gc(200*24*time.Hour+2*time.Hour, nil)
	if v.has(chunkstore.ChunkKey(c)) || len(rep.ExpiredDevices) != 1 {
		t.Fatalf("an expired device still held c (expired %v)", rep.ExpiredDevices)
	}
}

func TestMaxDeleteDryRunAndDeltaBase(t *testing.T) {
	v := newVol(t)
	base := bytes.Repeat([]byte("0123456789abcdef"), chunkstore.DeltaMinSize/16*2)
	plain := append(bytes.Clone(base), []byte("edited")...)
	baseID, id := chunkstore.Hash(base), chunkstore.Hash(plain)
	delta, err := chunkstore.EncodeDelta(plain, baseID, base, len(chunkstore.Encode(plain))+1000)
	if err != nil || delta == nil {
		t.Fatalf("delta: %v %v", delta == nil, err)
	}
	ctx := context.Background()
	if _, err := v.s.Put(ctx, chunkstore.ChunkKey(id), delta, chunkstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	v.chunk(base)
	v.commit(map[string]chunkstore.ID{"big": id}, map[string]int{"big": len(plain)})
	var orphans []chunkstore.ID
	for i := range 5 {
		orphans = append(orphans, v.chunk([]byte{byte(i)}))
	}
	rep := v.gc(2*time.Hour, func(o *gc.Options) { o.DryRun = true })
	if rep.Marked.Objects != 5 {
		t.Fatalf("dry run would mark %d, want the 5 orphans (the delta's base is reachable)", rep.Marked.Objects)
	}
	if keys, _, _ := bucket.ListMarks(ctx, v.s); len(keys) != 0 {
		t.Fatal("a dry run wrote a mark")
	}
	v.gc(2*time.Hour, nil)
	if rep := v.gc(3*time.Hour+time.Minute, func(o *gc.Options) { o.DryRun = true }); rep.Freed.Objects != 5 || !v.has(chunkstore.ChunkKey(orphans[0])) {
		t.Fatalf("dry-run sweep: would free %d, want 5, and deletes nothing", rep.Freed.Objects)
	}
	rep = v.gc(3*time.Hour+time.Minute, func(o *gc.Options) { o.MaxDelete = 2 })
	if rep.Freed.Objects != 2 || rep.Left.Objects != 3 || rep.MarksSwept != 0 {
		t.Fatalf("max-delete 2: freed %d left %d swept %d, want 2 3 0", rep.Freed.Objects, rep.Left.Objects, rep.MarksSwept)
	}
	rep = v.gc(3*time.Hour+2*time.Minute, nil)
	if rep.Freed.Objects != 3 || rep.MarksSwept != 1 || rep.Marked.Objects != 0 {
		t.Fatalf("the next run: freed %d swept %d marked %d, want 3 1 0", rep.Freed.Objects, rep.MarksSwept, rep.Marked.Objects)
	}
	if !v.has(chunkstore.ChunkKey(baseID)) {
		t.Fatal("the base of a reachable delta was deleted")
	}
	if err := bucket.CheckReachable(ctx, v.s); err != nil {
		t.Fatal(err)
	}
}

func TestBlindDeletesNothing(t *testing.T) {
	v := newVol(t)
	a := v.chunk([]byte("file a"))
	v.commit(map[string]chunkstore.ID{"a": a}, map[string]int{"a": 6})
	c, err := bucket.ReadCommit(context.Background(), v.s, v.head)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.s.Delete(context.Background(), chunkstore.TreeKey(c.Root)); err != nil {
		t.Fatal(err)
	}
	_, err = gc.Run(context.Background(), v.s, gc.Options{Now: func() time.Time { return v.start.Add(2 * time.Hour) }})
	if !errors.Is(err, gc.ErrBlind) {
		t.Fatalf("gc of a volume missing a tree: %v, want ErrBlind", err)
	}
	if keys, _, _ := bucket.ListMarks(context.Background(), v.s); len(keys) != 0 || !v.has(chunkstore.ChunkKey(a)) {
		t.Fatal("a blind run marked or deleted")
	}
}

func TestCollectionsDeadline(t *testing.T) {
	v := newVol(t)
	orphan := v.chunk([]byte("orphan"))
	v.commit(map[string]chunkstore.ID{}, nil)
	v.gc(2*time.Hour, nil) // marks the orphan at +2h; deadline +2h45m
	col := bucket.NewCollections(v.s)
	keys := []string{chunkstore.ChunkKey(orphan), "head"}
	if err := col.Check(context.Background(), keys, v.start.Add(2*time.Hour+40*time.Minute)); err != nil {
		t.Fatalf("before the deadline: %v", err)
	}
	if err := col.Check(context.Background(), keys, v.start.Add(2*time.Hour+50*time.Minute)); !errors.Is(err, bucket.ErrCollecting) {
		t.Fatalf("after the deadline: %v, want ErrCollecting", err)
	}
	v.gc(3*time.Hour+time.Minute, nil) // sweeps: the mark goes
	if err := col.Check(context.Background(), keys, v.start.Add(4*time.Hour)); err != nil {
		t.Fatalf("after the sweep: %v", err)
	}
}
