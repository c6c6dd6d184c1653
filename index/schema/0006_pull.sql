-- cloudfs index, schema version 6: merging other machines' commits
-- (written by pull*.go).

-- Names a local rename took out of a directory since the directory's tree
-- was last committed (the first rename of each name wins): a pull that
-- finds the remote changed such a name applies the change to the inode
-- where it went (rename vs edit keeps the edit, under the new name).
-- ApplyCommit drops a directory's rows with its new tree; a row whose
-- inode is gone or has changed is ignored.
CREATE TABLE departed (
	parent INTEGER NOT NULL,
	name   TEXT NOT NULL,
	ino    INTEGER NOT NULL,
	PRIMARY KEY (parent, name)
) WITHOUT ROWID;

-- Inodes a pull took the last name of (another machine replaced or deleted
-- the file), with where that name was. One that is written afterwards (it
-- was open) is linked back there as a conflict copy, so no edit is lost.
-- The row goes with the inode.
CREATE TABLE displaced (
	ino     INTEGER PRIMARY KEY,
	parent  INTEGER NOT NULL,
	name    TEXT NOT NULL,
	time_ns INTEGER NOT NULL
);

-- Conflicts merges met, newest last, for status (the newest 1,000 kept).
CREATE TABLE conflicts (
	id        INTEGER PRIMARY KEY AUTOINCREMENT,
	time_ns   INTEGER NOT NULL,
	kind      TEXT NOT NULL,
	path      TEXT NOT NULL,
	copy_path TEXT NOT NULL DEFAULT ''
);
