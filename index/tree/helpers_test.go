package tree

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// memStore holds encoded objects and counts the loads of each tree.
type memStore struct {
	objects map[chunkstore.ID][]byte
	loads   map[chunkstore.ID]int
}

func newMemStore() *memStore {
	return &memStore{
		objects: make(map[chunkstore.ID][]byte),
		loads:   make(map[chunkstore.ID]int),
	}
}

func (s *memStore) put(objs []Object) {
	for _, o := range objs {
		s.objects[o.ID] = o.Data
	}
}

func (s *memStore) load(id chunkstore.ID) (*Tree, error) {
	s.loads[id]++
	data, ok := s.objects[id]
	if !ok {
		return nil, fmt.Errorf("tree %s: %w", id, chunkstore.ErrNotFound)
	}
	return Decode(data)
}

func (s *memStore) totalLoads() int {
	n := 0
	for _, c := range s.loads {
		n += c
	}
	return n
}

// contentOf maps the chunk IDs made by file to their content.
var contentOf sync.Map

// spec describes a tree: slash path -> entry (Name is taken from the path;
// a directory's Subtree is ignored). Parents are created as needed.
type spec map[string]Entry

// file returns a regular file whose content is one chunk standing for
// content ("" is an empty file), mode 0644.
func file(content string) Entry {
	e := Entry{Type: TypeFile, Mode: 0o644}
	if content != "" {
		contentOf.Store(chunkstore.Hash([]byte(content)), content)
		e.Chunks = []ChunkRef{{ID: chunkstore.Hash([]byte(content)), Length: uint32(len(content))}}
		e.Size = uint64(len(content))
	}
	return e
}

func dir() Entry { return Entry{Type: TypeDir, Mode: 0o755} }

func symlink(target string) Entry { return Entry{Type: TypeSymlink, Mode: 0o777, Target: target} }

func withMode(e Entry, mode uint32) Entry { e.Mode = mode; return e }

func withMtime(e Entry, ns int64) Entry { e.MtimeNs = ns; return e }

// build stores the tree described by sp and returns its root ID.
func (s *memStore) build(t testing.TB, sp spec) chunkstore.ID {
	t.Helper()
	root := NewDir()
	paths := make([]string, 0, len(sp))
	for p := range sp {
		paths = append(paths, p)
	}
	slices.Sort(paths) // parents before children
	for _, p := range paths {
		e := sp[p]
		parts := strings.Split(p, "/")
		d := root
		for _, part := range parts[:len(parts)-1] {
			var err error
			if d, err = d.Sub(part); err != nil {
				t.Fatalf("build %s: %v", p, err)
			}
		}
		e.Name = parts[len(parts)-1]
		var err error
		if e.Type == TypeDir {
			sub := NewDir()
			if _, old, ok := d.Lookup(e.Name); ok && old != nil {
				sub = old
			}
			err = d.SetDir(e, sub)
		} else {
			err = d.Set(e)
		}
		if err != nil {
			t.Fatalf("build %s: %v", p, err)
		}
	}
	id, objs, err := Build(root)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	s.put(objs)
	return id
}

// describe renders e compactly: "f:<content>", "d", "l:<target>", "fifo", plus
// " m<mode>" when the mode is not the helper's default and " t<mtime>" when
// the mtime is set.
func (s *memStore) describe(e *Entry) string {
	var b strings.Builder
	def := uint32(0o644)
	switch e.Type {
	case TypeFile:
		b.WriteString("f:")
		for _, c := range e.Chunks {
			v, _ := contentOf.Load(c.ID)
			b.WriteString(v.(string))
		}
	case TypeDir:
		b.WriteString("d")
		def = 0o755
	case TypeSymlink:
		b.WriteString("l:" + e.Target)
		def = 0o777
	default:
		b.WriteString(e.Type.String())
	}
	if e.Mode != def {
		fmt.Fprintf(&b, " m%o", e.Mode)
	}
	if e.MtimeNs != 0 {
		fmt.Fprintf(&b, " t%d", e.MtimeNs)
	}
	return b.String()
}

// flatten returns path -> describe(entry) for the whole tree root.
func (s *memStore) flatten(t testing.TB, root chunkstore.ID) map[string]string {
	t.Helper()
	out := make(map[string]string)
	var walk func(id chunkstore.ID, path string)
	walk = func(id chunkstore.ID, path string) {
		data, ok := s.objects[id]
		if !ok {
			t.Fatalf("flatten: tree %s of %q missing", id, path)
		}
		tr, err := Decode(data)
		if err != nil {
			t.Fatalf("flatten %q: %v", path, err)
		}
		for i := range tr.Entries {
			e := &tr.Entries[i]
			p := joinPath(path, e.Name)
			out[p] = s.describe(e)
			if e.Type == TypeDir {
				walk(e.Subtree, p)
			}
		}
	}
	walk(root, "")
	return out
}
