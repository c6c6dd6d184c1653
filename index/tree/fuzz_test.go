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
	c, _, _ := EncodeCommit(&Commit{Root: id("r"), Parents: []chunkstore.ID{id("p"), id("q")}, Device: "laptop", TimeNs: -1, Generation: 9, Stats: Stats{1, 2, 3, 4},
		RootAttrs: RootAttrs{Mode: 0o1777, UID: 5, GID: 6, MtimeNs: 7, Xattrs: []Xattr{{"user.x", []byte("y")}}}})
	f.Add(c)
	f.Add([]byte{'t', formatVersion, 1, 1, 'a', byte(TypeFile), flagXattrs | flagLink, 0x80, 0x01, 0, 0, 0, 0, 0, 1, 1, 'x', 0, 7, 2})
	d := NewDir()
	if err := d.SetFile(Entry{Name: "big", Type: TypeFile}, refs(MaxInlineChunks+1)); err != nil {
		f.Fatal(err)
	}
	if _, err := d.Sub("sub"); err != nil {
		f.Fatal(err)
	}
	_, objs, err := Build(d)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(objs[len(objs)-1].Data) // a manifest file and a directory with totals
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
