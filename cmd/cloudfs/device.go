package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/bucket"
)

// Meta keys of the device's identity beyond index.MetaDeviceID.
const (
	metaDeviceMachine  = "device_machine"       // machine id of the machine that last mounted the cache dir
	metaDeviceInstance = "device_instance"      // instance token of the last mount that wrote the device record
	metaDevicePrevInst = "device_instance_prev" // the one before (a crash between the two writes)
)

// hostName returns this machine's host name as it appears in device ids and
// conflict copies.
func hostName() string {
	host, err := os.Hostname()
	host = strings.Trim(unsafeName.ReplaceAllString(host, "-"), "-.")
	if err != nil || host == "" {
		host = "cloudfs"
	}
	if len(host) > 48 {
		host = host[:48]
	}
	return host
}

// machineID returns /etc/machine-id, or "" when there is none.
func machineID() string {
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if b, err := os.ReadFile(p); err == nil {
			if id := strings.TrimSpace(string(b)); id != "" {
				return id
			}
		}
	}
	return ""
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// newDeviceID makes a device id: the host name and four random bytes, so
// two machines with one host name still differ.
func newDeviceID() (string, error) {
	r, err := randomHex(4)
	if err != nil {
		return "", fmt.Errorf("device id: %w", err)
	}
	return hostName() + "-" + r, nil
}

// deviceID returns this cache dir's device id, the name its commits carry:
// generated on first mount and kept in the index's meta table. A cache
// dir last mounted on another machine (its recorded machine id differs:
// it was copied or moved) becomes a new device, so two hosts never share
// one id.
func deviceID(ctx context.Context, idx *index.DB, log *zap.Logger) (string, error) {
	machine := machineID()
	v, err := idx.Meta(ctx, index.MetaDeviceID)
	switch {
	case err == nil && len(v) > 0:
		prev, merr := idx.Meta(ctx, metaDeviceMachine)
		if merr != nil && !errors.Is(merr, index.ErrNotFound) {
			return "", merr
		}
		if machine == "" || len(prev) == 0 || string(prev) == machine {
			if len(prev) == 0 && machine != "" {
				if err := idx.SetMeta(ctx, metaDeviceMachine, []byte(machine)); err != nil {
					return "", err
				}
			}
			return string(v), nil
		}
		id, err := forkDevice(ctx, idx, machine)
		if err == nil {
			log.Warn("this cache dir was last mounted on another machine (copied or moved): it mounts as a new device",
				zap.String("old_device", string(v)), zap.String("device", id))
		}
		return id, err
	case err != nil && !errors.Is(err, index.ErrNotFound):
		return "", err
	}
	return forkDevice(ctx, idx, machine)
}

// forkDevice gives the cache dir a new device id on this machine.
func forkDevice(ctx context.Context, idx *index.DB, machine string) (string, error) {
	id, err := newDeviceID()
	if err != nil {
		return "", err
	}
	for k, val := range map[string]string{index.MetaDeviceID: id, metaDeviceMachine: machine,
		metaDeviceInstance: "", metaDevicePrevInst: ""} {
		if err := idx.SetMeta(ctx, k, []byte(val)); err != nil {
			return "", err
		}
	}
	return id, nil
}

// deviceClaim is what claimDevice settled: the device id (new when a copy
// of this cache dir was found live elsewhere), this mount's instance token
// and its device record's ETag ("" when the record could not be written).
type deviceClaim struct {
	device, instance, etag string
}

// claimDevice writes this mount's device record with a new instance token,
// after checking that the record in the bucket was last written by this
// cache dir: one written by another instance means a copy of the cache
// dir is (or was) mounted elsewhere, and this one becomes a new device
// rather than share the id. Offline (no store), it only makes the token;
// the record is written later.
func claimDevice(ctx context.Context, idx *index.DB, s chunkstore.Store, device string, log *zap.Logger) (deviceClaim, error) {
	meta := func(k string) (string, error) {
		v, err := idx.Meta(ctx, k)
		if errors.Is(err, index.ErrNotFound) {
			return "", nil
		}
		return string(v), err
	}
	for try := 0; ; try++ {
		cur, err := meta(metaDeviceInstance)
		if err != nil {
			return deviceClaim{}, err
		}
		prev, err := meta(metaDevicePrevInst)
		if err != nil {
			return deviceClaim{}, err
		}
		inst, err := randomHex(8)
		if err != nil {
			return deviceClaim{}, err
		}
		claim := deviceClaim{device: device, instance: inst}
		if s == nil {
			return claim, nil
		}
		rec, etag, err := bucket.ReadDevice(ctx, s, device)
		switch {
		case errors.Is(err, chunkstore.ErrNotFound):
			etag = ""
		case errors.Is(err, bucket.ErrBadDevice):
			log.Warn("the bucket's record of this device is unreadable; writing it anew", zap.Error(err))
		case err != nil:
			return claim, nil // offline or failing: written later, unconditionally
		case rec.Instance != cur && rec.Instance != prev && try == 0:
			old := device
			if device, err = forkDevice(ctx, idx, machineID()); err != nil {
				return deviceClaim{}, err
			}
			log.Warn("another copy of this cache dir wrote this device's record: this mount becomes a new device",
				zap.String("old_device", old), zap.String("other_host", rec.Host), zap.Time("other_time", rec.Time),
				zap.String("device", device))
			continue
		}
		// The token first, durably: a crash before the record is written
		// leaves the record's token as the previous one.
		if err := idx.SetMeta(ctx, metaDevicePrevInst, []byte(cur)); err != nil {
			return deviceClaim{}, err
		}
		if err := idx.SetMeta(ctx, metaDeviceInstance, []byte(inst)); err != nil {
			return deviceClaim{}, err
		}
		d := bucket.Device{ID: device, Host: hostName(), Machine: machineID(), Instance: inst, Time: time.Now().UTC()}
		if base, err := idx.Meta(ctx, index.MetaBaseCommit); err == nil && len(base) == chunkstore.IDSize {
			d.Commit = chunkstore.ID(base).String()
		}
		tag, err := bucket.PutDevice(ctx, s, d, etag, etag == "")
		if errors.Is(err, chunkstore.ErrPrecondition) && try == 0 {
			continue // written meanwhile: look again
		}
		if err != nil {
			log.Warn("device record not written; it is written later", zap.Error(err))
			return claim, nil
		}
		claim.etag = tag
		return claim, nil
	}
}
