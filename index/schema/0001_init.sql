-- cloudfs index, schema version 1. Times are nanoseconds since the Unix
-- epoch; sizes and offsets are bytes; chunk and tree ids are 32-byte blobs.

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE inodes (
	ino          INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused
	generation   INTEGER NOT NULL DEFAULT 1,
	mode         INTEGER NOT NULL,                  -- S_IFMT | permission bits
	uid          INTEGER NOT NULL,
	gid          INTEGER NOT NULL,
	size         INTEGER NOT NULL DEFAULT 0,
	nlink        INTEGER NOT NULL,
	rdev         INTEGER NOT NULL DEFAULT 0,
	atime_ns     INTEGER NOT NULL,
	mtime_ns     INTEGER NOT NULL,
	ctime_ns     INTEGER NOT NULL,
	btime_ns     INTEGER NOT NULL,
	target       BLOB,                              -- symlink target
	data_version INTEGER NOT NULL DEFAULT 0,        -- bumped by content changes
	tree_id      BLOB,                              -- directories: remote tree last synced
	loaded       INTEGER NOT NULL DEFAULT 1         -- directories: 0 = entries still only in tree_id
);
CREATE INDEX inodes_orphans ON inodes(ino) WHERE nlink = 0;

CREATE TABLE dentries (
	parent INTEGER NOT NULL,
	name   TEXT NOT NULL,
	ino    INTEGER NOT NULL,
	cookie INTEGER NOT NULL, -- readdir offset: unique per parent, only grows
	PRIMARY KEY (parent, name)
) WITHOUT ROWID;
CREATE UNIQUE INDEX dentries_cookie ON dentries(parent, cookie);
CREATE INDEX dentries_ino ON dentries(ino);

CREATE TABLE xattrs (
	ino   INTEGER NOT NULL,
	name  TEXT NOT NULL,
	value BLOB NOT NULL,
	PRIMARY KEY (ino, name)
) WITHOUT ROWID;

CREATE TABLE extents (
	ino       INTEGER NOT NULL,
	off       INTEGER NOT NULL,
	len       INTEGER NOT NULL,
	chunk     BLOB NOT NULL,
	chunk_off INTEGER NOT NULL,
	PRIMARY KEY (ino, off)
) WITHOUT ROWID;
CREATE INDEX extents_chunk ON extents(chunk);

-- One row per file with staged bytes: the staging file's name (relative to
-- the staging directory) and the valid ranges in it (Ranges.MarshalBinary).
CREATE TABLE staging (
	ino    INTEGER PRIMARY KEY,
	name   TEXT NOT NULL,
	ranges BLOB NOT NULL
);

-- The durable dirty queue. seq changes on every re-queue so an uploader can
-- tell a file queued again during its upload.
CREATE TABLE dirty (
	ino         INTEGER PRIMARY KEY,
	reasons     INTEGER NOT NULL,
	queued_ns   INTEGER NOT NULL, -- first queued (since last upload)
	changed_ns  INTEGER NOT NULL, -- last change (settle delay)
	seq         INTEGER NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT NOT NULL DEFAULT '',
	next_try_ns INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX dirty_next ON dirty(next_try_ns, queued_ns);
