package tree

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// FuzzDecode feeds arbitrary bytes to every decoder. A decoder must return
// an error wrapping ErrCorrupt or a value whose re-encoding is exactly the
// input (the encoding is canonical) and within the bounds (object sizes,
// chunk lengths); it must never panic.
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
	// Truncated and corrupt ones, and counts claiming more than follows.
	f.Add(tr[:len(tr)/2])
	f.Add(m[:len(m)-1])
	f.Add(c[:len(c)-3])
	bad := bytes.Clone(tr)
	bad[len(bad)/2] ^= 0x80
	f.Add(bad)
	f.Add([]byte{'t', formatVersion, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{'m', formatVersion, 0xff, 0xff, 0x03, 1, 2, 3})
	f.Add([]byte{'c', formatVersion, 0})
	longRef := bytes.Clone(m)
	longRef[len(longRef)-1] = 0x80 | longRef[len(longRef)-1] // a length varint cut short
	f.Add(longRef)
	checkRefs := func(t *testing.T, refs []ChunkRef) {
		for _, r := range refs {
			if r.Length == 0 || r.Length > chunkstore.MaxChunkSize {
				t.Fatalf("chunk of length %d accepted", r.Length)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if tr, err := Decode(data); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Decode error without ErrCorrupt: %v", err)
			}
		} else if again, _, err := Encode(tr); err != nil || !bytes.Equal(again, data) {
			t.Fatalf("tree re-encoding differs (%v):\n in %x\nout %x", err, data, again)
		} else {
			if len(data) > chunkstore.MaxTreeSize || len(tr.Entries) > len(data)/minEntrySize {
				t.Fatalf("tree of %d bytes with %d entries accepted", len(data), len(tr.Entries))
			}
			for i := range tr.Entries {
				checkRefs(t, tr.Entries[i].Chunks)
			}
		}
		if m, err := DecodeManifest(data); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeManifest error without ErrCorrupt: %v", err)
			}
		} else if again, _, err := EncodeManifest(m); err != nil || !bytes.Equal(again, data) {
			t.Fatalf("manifest re-encoding differs (%v)", err)
		} else {
			if len(data) > chunkstore.MaxTreeSize || len(m.Chunks) <= MaxInlineChunks {
				t.Fatalf("manifest of %d bytes with %d refs accepted", len(data), len(m.Chunks))
			}
			checkRefs(t, m.Chunks)
		}
		if c, err := DecodeCommit(data); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeCommit error without ErrCorrupt: %v", err)
			}
		} else if again, _, err := EncodeCommit(c); err != nil || !bytes.Equal(again, data) {
			t.Fatalf("commit re-encoding differs (%v)", err)
		} else if len(data) > chunkstore.MaxCommitSize || len(c.Parents) > MaxParents {
			t.Fatalf("commit of %d bytes with %d parents accepted", len(data), len(c.Parents))
		}
	})
}
