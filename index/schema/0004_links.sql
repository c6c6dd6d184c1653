-- cloudfs index, schema version 4: hard links of the remote tree (written
-- by links.go and link_names.go).

-- The link id a tree entry carries (tree.Entry.LinkID, its 64 bits as a
-- signed integer) and the inode its names share here. content is a hash of
-- the content of the entry that made the inode (remoteContentKey): a later
-- name with the same link id joins the inode only when its entry has the
-- same content. A row outlives its inode harmlessly (inode numbers are
-- never reused; a row naming a missing inode is replaced).
CREATE TABLE links (
	id      INTEGER PRIMARY KEY,
	ino     INTEGER NOT NULL,
	content BLOB NOT NULL
);
CREATE INDEX links_ino ON links(ino);

-- The directories not loaded yet, for the walk that finds the other names
-- of a hard-linked inode (LoadLinkNames).
CREATE INDEX inodes_not_loaded ON inodes(ino) WHERE loaded = 0;
