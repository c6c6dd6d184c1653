-- cloudfs index, schema version 2: what the index knows about the remote
-- store beyond the namespace (written by the remote_*.go code).

-- The plaintext length of chunks the index has seen whole (in a remote
-- tree, or cut by the uploader). An extent is a whole chunk when its
-- chunk_off is 0 and its len equals the chunk's len here; the uploader
-- reuses whole-chunk extents as they are and re-chunks only the rest.
CREATE TABLE chunk_lens (
	chunk BLOB PRIMARY KEY,
	len   INTEGER NOT NULL
) WITHOUT ROWID;

-- Objects (store keys) written by a failed upload attempt. Garbage
-- collection deletes those no commit references once they are older than
-- its grace period; it must never delete them at once (another machine may
-- already reference the same content-addressed object).
CREATE TABLE orphan_candidates (
	key     TEXT PRIMARY KEY,
	time_ns INTEGER NOT NULL -- the latest failed attempt that wrote it
) WITHOUT ROWID;
