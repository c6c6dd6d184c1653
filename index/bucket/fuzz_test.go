package bucket

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/mem"
	"github.com/cloudfs/cloudfs/index/tree"
)

// storeWith returns a store holding data under key.
func storeWith(t *testing.T, key string, data []byte) chunkstore.Store {
	s := mem.New("fuzz")
	if _, err := s.Put(context.Background(), key, data, chunkstore.Cond{}); err != nil {
		t.Fatal(err)
	}
	return s
}

// FuzzReadHead feeds arbitrary head objects to ReadHead: it returns a
// commit id whose hex is head's trimmed content, or an error that says
// head is corrupt (or too large); and what SwapHead writes reads back.
func FuzzReadHead(f *testing.F) {
	id := chunkstore.Hash([]byte("commit"))
	f.Add([]byte(id.String()))
	f.Add([]byte(id.String() + "\n"))
	f.Add([]byte(id.String()[:10]))
	f.Add([]byte(strings.ToUpper(id.String())))
	f.Add([]byte(" " + id.String() + "x"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		got, _, ok, err := ReadHead(ctx, storeWith(t, chunkstore.HeadKey, data))
		if err != nil {
			if !errors.Is(err, tree.ErrCorrupt) && !errors.Is(err, chunkstore.ErrTooLarge) {
				t.Fatalf("ReadHead of %q: %v, want ErrCorrupt", data, err)
			}
			return
		}
		if !ok || len(data) > maxHeadSize || !strings.EqualFold(got.String(), strings.TrimSpace(string(data))) {
			t.Fatalf("ReadHead of %q = %s, %v", data, got, ok)
		}
		s := mem.New("swap")
		if _, err := SwapHead(ctx, s, got, ""); err != nil {
			t.Fatal(err)
		}
		if again, _, _, err := ReadHead(ctx, s); err != nil || again != got {
			t.Fatalf("head written as %s reads back as %s, %v", got, again, err)
		}
	})
}

// FuzzReadVolume feeds arbitrary settings objects to ReadVolume: valid
// settings, or an error matching ErrVolumeFormat (or too large); and
// valid settings written back read the same.
func FuzzReadVolume(f *testing.F) {
	v, err := chunkstore.NewVolume(chunkstore.DefaultParams(chunkstore.TestPol))
	if err != nil {
		f.Fatal(err)
	}
	good, _ := json.MarshalIndent(v, "", "  ")
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(strings.Replace(string(good), `"format": 2`, `"format": 3`, 1)))
	f.Add([]byte(strings.Replace(string(good), `"max_size": 8388608`, `"max_size": 1099511627776`, 1)))
	f.Add([]byte(`{"chunker":{"min_size":-1}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		v, err := ReadVolume(ctx, storeWith(t, chunkstore.VolumeKey, data))
		if err != nil {
			if !errors.Is(err, chunkstore.ErrVolumeFormat) && !errors.Is(err, chunkstore.ErrTooLarge) {
				t.Fatalf("ReadVolume of %q: %v, want ErrVolumeFormat", data, err)
			}
			return
		}
		if err := v.Validate(); err != nil {
			t.Fatalf("ReadVolume returned invalid settings %+v: %v", v, err)
		}
		if v.Chunker.MaxSize > chunkstore.MaxChunkSize || v.Chunker.MinSize > v.Chunker.MaxSize {
			t.Fatalf("chunk sizes %d..%d accepted", v.Chunker.MinSize, v.Chunker.MaxSize)
		}
		again, _ := json.Marshal(v)
		v2, err := ReadVolume(ctx, storeWith(t, chunkstore.VolumeKey, again))
		if err != nil || v2 != v {
			t.Fatalf("settings %+v written back read as %+v, %v", v, v2, err)
		}
	})
}

// FuzzParseDevice feeds arbitrary device records to parseDevice: a record
// with a valid id (and commit), or ErrBadDevice; and a record written back
// parses to the same.
func FuzzParseDevice(f *testing.F) {
	d := Device{ID: "laptop-1", Host: "laptop", Machine: "abc", Instance: "i1",
		Commit: chunkstore.Hash([]byte("c")).String(), Generation: 7, Time: time.Unix(1700000000, 5).UTC()}
	good, _ := json.Marshal(d)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(strings.Replace(string(good), "laptop-1", "../etc", 1)))
	f.Add([]byte(strings.Replace(string(good), d.Commit, "zz", 1)))
	f.Add([]byte(`{"id":"x","time":"not a time"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := parseDevice(data)
		if err != nil {
			if !errors.Is(err, ErrBadDevice) {
				t.Fatalf("parseDevice of %q: %v, want ErrBadDevice", data, err)
			}
			return
		}
		if len(data) > maxDeviceSize || CheckDeviceID(d.ID) != nil {
			t.Fatalf("parseDevice accepted %d bytes, id %q", len(data), d.ID)
		}
		if d.Commit != "" {
			if _, err := chunkstore.ParseID(d.Commit); err != nil {
				t.Fatalf("parseDevice accepted commit %q", d.Commit)
			}
		}
		again, err := json.Marshal(d)
		if err != nil {
			return // a time json cannot write (year beyond 9999)
		}
		d2, err := parseDevice(again)
		if err != nil && len(again) <= maxDeviceSize {
			t.Fatalf("record %+v written back: %v", d, err)
		}
		if err == nil && (d2.ID != d.ID || d2.Host != d.Host || d2.Machine != d.Machine || d2.Instance != d.Instance ||
			d2.Commit != d.Commit || d2.Generation != d.Generation || !d2.Time.Equal(d.Time)) {
			t.Fatalf("record %+v written back reads as %+v", d, d2)
		}
	})
}

// FuzzParseMark feeds arbitrary gc marks to ReadMark: a mark whose every
// object has a key and whose re-encoding reads back the same, or an error
// matching ErrBadMark.
func FuzzParseMark(f *testing.F) {
	id := chunkstore.Hash([]byte("x"))
	good, _ := encodeMark(&Mark{Time: time.Unix(1700000000, 0).UTC(), Grace: time.Hour, Host: "h",
		Objects: []Ref{{RefChunk, id}, {RefCommit, id}}})
	f.Add(good)
	f.Add([]byte(markMagic + "{}\n"))
	f.Add([]byte(markMagic))
	f.Add(good[:len(good)-5])
	f.Fuzz(func(t *testing.T, data []byte) {
		key := markKey(time.Unix(1700000000, 0))
		m, err := ReadMark(context.Background(), storeWith(t, key, data), key)
		if err != nil {
			if !errors.Is(err, ErrBadMark) {
				t.Fatalf("ReadMark: %v, want ErrBadMark", err)
			}
			return
		}
		for _, o := range m.Objects {
			if o.Key() == "" {
				t.Fatalf("object %v without a key", o)
			}
		}
		again, err := encodeMark(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := parseMark(key, again)
		if err != nil || len(m2.Objects) != len(m.Objects) || !m2.Time.Equal(m.Time) || m2.Grace != m.Grace {
			t.Fatalf("re-encoded mark reads back as %+v, %v", m2, err)
		}
	})
}
