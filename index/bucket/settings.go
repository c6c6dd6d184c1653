package bucket

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// LoadOrInitVolume returns the volume settings of s. When s has none it
// writes new ones with If-None-Match: defaults with a random polynomial
// when defaults.Pol is zero (size bounds left zero take the package
// defaults). When another machine wins that race, its settings are read
// and returned, so every machine ends up with the same settings. Settings
// of an unknown format are an error matching chunkstore.ErrVolumeFormat.
func LoadOrInitVolume(ctx context.Context, s chunkstore.Store, defaults chunkstore.Params) (chunkstore.Volume, error) {
	v, err := ReadVolume(ctx, s)
	if err == nil || !errors.Is(err, chunkstore.ErrNotFound) {
		return v, err
	}
	nv, err := chunkstore.NewVolume(defaults)
	if err != nil {
		return chunkstore.Volume{}, err
	}
	data, err := json.MarshalIndent(nv, "", "  ")
	if err != nil {
		return chunkstore.Volume{}, fmt.Errorf("encode volume settings: %w", err)
	}
	data = append(data, '\n')
	if _, err := s.Put(ctx, chunkstore.VolumeKey, data, chunkstore.Cond{IfNoneMatch: true}); err != nil {
		if errors.Is(err, chunkstore.ErrPrecondition) {
			return ReadVolume(ctx, s) // another machine created it first
		}
		return chunkstore.Volume{}, fmt.Errorf("create volume settings in %s: %w", s, err)
	}
	return nv, nil
}

// ReadVolume reads and validates the volume settings of s; a store
// without them is chunkstore.ErrNotFound.
func ReadVolume(ctx context.Context, s chunkstore.Store) (chunkstore.Volume, error) {
	data, _, err := s.Get(ctx, chunkstore.VolumeKey)
	if err != nil {
		return chunkstore.Volume{}, fmt.Errorf("read volume settings from %s: %w", s, err)
	}
	var v chunkstore.Volume
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&v); err != nil {
		return chunkstore.Volume{}, fmt.Errorf("volume settings %s in %s: %v: %w", chunkstore.VolumeKey, s, err, chunkstore.ErrVolumeFormat)
	}
	if err := v.Validate(); err != nil {
		return chunkstore.Volume{}, fmt.Errorf("volume settings %s in %s: %w", chunkstore.VolumeKey, s, err)
	}
	return v, nil
}
