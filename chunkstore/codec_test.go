package chunkstore

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestCodecRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		plain   []byte
		wantEnc byte
	}{
		{"empty", nil, encRaw},
		{"tiny", []byte("a"), encRaw},
		{"random", randomData(7, 1<<20), encRaw},
		{"text", bytes.Repeat([]byte("cloudfs compresses text well. "), 40000), encZstd},
		{"zeros", make([]byte, 8<<20), encZstd},
		// Samples of the start, middle and end decide for a large chunk:
		// random samples around compressible bytes leave it raw, text
		// around random bytes still compresses it.
		{"random head, middle and tail", sampled(randomData(8, 1<<20), 0), encRaw},
		{"text head, middle and tail", sampled(bytes.Repeat([]byte("text "), 1<<18), 9), encZstd},
	} {
		stored := Encode(tc.plain)
		if stored[0] != tc.wantEnc {
			t.Errorf("%s: encoding %d, want %d", tc.name, stored[0], tc.wantEnc)
		}
		if len(stored) > len(tc.plain)+1 {
			t.Errorf("%s: stored %d bytes for %d", tc.name, len(stored), len(tc.plain))
		}
		got, err := Decode(stored, Hash(tc.plain))
		if err != nil || !bytes.Equal(got, tc.plain) {
			t.Errorf("%s: decode: %d bytes, %v", tc.name, len(got), err)
		}
	}
}

func TestDecodeCorrupt(t *testing.T) {
	text := bytes.Repeat([]byte("some compressible text "), 5000)
	id := Hash(text)
	zstd := Encode(text)
	raw := Encode(randomData(8, 5000))
	rawID := Hash(raw[1:])
	flip := func(b []byte, i int) []byte { b = append([]byte{}, b...); b[i] ^= 1; return b }
	for _, tc := range []struct {
		name   string
		stored []byte
		id     ID
	}{
		{"empty object", nil, id},
		{"unknown header", append([]byte{7}, text...), id},
		{"truncated zstd", zstd[:len(zstd)/2], id},
		{"flipped zstd byte", flip(zstd, len(zstd)-3), id},
		{"truncated raw", raw[:len(raw)-1], rawID},
		{"flipped raw byte", flip(raw, 100), rawID},
		{"wrong id", zstd, Hash([]byte("other"))},
	} {
		got, err := Decode(tc.stored, tc.id)
		if !errors.Is(err, ErrCorrupt) || got != nil {
			t.Errorf("%s: %d bytes, %v; want ErrCorrupt", tc.name, len(got), err)
			continue
		}
		if !strings.Contains(err.Error(), tc.id.String()) {
			t.Errorf("%s: error %q does not name the chunk", tc.name, err)
		}
	}
}

func TestKeys(t *testing.T) {
	id := Hash([]byte("x"))
	h := id.String()
	for _, tc := range []struct{ got, want string }{
		{ChunkKey(id), "chunks/" + h[:2] + "/" + h},
		{TreeKey(id), "trees/" + h[:2] + "/" + h},
		{CommitKey(id), "commits/" + h},
		{DeviceKey("laptop-1"), "devices/laptop-1"},
	} {
		if tc.got != tc.want {
			t.Errorf("key %q, want %q", tc.got, tc.want)
		}
	}
	for _, key := range []string{ChunkKey(id), TreeKey(id), CommitKey(id), h} {
		if got, err := KeyID(key); err != nil || got != id {
			t.Errorf("KeyID(%q) = %s, %v", key, got, err)
		}
	}
	if _, err := KeyID("chunks/ab/nothex"); err == nil {
		t.Errorf("KeyID of a bad key succeeded")
	}
}

// sampled returns b with the bytes between Encode's three samples replaced:
// by zeros (seed 0) or by random bytes.
func sampled(b []byte, seed uint64) []byte {
	out := append([]byte(nil), b...)
	fill := make([]byte, len(out))
	if seed != 0 {
		fill = randomData(seed, len(out))
	}
	n := len(out)
	copy(out[sampleSize:n/2], fill[sampleSize:n/2])
	copy(out[n/2+sampleSize:n-sampleSize], fill[n/2+sampleSize:n-sampleSize])
	return out
}
