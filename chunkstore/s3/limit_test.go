package s3

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// TestGetBounded: neither a Content-Length nor a body sizes a read beyond
// the bound of the object's kind.
func TestGetBounded(t *testing.T) {
	isolateEnv(t)
	f := newFake(t, false)
	s := newTestStore(t, f)
	ctx := context.Background()
	head := "GET /" + testBucket + "/vol/head"

	// A Content-Length of 200 MiB for a head: refused before reading.
	f.set(head, reply{status: 200, body: "short", header: map[string]string{"Content-Length": "209715200"}})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := s.Get(ctx, chunkstore.HeadKey)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, chunkstore.ErrTooLarge) || !chunkstore.IsPermanent(err) {
		t.Errorf("Get of a head claiming 200 MiB: %v, want a permanent ErrTooLarge", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
		t.Errorf("Get of a head claiming 200 MiB allocated %d bytes", got)
	}

	// No Content-Length (chunked) and one byte too many.
	f.set(head, reply{status: 200, body: strings.Repeat("h", chunkstore.MaxHeadSize+1)})
	if _, _, err := s.Get(ctx, chunkstore.HeadKey); !errors.Is(err, chunkstore.ErrTooLarge) {
		t.Errorf("Get of a head of %d bytes: %v, want ErrTooLarge", chunkstore.MaxHeadSize+1, err)
	}
	f.set(head, reply{status: 200, body: strings.Repeat("h", chunkstore.MaxHeadSize)})
	if data, _, err := s.Get(ctx, chunkstore.HeadKey); err != nil || len(data) != chunkstore.MaxHeadSize {
		t.Errorf("Get of a head at the bound: %d bytes, %v", len(data), err)
	}

	// A ranged read returns no more than asked, whatever comes.
	obj := "GET /" + testBucket + "/vol/devices/d"
	f.set(obj, reply{status: 206, body: "0123456789", header: map[string]string{"Content-Range": "bytes 0-9/10"}})
	if got, err := s.GetRange(ctx, "devices/d", 0, 4); err == nil {
		t.Errorf("GetRange of 4 bytes answered with 10: %q and no error", got)
	}
	// A total beyond the kind's bound.
	f.set(obj, reply{status: 206, body: "0123", header: map[string]string{"Content-Range": "bytes 0-3/3221225472"}})
	if _, err := chunkstore.GetRangeMeta(ctx, s, "devices/d", 0, 4); !errors.Is(err, chunkstore.ErrTooLarge) {
		t.Errorf("GetRangeMeta of a 3 GiB device record: %v, want ErrTooLarge", err)
	}
	// A server that ignores Range sends the whole object: bounded too.
	f.set(obj, reply{status: 200, body: strings.Repeat("d", chunkstore.MaxDeviceSize+1)})
	if _, err := s.GetRange(ctx, "devices/d", 0, 4); !errors.Is(err, chunkstore.ErrTooLarge) {
		t.Errorf("GetRange ignored by the server, %d bytes: %v, want ErrTooLarge", chunkstore.MaxDeviceSize+1, err)
	}
}
