-- cloudfs index, schema version 3: the totals of the remote trees the
-- index records (written by the remote_*.go code).

-- Directories: the totals (tree.Stats) of the tree named by tree_id, so a
-- commit sums a rebuilt directory's entries without loading the subtrees
-- it keeps. NULL while tree_id is NULL (never committed), and for tree ids
-- recorded by a schema before this one.
ALTER TABLE inodes ADD COLUMN sub_files INTEGER;
ALTER TABLE inodes ADD COLUMN sub_dirs INTEGER;
ALTER TABLE inodes ADD COLUMN sub_bytes INTEGER;
ALTER TABLE inodes ADD COLUMN sub_chunks INTEGER;
