package tree

import "math/bits"

// Stats counts what a directory holds, recursively: the totals of a
// subtree. A directory entry carries its subtree's Stats (Entry.Totals) and
// a commit its root tree's (Commit.Stats), so a writer that rebuilds a
// directory sums its entries' Stats without loading the subtrees it keeps,
// and the totals of a new commit cost what its changed directories cost.
// Names count, not inodes: a file with two hard links counts twice.
type Stats struct {
	Files  uint64 // entries that are not directories
	Dirs   uint64 // directories, the directory itself included
	Bytes  uint64 // sum of the sizes of regular files
	Chunks uint64 // chunk refs of regular files (a shared chunk counts each time)
}

// Add adds o to s.
func (s *Stats) Add(o Stats) {
	s.Files += o.Files
	s.Dirs += o.Dirs
	s.Bytes += o.Bytes
	s.Chunks += o.Chunks
}

// AddChecked adds o to s and reports false, leaving s unspecified, if a
// count overflows (totals that cannot be true).
func (s *Stats) AddChecked(o Stats) bool {
	var c1, c2, c3, c4 uint64
	s.Files, c1 = bits.Add64(s.Files, o.Files, 0)
	s.Dirs, c2 = bits.Add64(s.Dirs, o.Dirs, 0)
	s.Bytes, c3 = bits.Add64(s.Bytes, o.Bytes, 0)
	s.Chunks, c4 = bits.Add64(s.Chunks, o.Chunks, 0)
	return c1|c2|c3|c4 == 0
}

// Stats returns what entry e adds to the totals of the directory holding
// it: a directory's Totals, one file otherwise, with its size and chunk
// count for a regular file.
func (e *Entry) Stats() Stats {
	switch e.Type {
	case TypeDir:
		return e.Totals
	case TypeFile:
		n := uint64(len(e.Chunks))
		if !e.Manifest.IsZero() {
			n = e.ManifestChunks
		}
		return Stats{Files: 1, Bytes: e.Size, Chunks: n}
	}
	return Stats{Files: 1}
}

// Totals returns the totals of the directory t: its entries' Stats and
// the directory itself.
func (t *Tree) Totals() Stats {
	s := Stats{Dirs: 1}
	for i := range t.Entries {
		s.Add(t.Entries[i].Stats())
	}
	return s
}

// CheckedTotals is Totals, with ok false when a count overflows.
func (t *Tree) CheckedTotals() (s Stats, ok bool) {
	s = Stats{Dirs: 1}
	for i := range t.Entries {
		if !s.AddChecked(t.Entries[i].Stats()) {
			return s, false
		}
	}
	return s, true
}

// Totals returns the totals of the directory d, computing those of its
// in-memory subdirectories (a stored one's are in its entry).
func (d *Dir) Totals() Stats {
	s := Stats{Dirs: 1}
	for _, n := range d.nodes {
		if n.dir != nil {
			s.Add(n.dir.Totals())
		} else {
			s.Add(n.entry.Stats())
		}
	}
	return s
}
