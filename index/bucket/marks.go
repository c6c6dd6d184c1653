package bucket

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// A gc mark (gc/<time>-<random>) names objects a garbage collection found
// unreachable and old, and will delete in a later run once its grace
// period has passed since the mark, if they are still unreachable then.
// Until it is removed, every writer checks the objects its commit relies
// on against the marks it can see (Collections): a commit that names a
// marked object must reach head before the mark's deadline, so that the
// run that deletes sees it.
//
// Terms:
//
//   - mark: the object; immutable once written, removed by the run that
//     swept it.
//   - deadline: Time + Grace - Grace/4. A writer refuses to commit a
//     marked object after it; the quarter is the room left for clocks that
//     disagree and for the head swap's own time.
//   - sweep: a run's deletion of a mark's objects still unreachable, no
//     earlier than Time + Grace.

// Ref names an object of the volume by kind and id.
type Ref struct {
	Kind byte // RefChunk, RefPack, RefTree (trees and manifests) or RefCommit
	ID   chunkstore.ID
}

// The kinds of Ref.
const (
	RefChunk  = 'c'
	RefPack   = 'p'
	RefTree   = 't'
	RefCommit = 'm'
)

// Key returns the store key of r.
func (r Ref) Key() string {
	switch r.Kind {
	case RefChunk:
		return chunkstore.ChunkKey(r.ID)
	case RefPack:
		return chunkstore.PackKey(r.ID)
	case RefTree:
		return chunkstore.TreeKey(r.ID)
	case RefCommit:
		return chunkstore.CommitKey(r.ID)
	}
	return ""
}

// ParseRef returns the Ref of a content-addressed key (a chunk, pack, tree
// or commit key); ok is false for any other key.
func ParseRef(key string) (Ref, bool) {
	var kind byte
	switch {
	case strings.HasPrefix(key, chunkstore.ChunksPrefix):
		kind = RefChunk
	case strings.HasPrefix(key, chunkstore.PacksPrefix):
		kind = RefPack
	case strings.HasPrefix(key, chunkstore.TreesPrefix):
		kind = RefTree
	case strings.HasPrefix(key, chunkstore.CommitsPrefix):
		kind = RefCommit
	default:
		return Ref{}, false
	}
	id, err := chunkstore.KeyID(key)
	if err != nil {
		return Ref{}, false
	}
	r := Ref{Kind: kind, ID: id}
	if r.Key() != key {
		return Ref{}, false
	}
	return r, true
}

// Mark is a gc mark.
type Mark struct {
	Key     string        `json:"-"` // its store key
	Time    time.Time     `json:"time"`
	Grace   time.Duration `json:"grace"`
	Host    string        `json:"host"`
	Objects []Ref         `json:"-"`
}

// Deadline is the last moment a writer may commit an object of m.
func (m *Mark) Deadline() time.Time { return m.Time.Add(m.Grace - m.Grace/4) }

// SweepAfter is the moment from which a run may delete m's objects.
func (m *Mark) SweepAfter() time.Time { return m.Time.Add(m.Grace) }

// ErrBadMark is returned (wrapped) for a mark that does not parse.
var ErrBadMark = errors.New("bad gc mark")

// markMagic starts a mark; a JSON header line follows, then 33 bytes for
// each object: its kind and its id.
const markMagic = "cloudfs-gc-mark 1\n"

// MaxMarkObjects is the most objects one mark names (within
// chunkstore.MaxMarkSize).
const MaxMarkObjects = (chunkstore.MaxMarkSize - 4096) / (1 + chunkstore.IDSize)

// MinGrace is the shortest grace period a mark may have.
const MinGrace = time.Second

func encodeMark(m *Mark) ([]byte, error) {
	if len(m.Objects) > MaxMarkObjects {
		return nil, fmt.Errorf("gc mark of %d objects (max %d)", len(m.Objects), MaxMarkObjects)
	}
	hdr, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(markMagic) + len(hdr) + 1 + len(m.Objects)*(1+chunkstore.IDSize))
	b.WriteString(markMagic)
	b.Write(hdr)
	b.WriteByte('\n')
	for _, r := range m.Objects {
		b.WriteByte(r.Kind)
		b.Write(r.ID[:])
	}
	return b.Bytes(), nil
}

// parseMark decodes the mark stored under key, strictly.
func parseMark(key string, data []byte) (*Mark, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("gc mark %s: %s: %w", key, fmt.Sprintf(format, args...), ErrBadMark)
	}
	rest, ok := bytes.CutPrefix(data, []byte(markMagic))
	if !ok {
		return nil, bad("no header")
	}
	hdr, body, ok := bytes.Cut(rest, []byte("\n"))
	if !ok || len(hdr) > 4096 {
		return nil, bad("no header line")
	}
	m := &Mark{Key: key}
	if err := json.Unmarshal(hdr, m); err != nil {
		return nil, bad("%v", err)
	}
	if m.Time.IsZero() || m.Grace < MinGrace {
		return nil, bad("time %v, grace %v", m.Time, m.Grace)
	}
	const size = 1 + chunkstore.IDSize
	if len(body)%size != 0 {
		return nil, bad("%d bytes of objects", len(body))
	}
	m.Objects = make([]Ref, 0, len(body)/size)
	for i := 0; i < len(body); i += size {
		r := Ref{Kind: body[i], ID: chunkstore.ID(body[i+1 : i+size])}
		if r.Key() == "" {
			return nil, bad("object kind %q", r.Kind)
		}
		m.Objects = append(m.Objects, r)
	}
	return m, nil
}

// markKey names a new mark made at t: its time first, so that a listing
// gives marks oldest first.
func markKey(t time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s%019d-%s", chunkstore.GCPrefix, t.UnixNano(), hex.EncodeToString(b[:]))
}

// checkMarkKey reports whether key is one markKey makes.
func checkMarkKey(key string) bool {
	name, ok := strings.CutPrefix(key, chunkstore.GCPrefix)
	if !ok {
		return false
	}
	ts, rnd, ok := strings.Cut(name, "-")
	if _, err := strconv.ParseUint(ts, 10, 63); !ok || err != nil || len(ts) != 19 {
		return false
	}
	_, err := hex.DecodeString(rnd)
	return err == nil && len(rnd) == 8
}

// PutMark writes a new mark of objects, made now, and returns it.
func PutMark(ctx context.Context, s chunkstore.Store, now time.Time, grace time.Duration, host string, objects []Ref) (*Mark, error) {
	if grace < MinGrace {
		return nil, fmt.Errorf("gc grace period %v is below %v", grace, MinGrace)
	}
	m := &Mark{Key: markKey(now), Time: now.UTC(), Grace: grace, Host: host, Objects: objects}
	data, err := encodeMark(m)
	if err != nil {
		return nil, err
	}
	if _, err := s.Put(ctx, m.Key, data, chunkstore.Cond{IfNoneMatch: true}); err != nil {
		return nil, fmt.Errorf("write gc mark: %w", err)
	}
	return m, nil
}

// ListMarks returns the keys of the marks in s, oldest first. Keys under
// GCPrefix that no collection makes are returned in bad.
func ListMarks(ctx context.Context, s chunkstore.Store) (keys, bad []string, err error) {
	err = s.List(ctx, chunkstore.GCPrefix, func(i chunkstore.Info) error {
		if checkMarkKey(i.Key) {
			keys = append(keys, i.Key)
		} else {
			bad = append(bad, i.Key)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list gc marks: %w", err)
	}
	return keys, bad, nil
}

// ReadMark reads and parses the mark under key.
func ReadMark(ctx context.Context, s chunkstore.Store, key string) (*Mark, error) {
	data, _, err := s.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read gc mark: %w", err)
	}
	return parseMark(key, data)
}

// DeleteMark removes the mark under key, once swept.
func DeleteMark(ctx context.Context, s chunkstore.Store, key string) error {
	if err := s.Delete(ctx, key); err != nil {
		return fmt.Errorf("remove gc mark: %w", err)
	}
	return nil
}
