-- cloudfs index, schema version 5: staged bytes that an upload made clean.
-- After a file's upload its staging file still holds the bytes just
-- uploaded: they stay staged (reads are served from the local file, and a
-- file wholly staged can be read through the kernel's passthrough) but are
-- clean: identical to the extents, so the uploader does not read them
-- again. clean_ns is when the staging file became wholly clean (0: it
-- holds bytes not uploaded yet); the file system drops such files after a
-- while, or at once when the cache disk runs short.
ALTER TABLE staging ADD COLUMN clean BLOB NOT NULL DEFAULT x'';
ALTER TABLE staging ADD COLUMN clean_ns INTEGER NOT NULL DEFAULT 0;
-- Earlier versions left uploaded files with a staging row and no ranges.
UPDATE staging SET clean_ns = 1 WHERE ranges = x'';
CREATE INDEX staging_clean ON staging(clean_ns) WHERE clean_ns > 0;
