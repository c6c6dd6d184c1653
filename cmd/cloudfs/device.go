package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cloudfs/cloudfs/index"
)

// deviceID returns this cache dir's device id, the name its commits carry:
// generated on first mount (host name and a random suffix, so two machines
// with one host name differ) and kept in the index's meta table.
func deviceID(ctx context.Context, idx *index.DB) (string, error) {
	v, err := idx.Meta(ctx, index.MetaDeviceID)
	switch {
	case err == nil && len(v) > 0:
		return string(v), nil
	case err != nil && !errors.Is(err, index.ErrNotFound):
		return "", err
	}
	host, err := os.Hostname()
	host = strings.Trim(unsafeName.ReplaceAllString(host, "-"), "-.")
	if err != nil || host == "" {
		host = "cloudfs"
	}
	if len(host) > 48 {
		host = host[:48]
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("device id: %w", err)
	}
	id := host + "-" + hex.EncodeToString(b[:])
	if err := idx.SetMeta(ctx, index.MetaDeviceID, []byte(id)); err != nil {
		return "", err
	}
	return id, nil
}
