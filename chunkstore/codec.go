package chunkstore

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// ErrCorrupt is returned (wrapped, naming the chunk) by Decode when a stored
// chunk is truncated, undecodable, or does not hash to its ID. Such bytes
// must never be returned to a reader.
var ErrCorrupt = errors.New("corrupt chunk")

// MaxChunkSize bounds a chunk's plaintext: Params.MaxSize may not exceed it
// and Decode refuses to inflate beyond it.
const MaxChunkSize = 64 << 20

// encoderWindow is the zstd window of Encode.
const encoderWindow = 1 << 20

// Encodings named by the first byte of a stored chunk.
const (
	encRaw  byte = 0 // payload is the plaintext
	encZstd byte = 1 // payload is one zstd frame of the plaintext
)

// The zstd encoder and decoder are expensive to build and safe for
// concurrent EncodeAll/DecodeAll, so one encoder, and one decoder per
// plaintext bound, serve the process.
var (
	encoder = sync.OnceValue(func() *zstd.Encoder {
		e, err := zstd.NewWriter(nil,
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithEncoderCRC(false), // the BLAKE3 ID already checks the plaintext
			zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
			// A chunk averages 1 MiB: a larger window buys little
			// and each encoder keeps about twice it live (8 MiB,
			// the default, held 32 MiB of the daemon's heap).
			zstd.WithWindowSize(encoderWindow),
			zstd.WithZeroFrames(true))
		if err != nil {
			panic(fmt.Sprintf("zstd encoder with static options: %v", err))
		}
		return e
	})
	decoder = sync.OnceValue(func() *zstd.Decoder { return newDecoder(MaxChunkSize) })
	// decoders holds the decoders of DecodeLimit's smaller limits.
	decodersMu sync.Mutex
	decoders   = map[int]*zstd.Decoder{} // by limit; guarded by decodersMu
)

// newDecoder returns a shared zstd decoder that inflates no frame beyond
// limit bytes: DecodeAll refuses a frame whose header claims more before
// allocating for it, and stops one that grows past it.
func newDecoder(limit int) *zstd.Decoder {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
		zstd.WithDecoderMaxMemory(uint64(limit)))
	if err != nil {
		panic(fmt.Sprintf("zstd decoder with static options: %v", err))
	}
	return d
}

// decoderFor returns the shared decoder for limit.
func decoderFor(limit int) *zstd.Decoder {
	if limit >= MaxChunkSize {
		return decoder()
	}
	decodersMu.Lock()
	defer decodersMu.Unlock()
	d := decoders[limit]
	if d == nil {
		d = newDecoder(limit)
		decoders[limit] = d
	}
	return d
}

// Encode returns the stored form of a chunk's plaintext: a one-byte header
// (0 raw, 1 zstd) and the payload, compressed only when that is smaller.
// A large chunk whose samples do not compress (random, already compressed
// or encrypted data) is stored raw without compressing all of it. It is
// safe for concurrent use and does not retain plain.
func Encode(plain []byte) []byte { return encodeWith(plain, nil) }

// encodeWith is Encode; buf, unless nil, holds plain at buf[1:], and a raw
// stored form is buf itself with its header byte set instead of a copy.
func encodeWith(plain, buf []byte) []byte {
	if !incompressible(plain) {
		out := make([]byte, 1, 1+len(plain)/2)
		out[0] = encZstd
		out = encoder().EncodeAll(plain, out)
		if len(out) < 1+len(plain) {
			return out
		}
	}
	if buf != nil {
		buf[0] = encRaw
		return buf
	}
	return encodeRaw(plain)
}

func encodeRaw(plain []byte) []byte {
	out := make([]byte, 1+len(plain))
	out[0] = encRaw
	copy(out[1:], plain)
	return out
}

// Sampling for incompressible: three samples of sampleSize bytes (start,
// middle, end) of a chunk of at least sampleMin bytes; if zstd saves less
// than sampleGain of them, the chunk is taken as incompressible. Trying to
// compress a 1 MiB random chunk cost a fifth of the uploader's CPU.
const (
	sampleSize = 16 << 10
	sampleMin  = 8 * sampleSize
	sampleGain = 0.03
)

// incompressible reports whether plain's samples do not compress.
func incompressible(plain []byte) bool {
	n := len(plain)
	if n < sampleMin {
		return false
	}
	sample := make([]byte, 0, 3*sampleSize)
	sample = append(sample, plain[:sampleSize]...)
	sample = append(sample, plain[n/2:n/2+sampleSize]...)
	sample = append(sample, plain[n-sampleSize:]...)
	packed := encoder().EncodeAll(sample, make([]byte, 0, len(sample)))
	return float64(len(packed)) > float64(len(sample))*(1-sampleGain)
}

// Decode returns the plaintext of a stored chunk and checks that it hashes
// to want. Any failure (empty input, unknown header, bad zstd data, a size
// above MaxChunkSize, a hash mismatch) is a wrapped ErrCorrupt naming want.
// For a raw chunk the result aliases stored. It is safe for concurrent use.
func Decode(stored []byte, want ID) ([]byte, error) {
	return DecodeLimit(stored, want, MaxChunkSize)
}

// DecodeLimit is Decode of an object whose plaintext may hold at most limit
// bytes (at most MaxChunkSize; MaxCommitSize for a commit): a larger one,
// raw or compressed, is a wrapped ErrCorrupt, found without inflating
// beyond limit. Callers pass one of the package's constant bounds (each
// limit keeps a decoder for the process's life).
func DecodeLimit(stored []byte, want ID, limit int) ([]byte, error) {
	limit = min(limit, MaxChunkSize)
	if len(stored) == 0 {
		return nil, fmt.Errorf("chunk %s: empty object: %w", want, ErrCorrupt)
	}
	var plain []byte
	switch stored[0] {
	case encRaw:
		plain = stored[1:]
		if len(plain) > limit {
			return nil, fmt.Errorf("chunk %s: raw plaintext of %d bytes (max %d): %w", want, len(plain), limit, ErrCorrupt)
		}
	case encZstd:
		var err error
		plain, err = decoderFor(limit).DecodeAll(stored[1:], nil)
		if err != nil {
			return nil, fmt.Errorf("chunk %s: zstd (max %d bytes): %v: %w", want, limit, err, ErrCorrupt)
		}
	case encDelta:
		return nil, fmt.Errorf("chunk %s: a delta, which needs its base (DecodeDelta): %w", want, ErrCorrupt)
	default:
		return nil, fmt.Errorf("chunk %s: unknown encoding %d: %w", want, stored[0], ErrCorrupt)
	}
	if got := Hash(plain); got != want {
		return nil, fmt.Errorf("chunk %s: content hashes to %s: %w", want, got, ErrCorrupt)
	}
	return plain, nil
}

// Object keys and prefixes of a volume, relative to the store's root.
const (
	// VolumeKey holds the volume settings (see Volume).
	VolumeKey = "cloudfs.json"
	// HeadKey holds the ID of the current commit; replaced only with
	// Cond.IfMatch.
	HeadKey = "head"
	// ChunksPrefix, PacksPrefix, TreesPrefix, CommitsPrefix and
	// DevicesPrefix start the keys of chunks, packs (pack.go), tree
	// objects, commits and device records; GCPrefix the marks of pending
	// garbage collections (index/bucket).
	ChunksPrefix  = "chunks/"
	PacksPrefix   = "packs/"
	TreesPrefix   = "trees/"
	CommitsPrefix = "commits/"
	DevicesPrefix = "devices/"
	GCPrefix      = "gc/"
)

// ChunkKey returns the key of chunk id: "chunks/ab/abcd…" (the first two
// hex digits fan the objects out over 256 directories).
func ChunkKey(id ID) string { return fanKey(ChunksPrefix, id) }

// TreeKey returns the key of tree object id: "trees/ab/abcd…".
func TreeKey(id ID) string { return fanKey(TreesPrefix, id) }

// CommitKey returns the key of commit id: "commits/abcd…".
func CommitKey(id ID) string { return CommitsPrefix + id.String() }

// DeviceKey returns the key of a device's record: "devices/<device>".
func DeviceKey(device string) string { return DevicesPrefix + device }

func fanKey(prefix string, id ID) string {
	h := id.String()
	return prefix + h[:2] + "/" + h
}

// KeyID returns the ID named by the last element of a content-addressed key
// (a chunk, tree or commit key), e.g. for gc listing.
func KeyID(key string) (ID, error) {
	i := len(key)
	for i > 0 && key[i-1] != '/' {
		i--
	}
	id, err := ParseID(key[i:])
	if err != nil {
		return ID{}, fmt.Errorf("key %q: %w", key, err)
	}
	return id, nil
}
