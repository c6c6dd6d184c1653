package integration

// The S3 side of BenchmarkReport: raw aws-sdk-go-v2 baselines at the
// concurrency cloudfs uses, bytes in the remote, and a large remote tree
// written directly with index/tree and chunkstore.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/chunkstore/local"
	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/index/tree"
)

const (
	rawStreams  = 8       // the concurrency of the raw S3 baselines (and of cloudfs)
	rawPartSize = 8 << 20 // multipart part and ranged GET size, as `aws s3 cp` uses
)

// rawPut uploads data as one object in rawPartSize parts on rawStreams
// streams (a multipart upload, as `aws s3 cp` does) and returns the time
// from the first request to the completed upload.
func rawPut(ctx context.Context, c *s3.Client, bucket, key string, data []byte) (time.Duration, error) {
	start := time.Now()
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return 0, fmt.Errorf("create multipart upload: %w", err)
	}
	n := (len(data) + rawPartSize - 1) / rawPartSize
	parts := make([]types.CompletedPart, n)
	err = onStreams(ctx, n, func(ctx context.Context, _, i int) error {
		part := data[i*rawPartSize : min(len(data), (i+1)*rawPartSize)]
		out, err := c.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: &bucket, Key: &key, UploadId: up.UploadId,
			PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(part),
		})
		if err != nil {
			return fmt.Errorf("upload part %d: %w", i+1, err)
		}
		parts[i] = types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: out.ETag,
			ChecksumCRC32: out.ChecksumCRC32, ChecksumCRC32C: out.ChecksumCRC32C,
			ChecksumCRC64NVME: out.ChecksumCRC64NVME, ChecksumSHA1: out.ChecksumSHA1, ChecksumSHA256: out.ChecksumSHA256}
		return nil
	})
	if err != nil {
		c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: up.UploadId})
		return 0, err
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &bucket, Key: &key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}); err != nil {
		return 0, fmt.Errorf("complete multipart upload: %w", err)
	}
	return time.Since(start), nil
}

// rawGet reads the object in rawPartSize ranges on rawStreams streams and
// returns the time it took; every range is compared with want.
func rawGet(ctx context.Context, c *s3.Client, bucket, key string, want []byte) (time.Duration, error) {
	n := (len(want) + rawPartSize - 1) / rawPartSize
	bufs := make([][]byte, rawStreams) // one per stream
	for s := range bufs {
		bufs[s] = make([]byte, rawPartSize)
	}
	start := time.Now()
	err := onStreams(ctx, n, func(ctx context.Context, stream, i int) error {
		off := int64(i) * rawPartSize
		end := min(int64(len(want)), off+rawPartSize)
		got, err := getRange(ctx, c, bucket, key, off, end-off, bufs[stream])
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want[off:end]) {
			return fmt.Errorf("raw GET %s at %d: bytes differ from what was put", key, off)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// rawGetObjects GETs every object under prefix of at least minSize bytes,
// whole, on rawStreams streams, and returns their bytes and the time the
// GETs took (the listing is not timed).
func rawGetObjects(ctx context.Context, c *s3.Client, bucket, prefix string, minSize int64) (int64, time.Duration, error) {
	var keys []string
	var total int64
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, 0, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			if n := aws.ToInt64(o.Size); n >= minSize {
				keys = append(keys, aws.ToString(o.Key))
				total += n
			}
		}
	}
	if len(keys) == 0 {
		return 0, 0, fmt.Errorf("no object of %d bytes or more under %s", minSize, prefix)
	}
	start := time.Now()
	err := onStreams(ctx, len(keys), func(ctx context.Context, _, i int) error {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &keys[i]})
		if err != nil {
			return fmt.Errorf("raw GET %s: %w", keys[i], err)
		}
		_, err = io.Copy(io.Discard, out.Body)
		out.Body.Close()
		if err != nil {
			return fmt.Errorf("raw GET %s: read: %w", keys[i], err)
		}
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	return total, time.Since(start), nil
}

// onStreams runs fn for every i in [0, n) on rawStreams goroutines, each
// taking the next i as it is done (stream numbers the goroutine, for
// per-stream buffers). It returns the first error, which cancels the
// context the others run with.
func onStreams(ctx context.Context, n int, fn func(ctx context.Context, stream, i int) error) error {
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for stream := range rawStreams {
		g.Go(func() error {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return nil
				}
				if err := fn(gctx, stream, i); err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}

// getRange reads length bytes at off into buf (which must be large enough).
func getRange(ctx context.Context, c *s3.Client, bucket, key string, off, length int64, buf []byte) ([]byte, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: &key,
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", off, off+length-1))})
	if err != nil {
		return nil, fmt.Errorf("raw GET %s at %d: %w", key, off, err)
	}
	defer out.Body.Close()
	if _, err := io.ReadFull(out.Body, buf[:length]); err != nil {
		return nil, fmt.Errorf("raw GET %s at %d: read: %w", key, off, err)
	}
	return buf[:length], nil
}

// rawRandom reads 4 KiB at each offset, one request at a time, and returns
// each request's latency; every read is compared with want.
func rawRandom(ctx context.Context, c *s3.Client, bucket, key string, offsets []int64, want []byte) ([]time.Duration, error) {
	buf := make([]byte, 4096)
	lat := make([]time.Duration, 0, len(offsets))
	for _, off := range offsets {
		start := time.Now()
		got, err := getRange(ctx, c, bucket, key, off, 4096, buf)
		lat = append(lat, time.Since(start))
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(got, want[off:off+4096]) {
			return nil, fmt.Errorf("raw GET %s at %d: bytes differ", key, off)
		}
	}
	return lat, nil
}

// remoteSize adds up the bytes a remote holds: the objects under an S3
// prefix (ListObjectsV2 sizes) or the files under a directory.
type remoteSize func(ctx context.Context) (int64, error)

func s3PrefixSize(c *s3.Client, bucket, prefix string) remoteSize {
	return func(ctx context.Context) (int64, error) {
		var total int64
		p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return 0, fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, err)
			}
			for _, o := range page.Contents {
				total += aws.ToInt64(o.Size)
			}
		}
		return total, nil
	}
}

func dirSize(dir string) remoteSize {
	return func(context.Context) (int64, error) {
		var total int64
		err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				info, err := d.Info()
				if errors.Is(err, fs.ErrNotExist) { // a temporary file renamed meanwhile
					return nil
				} else if err != nil {
					return err
				}
				total += info.Size()
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("size of %s: %w", dir, err)
		}
		return total, nil
	}
}

// remoteTreeShape is a generated volume: dirs directories under the root,
// the files spread over them, at most remoteDirFiles to a directory.
type remoteTreeShape struct {
	files, dirs int
}

const remoteDirFiles = 1000

func newRemoteTreeShape(files int) remoteTreeShape {
	return remoteTreeShape{files: files, dirs: (files + remoteDirFiles - 1) / remoteDirFiles}
}

// entries is the number of entries under the root: files and directories.
func (s remoteTreeShape) entries() int { return s.files + s.dirs }

// writeRemoteTree writes a volume of s.files 4 KiB files (all sharing one
// stored chunk) straight into store: the volume settings, one tree object
// per directory, the root tree, a commit and head, the way an uploader
// leaves a volume. Objects go in the stored form (chunkstore.Encode), on
// rawStreams goroutines, children before the trees that name them.
func writeRemoteTree(ctx context.Context, store chunkstore.Store, s remoteTreeShape) error {
	if _, err := bucket.LoadOrInitVolume(ctx, store, chunkstore.Params{}); err != nil {
		return fmt.Errorf("volume settings: %w", err)
	}
	content := bytes.Repeat([]byte("cloudfs remote tree benchmark\n"), 4096/30+1)[:4096]
	chunk := chunkstore.Hash(content)
	if _, err := store.Put(ctx, chunkstore.ChunkKey(chunk), chunkstore.Encode(content), chunkstore.Cond{}); err != nil {
		return fmt.Errorf("put chunk: %w", err)
	}
	put := func(ctx context.Context, t *tree.Tree) (chunkstore.ID, error) {
		data, id, err := tree.Encode(t)
		if err != nil {
			return id, err
		}
		if _, err := store.Put(ctx, chunkstore.TreeKey(id), chunkstore.Encode(data), chunkstore.Cond{}); err != nil {
			return id, fmt.Errorf("put tree: %w", err)
		}
		return id, nil
	}
	const mtime = 1_760_000_000_000_000_000
	subtrees := make([]chunkstore.ID, s.dirs)
	totals := make([]tree.Stats, s.dirs)
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(rawStreams)
	for d := range s.dirs {
		g.Go(func() error {
			n := min(remoteDirFiles, s.files-d*remoteDirFiles)
			t := &tree.Tree{Entries: make([]tree.Entry, n)}
			for i := range t.Entries {
				t.Entries[i] = tree.Entry{Name: fmt.Sprintf("f%06d", i), Type: tree.TypeFile, Mode: 0o644,
					MtimeNs: mtime, Size: 4096, Chunks: []tree.ChunkRef{{ID: chunk, Length: 4096}}}
			}
			id, err := put(gctx, t)
			if err != nil {
				return fmt.Errorf("directory %d: %w", d, err)
			}
			mu.Lock()
			subtrees[d], totals[d] = id, t.Totals()
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	root := &tree.Tree{Entries: make([]tree.Entry, s.dirs)}
	for d, id := range subtrees {
		root.Entries[d] = tree.Entry{Name: fmt.Sprintf("d%04d", d), Type: tree.TypeDir, Mode: 0o755, MtimeNs: mtime,
			Subtree: id, Totals: totals[d]}
	}
	if !slices.IsSortedFunc(root.Entries, func(a, b tree.Entry) int { return strings.Compare(a.Name, b.Name) }) {
		return errors.New("root entries not sorted (more than 10,000 directories?)")
	}
	rootID, err := put(ctx, root)
	if err != nil {
		return fmt.Errorf("root: %w", err)
	}
	c := &tree.Commit{Root: rootID, Device: "bench-generator", TimeNs: time.Now().UnixNano(), Generation: 1,
		Stats: root.Totals(), RootAttrs: tree.RootAttrs{Mode: 0o755, MtimeNs: mtime}}
	data, commitID, err := tree.EncodeCommit(c)
	if err != nil {
		return err
	}
	if _, err := store.Put(ctx, chunkstore.CommitKey(commitID), chunkstore.Encode(data), chunkstore.Cond{}); err != nil {
		return fmt.Errorf("put commit: %w", err)
	}
	if _, err := store.Put(ctx, chunkstore.HeadKey, []byte(commitID.String()+"\n"), chunkstore.Cond{IfNoneMatch: true}); err != nil {
		return fmt.Errorf("put head: %w", err)
	}
	return nil
}

// TestRemoteTreeGenerator checks that the volume BenchmarkReport generates
// reads back through the uploader's readers (head, commit, trees) as the
// shape it was asked for, so the lazy-mount figures measure a real volume.
func TestRemoteTreeGenerator(t *testing.T) {
	ctx := context.Background()
	store, err := local.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	shape := newRemoteTreeShape(2345)
	if err := writeRemoteTree(ctx, store, shape); err != nil {
		t.Fatal(err)
	}
	head, _, ok, err := bucket.ReadHead(ctx, store)
	if err != nil || !ok {
		t.Fatalf("head: ok %v, %v", ok, err)
	}
	c, err := bucket.ReadCommit(ctx, store, head)
	if err != nil {
		t.Fatal(err)
	}
	load := bucket.NewLoader(store)
	root, err := load.Tree(ctx, c.Root)
	if err != nil {
		t.Fatal(err)
	}
	if len(root.Entries) != shape.dirs || shape.dirs != 3 {
		t.Fatalf("root has %d entries, shape %+v", len(root.Entries), shape)
	}
	files := 0
	for _, e := range root.Entries {
		sub, err := load.Tree(ctx, e.Subtree)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range sub.Entries {
			if f.Type != tree.TypeFile || f.Size != 4096 || len(f.Chunks) != 1 {
				t.Fatalf("%s/%s: %+v", e.Name, f.Name, f)
			}
			if _, _, err := store.Get(ctx, chunkstore.ChunkKey(f.Chunks[0].ID)); err != nil {
				t.Fatalf("%s/%s: chunk: %v", e.Name, f.Name, err)
			}
		}
		files += len(sub.Entries)
	}
	want := tree.Stats{Files: 2345, Dirs: 4, Bytes: 2345 * 4096, Chunks: 2345}
	if files != 2345 || c.Stats != want {
		t.Fatalf("%d files, commit stats %+v, want 2345 files and %+v", files, c.Stats, want)
	}
}
