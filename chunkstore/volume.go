package chunkstore

import (
	"errors"
	"fmt"

	"github.com/restic/chunker"
)

// FormatVersion is the volume format this code reads and writes. A volume
// with another version is refused rather than misread. Version 2 is the
// tree, manifest and commit objects of index/tree format 2 (directory
// totals, hard-link counts, the root's attributes); version 1 volumes were
// written by an earlier cloudfs and are not read.
const FormatVersion = 2

// Names of the algorithms a Volume of FormatVersion 2 uses.
const (
	HashBLAKE3   = "blake3-256"
	CompressZstd = "zstd"
)

// ErrVolumeFormat is returned (wrapped) when the volume settings object is
// unreadable or names a format, hash or compression this code does not know.
var ErrVolumeFormat = errors.New("unsupported volume format")

// Volume is the settings object of a volume, stored as JSON under VolumeKey
// (read and written by package index/bucket). It is written once, when the
// first machine mounts an empty store, and never changed.
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
	case v.Format != FormatVersion:
		return fmt.Errorf("volume format version %d (this cloudfs reads only version %d, the volume was written by an earlier one): %w",
			v.Format, FormatVersion, ErrVolumeFormat)
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
