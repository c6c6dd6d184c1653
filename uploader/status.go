package uploader

import (
	"context"
	"errors"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index"
)

// Status is the state of uploads: the payload of `cloudfs status --json`.
type Status struct {
	QueuedFiles    int       `json:"queued_files"`          // inodes on the dirty queue
	QueuedBytes    int64     `json:"queued_bytes"`          // staged bytes of queued files
	Uploading      int       `json:"uploading"`             // entries the round in progress took (0: idle)
	Failed         []Failure `json:"failed"`                // entries whose last attempt failed
	LastCommit     string    `json:"last_commit,omitempty"` // commit made head by this process, hex
	LastCommitTime time.Time `json:"last_commit_time,omitzero"`
	// Volume is what the tree of LastCommit holds (its commit's stats).
	Volume     *VolumeStats `json:"volume,omitempty"`
	BaseCommit string       `json:"base_commit,omitempty"` // the index's base commit, hex
	LastError  string       `json:"last_error,omitempty"`  // of the last round, if it failed
	Rounds     int64        `json:"rounds"`                // rounds run since start

	// Chunks checked by uploads since start: put because the store lacked
	// them, or already present (deduplicated). Bytes are stored sizes.
	ChunksUploaded int   `json:"chunks_uploaded"`
	BytesUploaded  int64 `json:"bytes_uploaded"`
	ChunksPresent  int   `json:"chunks_present"`
	BytesPresent   int64 `json:"bytes_present"`
	// Of the chunks uploaded, those put in packs, and the packs put.
	ChunksPacked int `json:"chunks_packed"`
	Packs        int `json:"packs"`
	// BytesCut counts the file bytes cut into chunks since start, as
	// they are cut: the progress of a round in progress (the queue
	// shrinks only when it commits).
	BytesCut int64 `json:"bytes_cut"`

	Cache CacheStatus `json:"cache"`
}

// VolumeStats are the totals of a commit's tree (tree.Stats): names that
// are not directories, directories (the root included), bytes of regular
// files and their chunk refs.
type VolumeStats struct {
	Files  uint64 `json:"files"`
	Dirs   uint64 `json:"dirs"`
	Bytes  uint64 `json:"bytes"`
	Chunks uint64 `json:"chunks"`
}

// Failure is a queue entry whose last upload attempt failed.
type Failure struct {
	Ino       uint64    `json:"ino"`
	Path      string    `json:"path"` // one of its names, "" if it has none
	Error     string    `json:"error"`
	Attempts  int       `json:"attempts"`
	NextTry   time.Time `json:"next_try,omitzero"` // zero: only when it changes again (permanent)
	Permanent bool      `json:"permanent"`
}

// CacheStatus is the chunk cache's use.
type CacheStatus struct {
	Limit       int64 `json:"limit"`
	Used        int64 `json:"used"`
	Chunks      int   `json:"chunks"`
	DirtyChunks int   `json:"dirty_chunks"`
	DirtyBytes  int64 `json:"dirty_bytes"`
	Pins        int   `json:"pins"`
	Hits        int64 `json:"hits"`
	Misses      int64 `json:"misses"`
	Evicted     int64 `json:"evicted"`
	Ranged      int64 `json:"ranged"`       // misses served by a verified ranged GET
	RangedBytes int64 `json:"ranged_bytes"` // their bytes
	Deltas      int64 `json:"deltas"`       // chunks uploaded as deltas of the chunk they replaced
}

// maxFailures bounds the failures Status lists.
const maxFailures = 100

// Status returns the current figures.
func (u *Uploader) Status(ctx context.Context) (Status, error) {
	var s Status
	u.mu.Lock()
	c := u.stats
	u.mu.Unlock()
	s.Uploading, s.LastError, s.Rounds = c.uploading, c.lastError, c.rounds
	if !c.lastCommit.IsZero() {
		s.LastCommit, s.LastCommitTime = c.lastCommit.String(), c.lastCommitTime
		v := c.lastCommitStats
		s.Volume = &VolumeStats{Files: v.Files, Dirs: v.Dirs, Bytes: v.Bytes, Chunks: v.Chunks}
	}
	s.ChunksUploaded, s.BytesUploaded = c.chunks.Uploaded, c.chunks.UploadedBytes
	s.ChunksPresent, s.BytesPresent = c.chunks.Present, c.chunks.PresentBytes
	s.ChunksPacked, s.Packs = c.chunks.Packed, c.chunks.Packs
	s.BytesCut = u.cutBytes.Load()
	cu := u.cache.Usage()
	s.Cache = CacheStatus{Limit: cu.Limit, Used: cu.Used, Chunks: cu.Chunks, DirtyChunks: cu.DirtyChunks,
		DirtyBytes: cu.DirtyBytes, Pins: cu.Pins, Hits: cu.Hits, Misses: cu.Misses, Evicted: cu.Evicted,
		Ranged: cu.Ranged, RangedBytes: cu.RangedBytes, Deltas: cu.Deltas}
	base, err := u.db.Meta(ctx, index.MetaBaseCommit)
	if err != nil && !errors.Is(err, index.ErrNotFound) {
		return s, err
	}
	if len(base) == chunkstore.IDSize {
		s.BaseCommit = chunkstore.ID(base).String()
	}
	items, err := u.db.ListDirty(ctx)
	if err != nil {
		return s, err
	}
	s.QueuedFiles = len(items)
	if s.QueuedBytes, err = u.db.QueuedBytes(ctx); err != nil {
		return s, err
	}
	s.Failed = []Failure{}
	for _, it := range items {
		if it.LastError == "" || len(s.Failed) == maxFailures {
			continue
		}
		f := Failure{Ino: it.Ino, Error: it.LastError, Attempts: it.Attempts, Permanent: index.FailedPermanently(it)}
		if !f.Permanent {
			f.NextTry = it.NextTry
		}
		if f.Path, err = u.db.PathOf(ctx, it.Ino); err != nil {
			return s, err
		}
		s.Failed = append(s.Failed, f)
	}
	return s, nil
}
