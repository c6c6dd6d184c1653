package bucket

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// LoadOrInitVolume returns the volume settings of s, for a machine that
// will write to it. When s has none it writes new ones with
// If-None-Match: defaults with a random polynomial when defaults.Pol is
// zero (size bounds left zero take the package defaults). When another
// machine wins that race, its settings are read and returned, so every
// machine ends up with the same settings. Settings of an older format
// this code reads are raised to chunkstore.FormatVersion first (a
// conditional put on their ETag: one machine's raise wins, the others
// read it). Settings of an unknown format are an error matching
// chunkstore.ErrVolumeFormat.
func LoadOrInitVolume(ctx context.Context, s chunkstore.Store, defaults chunkstore.Params) (chunkstore.Volume, error) {
	v, etag, err := readVolume(ctx, s)
	if err == nil && v.Format < chunkstore.FormatVersion {
		return upgradeVolume(ctx, s, v, etag)
	}
	if err == nil || !errors.Is(err, chunkstore.ErrNotFound) {
		return v, err
	}
	nv, err := chunkstore.NewVolume(defaults)
	if err != nil {
		return chunkstore.Volume{}, err
	}
	data, err := encodeVolume(nv)
	if err != nil {
		return chunkstore.Volume{}, err
	}
	if _, err := s.Put(ctx, chunkstore.VolumeKey, data, chunkstore.Cond{IfNoneMatch: true}); err != nil {
		if errors.Is(err, chunkstore.ErrPrecondition) {
			return ReadVolume(ctx, s) // another machine created it first
		}
		return chunkstore.Volume{}, fmt.Errorf("create volume settings in %s: %w", s, err)
	}
	return nv, nil
}

func encodeVolume(v chunkstore.Volume) ([]byte, error) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode volume settings: %w", err)
	}
	return append(data, '\n'), nil
}

// upgradeVolume raises the format of settings v (whose object has ETag
// etag) to chunkstore.FormatVersion, and returns what s then holds.
func upgradeVolume(ctx context.Context, s chunkstore.Store, v chunkstore.Volume, etag string) (chunkstore.Volume, error) {
	nv := v
	nv.Format = chunkstore.FormatVersion
	data, err := encodeVolume(nv)
	if err != nil {
		return chunkstore.Volume{}, err
	}
	if _, err := s.Put(ctx, chunkstore.VolumeKey, data, chunkstore.Cond{IfMatch: etag}); err != nil {
		if errors.Is(err, chunkstore.ErrPrecondition) {
			return ReadVolume(ctx, s) // raised (or changed) by another machine first
		}
		return chunkstore.Volume{}, fmt.Errorf("raise the volume format of %s from %d to %d: %w", s, v.Format, nv.Format, err)
	}
	return nv, nil
}

// ReadVolume reads and validates the volume settings of s; a store
// without them is chunkstore.ErrNotFound.
func ReadVolume(ctx context.Context, s chunkstore.Store) (chunkstore.Volume, error) {
	v, _, err := readVolume(ctx, s)
	return v, err
}

// readVolume is ReadVolume that also returns the settings' ETag.
func readVolume(ctx context.Context, s chunkstore.Store) (chunkstore.Volume, string, error) {
	data, etag, err := s.Get(ctx, chunkstore.VolumeKey)
	if err != nil {
		return chunkstore.Volume{}, "", fmt.Errorf("read volume settings from %s: %w", s, err)
	}
	var v chunkstore.Volume
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&v); err != nil {
		return chunkstore.Volume{}, "", fmt.Errorf("volume settings %s in %s: %v: %w", chunkstore.VolumeKey, s, err, chunkstore.ErrVolumeFormat)
	}
	if err := v.Validate(); err != nil {
		return chunkstore.Volume{}, "", fmt.Errorf("volume settings %s in %s: %w", chunkstore.VolumeKey, s, err)
	}
	return v, etag, nil
}
