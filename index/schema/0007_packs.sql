-- cloudfs index, schema version 7: packs (chunkstore pack.go). Where a
-- chunk is in a pack, when the index has seen it there (in a remote tree
-- entry's locations, or put there by this machine's uploader): pack id,
-- offset and length of its stored form. NULL: the chunk is an object of its
-- own, or the index has not seen a location. The first location seen is
-- kept (every one is as good while its pack exists).
ALTER TABLE chunk_lens ADD COLUMN pack BLOB;
ALTER TABLE chunk_lens ADD COLUMN pack_off INTEGER;
ALTER TABLE chunk_lens ADD COLUMN pack_len INTEGER;
