package chunkstore

import (
	"errors"
	"fmt"

	"github.com/restic/chunker"
)

// FormatVersion is the volume format this code writes. Version 3 added
// packs (pack.go: small chunks several to an object, placed by tree
// entries' locations); version 2 is the tree, manifest and commit objects
// of index/tree format 2 (directory totals, hard-link counts, the root's
// attributes). A version-2 volume is read as it is, and its settings are
// raised to 3 (UpgradeFormat) before this code writes to it, so that an
// older cloudfs refuses it rather than misreads a pack's chunks as
// missing. Version 1 volumes were written by an earlier cloudfs and are
// not read; a newer version is refused.
const FormatVersion = 3

// MinFormatVersion is the oldest volume format this code reads.
const MinFormatVersion = 2

// Names of the algorithms a Volume of format 2 or 3 uses.
const (
	HashBLAKE3   = "blake3-256"
	CompressZstd = "zstd"
)

// ErrVolumeFormat is returned (wrapped) when the volume settings object is
// unreadable or names a format, hash or compression this code does not know.
var ErrVolumeFormat = errors.New("unsupported volume format")

// Volume is the settings object of a volume, stored as JSON under VolumeKey
// (read and written by package index/bucket). It is written when the
// first machine mounts an empty store, and changed only to raise Format.
type Volume struct {
	Format      int    `json:"format"`
	Hash        string `json:"hash"`
	Compression string `json:"compression"`
	Chunker     Params `json:"chunker"`
}

// Validate reports whether v is a volume this code can use.
func (v Volume) Validate() error {
	switch {
	case v.Format > FormatVersion:
		return fmt.Errorf("volume format version %d (this cloudfs supports %d; upgrade cloudfs): %w", v.Format, FormatVersion, ErrVolumeFormat)
	case v.Format < MinFormatVersion:
		return fmt.Errorf("volume format version %d (this cloudfs reads versions %d to %d, the volume was written by an earlier one): %w",
			v.Format, MinFormatVersion, FormatVersion, ErrVolumeFormat)
	}
	if v.Hash != HashBLAKE3 {
		return fmt.Errorf("volume hash %q (want %q): %w", v.Hash, HashBLAKE3, ErrVolumeFormat)
	}
	if v.Compression != CompressZstd {
		return fmt.Errorf("volume compression %q (want %q): %w", v.Compression, CompressZstd, ErrVolumeFormat)
	}
	if err := v.Chunker.Validate(); err != nil {
		return fmt.Errorf("volume: %w: %w", err, ErrVolumeFormat)
	}
	return nil
}

// NewVolume returns the settings of a new volume with chunker parameters
// p: a random polynomial when p.Pol is zero, and the package defaults for
// size bounds left zero.
func NewVolume(p Params) (Volume, error) {
	if p.Pol == 0 {
		pol, err := chunker.RandomPolynomial()
		if err != nil {
			return Volume{}, fmt.Errorf("new volume polynomial: %w", err)
		}
		p.Pol = pol
	}
	if p.MinSize == 0 {
		p.MinSize = DefaultMinSize
	}
	if p.MaxSize == 0 {
		p.MaxSize = DefaultMaxSize
	}
	if p.AverageBits == 0 {
		p.AverageBits = DefaultAverageBits
	}
	v := Volume{Format: FormatVersion, Hash: HashBLAKE3, Compression: CompressZstd, Chunker: p}
	if err := v.Validate(); err != nil {
		return Volume{}, fmt.Errorf("new volume: %w", err)
	}
	return v, nil
}
