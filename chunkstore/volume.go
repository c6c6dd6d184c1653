package chunkstore

import (
	"bytes"
	"context"
	"encoding/json"
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

// Volume is the settings object of a volume, stored as JSON under VolumeKey.
// It is written once, when the first machine mounts an empty store, and
// never changed.
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

// LoadOrInitVolume returns the volume settings of s. When s has none it
// writes new ones with Cond.IfNoneMatch: defaults with a random polynomial
// when defaults.Pol is zero (size bounds left zero take the package
// defaults). When another machine wins that race, its settings are read and
// returned, so every machine ends up with the same Volume. Settings of an
// unknown format are an error matching ErrVolumeFormat.
func LoadOrInitVolume(ctx context.Context, s Store, defaults Params) (Volume, error) {
	v, err := loadVolume(ctx, s)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return v, err
	}
	nv, err := newVolume(defaults)
	if err != nil {
		return Volume{}, err
	}
	data, err := json.MarshalIndent(nv, "", "  ")
	if err != nil {
		return Volume{}, fmt.Errorf("encode volume settings: %w", err)
	}
	data = append(data, '\n')
	if _, err := s.Put(ctx, VolumeKey, data, Cond{IfNoneMatch: true}); err != nil {
		if errors.Is(err, ErrPrecondition) {
			return loadVolume(ctx, s) // another machine created it first
		}
		return Volume{}, fmt.Errorf("create volume settings in %s: %w", s, err)
	}
	return nv, nil
}

func loadVolume(ctx context.Context, s Store) (Volume, error) {
	data, _, err := s.Get(ctx, VolumeKey)
	if err != nil {
		return Volume{}, fmt.Errorf("read volume settings from %s: %w", s, err)
	}
	var v Volume
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&v); err != nil {
		return Volume{}, fmt.Errorf("volume settings %s in %s: %v: %w", VolumeKey, s, err, ErrVolumeFormat)
	}
	if err := v.Validate(); err != nil {
		return Volume{}, fmt.Errorf("volume settings %s in %s: %w", VolumeKey, s, err)
	}
	return v, nil
}

func newVolume(p Params) (Volume, error) {
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
