package tree

import (
	"encoding/binary"
	"fmt"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// Manifest is the chunk list of a file with more than MaxInlineChunks
// chunks. The file is the concatenation of Chunks in order.
type Manifest struct {
	Chunks []ChunkRef
}

// Size returns the file size the manifest describes: the sum of its chunk
// lengths.
func (m *Manifest) Size() uint64 {
	var n uint64
	for _, c := range m.Chunks {
		n += uint64(c.Length)
	}
	return n
}

func (m *Manifest) check() error {
	if len(m.Chunks) <= MaxInlineChunks {
		return fmt.Errorf("%w: manifest of %d chunks (a file of at most %d is stored inline)",
			ErrInvalid, len(m.Chunks), MaxInlineChunks)
	}
	_, err := sumChunks(m.Chunks)
	return err
}

// EncodeManifest returns the canonical encoding of m and its ID. m must hold
// more than MaxInlineChunks chunks, each of length > 0, and encode to at
// most chunkstore.MaxTreeSize bytes; errors wrap ErrInvalid.
func EncodeManifest(m *Manifest) ([]byte, chunkstore.ID, error) {
	if err := m.check(); err != nil {
		return nil, chunkstore.ID{}, fmt.Errorf("encode manifest: %w", err)
	}
	b := make([]byte, 0, 2+binary.MaxVarintLen64+len(m.Chunks)*(chunkstore.IDSize+binary.MaxVarintLen32))
	b = append(b, byte(KindManifest), formatVersion)
	b = appendRefs(b, m.Chunks)
	if len(b) > chunkstore.MaxTreeSize {
		return nil, chunkstore.ID{}, fmt.Errorf("encode manifest: %w: %d chunks encode to %d bytes (max %d)",
			ErrInvalid, len(m.Chunks), len(b), chunkstore.MaxTreeSize)
	}
	return b, chunkstore.Hash(b), nil
}

// DecodeManifest parses an encoded manifest and validates it strictly
// (at most chunkstore.MaxTreeSize bytes). A malformed object is an error
// wrapping ErrCorrupt. The chunk list grows with the refs actually
// decoded. The result does not share memory with data. The caller checks that Size matches the size of
// the entry that named the manifest.
func DecodeManifest(data []byte) (*Manifest, error) {
	r, err := newReader(data, KindManifest)
	if err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	if len(data) > chunkstore.MaxTreeSize {
		return nil, fmt.Errorf("decode manifest: %w: %d bytes (max %d)", ErrCorrupt, len(data), chunkstore.MaxTreeSize)
	}
	n := r.count(minRefSize)
	if r.err == nil && n <= MaxInlineChunks {
		r.fail("manifest of %d chunks (min %d)", n, MaxInlineChunks+1)
	}
	var m Manifest
	if r.err == nil {
		m.Chunks = r.readRefs(make([]ChunkRef, 0, min(n, initialRefs)), n)
	}
	if err := r.end(); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	return &m, nil
}

// FileContent decides how a file whose content is refs is stored: with at
// most MaxInlineChunks refs it returns them as the inline chunk list and a
// nil manifest object; otherwise it returns nil chunks and the encoded
// manifest, whose ID goes into Entry.Manifest. size is the file size (the
// sum of the lengths). Errors wrap ErrInvalid.
func FileContent(refs []ChunkRef) (chunks []ChunkRef, size uint64, manifest *Object, err error) {
	size, err = sumChunks(refs)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("file content: %w", err)
	}
	if len(refs) <= MaxInlineChunks {
		return refs, size, nil, nil
	}
	data, id, err := EncodeManifest(&Manifest{Chunks: refs})
	if err != nil {
		return nil, 0, nil, err
	}
	return nil, size, &Object{Kind: KindManifest, ID: id, Data: data}, nil
}
