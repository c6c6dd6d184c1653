package index

// Hard links of the remote tree. A tree entry of an inode with several
// names carries a link id and the inode's link count (tree.Entry.LinkID,
// Nlink). The names may sit in directories that a lazy mount loads at
// different times, so the index remembers, per link id, the inode it made
// for the first name it loaded (the links table): a later name with that
// id and the same content becomes another entry of that inode.
//
// Link count before every name is loaded: the first name's inode takes the
// count the entry carries, so stat reports the right count at once, and
// later names join without changing it. The invariant is
//
//	nlink = names loaded (entries) + names still in directories not loaded
//
// and every local link, unlink or rename keeps it, because it changes both
// sides by one. A name beyond the count (a tree whose counts disagree with
// its names) raises the count when it joins and queues the inode, so the
// next commit writes the corrected count.

import (
	"crypto/rand"
	"encoding/binary"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// remoteContentKey hashes what entry e says about its inode's content:
// type, size, chunks or manifest, symlink target, device number. Two
// entries of one link id are one inode only when their keys are equal
// (the tree format's rule: a link id is a hint, content decides).
func remoteContentKey(e *tree.Entry) []byte {
	b := make([]byte, 0, 64+len(e.Target)+36*len(e.Chunks))
	b = append(b, byte(e.Type))
	b = binary.AppendUvarint(b, e.Size)
	b = binary.AppendUvarint(b, e.Rdev)
	b = append(b, e.Manifest[:]...)
	b = binary.AppendUvarint(b, e.ManifestChunks)
	b = binary.AppendUvarint(b, uint64(len(e.Chunks)))
	for _, c := range e.Chunks {
		b = append(b, c.ID[:]...)
		b = binary.AppendUvarint(b, uint64(c.Length))
	}
	b = append(b, e.Target...)
	h := chunkstore.Hash(b)
	return h[:]
}

// linkJoin says what joinLinkTx found for an entry with a link id.
type linkJoin int

const (
	linkNew      linkJoin = iota // no live inode has the id: make one and record it
	linkJoined                   // the entry is another name of the returned inode
	linkConflict                 // the id's inode has other content: make an unlinked inode
)

// joinLinkTx looks for the inode an earlier name of entry e's link id
// made. When there is one with the same content, it counts e as one more
// of its names (raising the link count, and queueing the inode, only when
// the count had no name left to spare) and returns it.
func (db *DB) joinLinkTx(tx querier, e *tree.Entry) (uint64, linkJoin, error) {
	var ino uint64
	var content []byte
	err := tx.QueryRow(`SELECT ino, content FROM links WHERE id = ?`, int64(e.LinkID)).Scan(&ino, &content)
	if isNoRows(err) {
		return 0, linkNew, nil
	}
	if err != nil {
		return 0, 0, err
	}
	var mode, nlink, names uint32
	err = tx.QueryRow(`SELECT mode, nlink, (SELECT COUNT(*) FROM dentries WHERE ino = ?1) FROM inodes WHERE ino = ?1`, ino).
		Scan(&mode, &nlink, &names)
	if isNoRows(err) {
		return 0, linkNew, nil // deleted since
	}
	if err != nil {
		return 0, 0, err
	}
	if nlink == 0 {
		return 0, linkNew, nil // every name it had is gone
	}
	if mode&sIFMT != modeType(e.Type) || string(content) != string(remoteContentKey(e)) {
		return 0, linkConflict, nil
	}
	if names < nlink {
		return ino, linkJoined, nil // a name it was counting all along
	}
	if _, err := tx.Exec(`UPDATE inodes SET nlink = nlink + 1 WHERE ino = ?`, ino); err != nil {
		return 0, 0, err
	}
	return ino, linkJoined, db.markDirtyTx(tx, ino, DirtyMeta)
}

// recordLinkTx records ino as the inode of entry e's link id, replacing a
// row whose inode is gone or differs in content. An inode has one link id:
// any other it had goes (a commit writes the id the snapshot finds).
func recordLinkTx(tx querier, e *tree.Entry, ino uint64) error {
	if _, err := tx.Exec(`DELETE FROM links WHERE ino = ? AND id != ?`, ino, int64(e.LinkID)); err != nil {
		return err
	}
	_, err := tx.Exec(`INSERT OR REPLACE INTO links(id, ino, content) VALUES(?, ?, ?)`,
		int64(e.LinkID), ino, remoteContentKey(e))
	return err
}

// recordLinkOfTx records e's link id as inode ino's, the id its commit
// wrote (recordLinkTx).
func recordLinkOfTx(tx querier, e *tree.Entry, ino uint64) error { return recordLinkTx(tx, e, ino) }

// takeLinkIDTx makes e's link id inode ino's (a pull's new inode for the
// group the id names now); an inode that had it and still has names gets
// an id of its own and is queued, so its names are written with it.
func (db *DB) takeLinkIDTx(tx querier, e *tree.Entry, ino uint64) error {
	var old uint64
	err := tx.QueryRow(`SELECT ino FROM links WHERE id = ?`, int64(e.LinkID)).Scan(&old)
	if err != nil && !isNoRows(err) {
		return err
	}
	if err == nil && old != ino {
		var nlink uint32
		err := tx.QueryRow(`SELECT nlink FROM inodes WHERE ino = ?`, old).Scan(&nlink)
		if err != nil && !isNoRows(err) {
			return err
		}
		if err == nil && nlink > 0 {
			if err := newLinkIDTx(tx, old); err != nil {
				return err
			}
			if err := db.markDirtyTx(tx, old, DirtyMeta); err != nil {
				return err
			}
		}
	}
	return recordLinkTx(tx, e, ino)
}

// newLinkIDTx gives inode ino a random link id of its own, for a group of
// names that left the one it was in (a merge made a conflict copy of it):
// the id a commit would derive from the device and inode number may be
// the old group's, which another inode carries now.
func newLinkIDTx(tx querier, ino uint64) error {
	if _, err := tx.Exec(`DELETE FROM links WHERE ino = ?`, ino); err != nil {
		return err
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	id := int64(binary.LittleEndian.Uint64(b[:]) | 1)
	_, err := tx.Exec(`INSERT OR REPLACE INTO links(id, ino, content) VALUES(?, ?, x'')`, id, ino)
	return err
}

// linkCountChangedTx queues inode ino, not a directory, whose link count
// changed to nlink by a link, unlink or replacing rename: each tree entry
// of it carries the count (and from two links on a link id), so every
// directory holding one of its names must be written again, not only the
// one whose entries changed. An inode left without links has no entry to
// write.
func (db *DB) linkCountChangedTx(tx querier, ino uint64, nlink uint32) error {
	if nlink == 0 {
		return nil
	}
	return db.markDirtyTx(tx, ino, DirtyMeta)
}
