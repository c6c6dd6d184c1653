package tree

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
