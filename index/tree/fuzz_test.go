package tree

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// FuzzDecode feeds arbitrary bytes to every decoder. A decoder must return
// an error wrapping ErrCorrupt or a value whose re-encoding is exactly the
// input (the encoding is canonical); it must never panic.
func FuzzDecode(f *testing.F) {
	tr, _, _ := Encode(sampleTree())
	f.Add(tr)
	empty, _, _ := Encode(&Tree{})
	f.Add(empty)
	m, _, _ := EncodeManifest(&Manifest{Chunks: refs(MaxInlineChunks + 1)})
	f.Add(m)
	c, _, _ := EncodeCommit(&Commit{Root: id("r"), Parents: []chunkstore.ID{id("p"), id("q")}, Device: "laptop", TimeNs: -1, Generation: 9, Stats: Stats{1, 2, 3, 4}})
	f.Add(c)
	f.Add([]byte{'t', 1, 1, 1, 'a', byte(TypeFile), flagXattrs | flagLink, 0x80, 0x01, 0, 0, 0, 0, 0, 1, 1, 'x', 0, 7})
	f.Fuzz(func(t *testing.T, data []byte) {
		if tr, err := Decode(data); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode error without ErrCorrupt: %v", err)
			}
		} else if again, _, err := Encode(tr); err != nil || !bytes.Equal(again, data) {
			t.Fatalf("tree re-encoding differs (%v):\n in %x\nout %x", err, data, again)
		}
		if m, err := DecodeManifest(data); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeManifest error without ErrCorrupt: %v", err)
			}
		} else if again, _, err := EncodeManifest(m); err != nil || !bytes.Equal(again, data) {
			t.Fatalf("manifest re-encoding differs (%v)", err)
		}
		if c, err := DecodeCommit(data); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeCommit error without ErrCorrupt: %v", err)
			}
		} else if again, _, err := EncodeCommit(c); err != nil || !bytes.Equal(again, data) {
			t.Fatalf("commit re-encoding differs (%v)", err)
		}
	})
}
