package bucket

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// Device is a mount's record in the bucket, devices/<ID>: which commit it
// last applied (pulled or committed), so that gc keeps what it may still
// need, and who it is. Instance changes whenever a cache dir starts
// serving a mount, so two copies of one cache dir (one device id on two
// hosts, or twice on one) find each other out.
type Device struct {
	ID         string    `json:"id"`
	Host       string    `json:"host"`
	Machine    string    `json:"machine,omitempty"` // /etc/machine-id, when there is one
	Instance   string    `json:"instance"`
	Commit     string    `json:"commit,omitempty"` // hex commit id ("": none yet)
	Generation uint64    `json:"generation,omitempty"`
	Time       time.Time `json:"time"` // when the record was written
}

// maxDeviceSize bounds a device record read from the bucket. (The store
// bounds what it reads of one by chunkstore.MaxDeviceSize, far above.)
const maxDeviceSize = 4 << 10

// ErrBadDevice is returned (wrapped) for a device record that does not
// parse or names another device than its key.
var ErrBadDevice = errors.New("bad device record")

// CheckDeviceID reports whether id may name a device: 1 to 128 bytes of
// letters, digits, '.', '_' and '-'.
func CheckDeviceID(id string) error {
	if id == "" || len(id) > 128 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		return fmt.Errorf("device id %q: %w", id, ErrBadDevice)
	}
	return nil
}

// ReadDevice returns device id's record and its ETag, or
// chunkstore.ErrNotFound.
func ReadDevice(ctx context.Context, s chunkstore.Store, id string) (Device, string, error) {
	if err := CheckDeviceID(id); err != nil {
		return Device{}, "", err
	}
	data, etag, err := s.Get(ctx, chunkstore.DeviceKey(id))
	if err != nil {
		return Device{}, "", fmt.Errorf("read device %s: %w", id, err)
	}
	d, err := parseDevice(data)
	if err != nil {
		return Device{}, "", fmt.Errorf("device %s: %w", id, err)
	}
	if d.ID != id {
		return Device{}, "", fmt.Errorf("device record %s names device %q: %w", id, d.ID, ErrBadDevice)
	}
	return d, etag, nil
}

func parseDevice(data []byte) (Device, error) {
	var d Device
	if len(data) > maxDeviceSize {
		return d, fmt.Errorf("%d bytes: %w", len(data), ErrBadDevice)
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return d, fmt.Errorf("%v: %w", err, ErrBadDevice)
	}
	if err := CheckDeviceID(d.ID); err != nil {
		return d, err
	}
	if d.Commit != "" {
		if _, err := chunkstore.ParseID(d.Commit); err != nil {
			return d, fmt.Errorf("commit %q: %w", d.Commit, ErrBadDevice)
		}
	}
	return d, nil
}

// PutDevice writes d's record. With etag set it writes only over that
// version (ErrPrecondition otherwise); with create, only when there is
// none. It returns the new ETag.
func PutDevice(ctx context.Context, s chunkstore.Store, d Device, etag string, create bool) (string, error) {
	if err := CheckDeviceID(d.ID); err != nil {
		return "", err
	}
	data, err := json.Marshal(d)
	if err != nil {
		return "", fmt.Errorf("encode device %s: %w", d.ID, err)
	}
	cond := chunkstore.Cond{IfMatch: etag, IfNoneMatch: create && etag == ""}
	tag, err := s.Put(ctx, chunkstore.DeviceKey(d.ID), append(data, '\n'), cond)
	if err != nil {
		return "", fmt.Errorf("write device %s: %w", d.ID, err)
	}
	return tag, nil
}

// ListDevices returns every device record that parses; the others are
// returned as errors beside them (one per record).
func ListDevices(ctx context.Context, s chunkstore.Store) ([]Device, []error, error) {
	var keys []string
	err := s.List(ctx, chunkstore.DevicesPrefix, func(i chunkstore.Info) error {
		keys = append(keys, i.Key)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list devices: %w", err)
	}
	var out []Device
	var bad []error
	for _, k := range keys {
		d, _, err := ReadDevice(ctx, s, strings.TrimPrefix(k, chunkstore.DevicesPrefix))
		if errors.Is(err, chunkstore.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			if errors.Is(err, ErrBadDevice) {
				bad = append(bad, err)
				continue
			}
			return nil, nil, err
		}
		out = append(out, d)
	}
	return out, bad, nil
}
