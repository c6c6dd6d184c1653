// Package s3 is the chunkstore.Store for Amazon S3 and S3-compatible servers
// (MinIO, Ceph RGW, R2 ...), built on aws-sdk-go-v2. It is the only cloudfs
// package that imports the AWS SDK.
//
// Terms:
//
//   - bucket: the S3 bucket that holds a volume.
//   - prefix: the part of every object name before the store's key, so that
//     several volumes can share a bucket. Store key "head" under prefix
//     "vol1" is the object "vol1/head".
//   - endpoint: the base URL of the S3 service; empty means AWS itself.
//   - credential source: where the access key came from (environment
//     variables, a shared-config profile, static keys in the cloudfs
//     configuration, SSO, an instance role ...). Error messages about
//     rejected credentials name it.
//   - ETag: S3's version token of an object, returned quoted as S3 sends it
//     and passed back verbatim in If-Match.
//
// Error mapping (see classify): 404 is chunkstore.ErrNotFound, except 404
// NoSuchBucket, which is Permanent and says the bucket does not exist; 412,
// and 409 ConditionalRequestConflict, are chunkstore.ErrPrecondition; other
// 4xx are chunkstore.Permanent, except 408, 429 and S3's retryable 4xx codes
// (RequestTimeout, OperationAborted, RequestTimeTooSkewed, SlowDown); 5xx
// and network errors are returned plainly wrapped, which the retry decorator
// treats as transient. The SDK itself makes one attempt per call.
package s3

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3sdk "github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
)

// Store is a chunkstore.Store backed by one bucket under a prefix. It is safe
// for concurrent use. Create it with New.
type Store struct {
	client *s3sdk.Client
	tr     *http.Transport
	bucket string
	prefix string // "" or ending in "/"
	log    *zap.Logger
}

var (
	_ chunkstore.Store       = (*Store)(nil)
	_ chunkstore.RangeGetter = (*Store)(nil)
	_ chunkstore.MetaStore   = (*Store)(nil)
)

// String returns "s3://bucket/prefix".
func (s *Store) String() string {
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.prefix, "/")
}

// Close drops the store's idle connections. Calls in flight are not
// affected, and the store stays usable (it reconnects).
func (s *Store) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

// Bucket returns the bucket name.
func (s *Store) Bucket() string { return s.bucket }

// objectKey is the S3 object name of a store key.
func (s *Store) objectKey(key string) string { return s.prefix + key }

// where names an object in messages.
func (s *Store) where(key string) string { return "s3://" + s.bucket + "/" + s.prefix + key }

// Get returns the object and its ETag. A missing object is ErrNotFound; a
// body cut short by the connection is an error (io.ErrUnexpectedEOF), never
// short data; an object larger than its kind allows
// (chunkstore.MaxObjectSize) is chunkstore.ErrTooLarge, found from its
// Content-Length or after reading one byte past the bound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, string, error) {
	if err := checkKey(key); err != nil {
		return nil, "", s.invalid("get", key, err)
	}
	out, err := s.client.GetObject(ctx, &s3sdk.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
	})
	if err != nil {
		return nil, "", s.wrap(ctx, "get", key, err)
	}
	defer out.Body.Close()
	data, err := chunkstore.ReadLimit(out.Body, key, contentLength(out.ContentLength), chunkstore.MaxObjectSize(key))
	if err != nil {
		return nil, "", fmt.Errorf("s3 get %s: read body: %w", s.where(key), err)
	}
	return data, aws.ToString(out.ETag), nil
}

// GetRange returns length bytes at off (fewer at the end of the object, none
// past it) with a ranged GET. A missing object is ErrNotFound. No more than
// length bytes are read, or the object's bound when the server ignores the
// range; an object larger than its kind allows is chunkstore.ErrTooLarge.
func (s *Store) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	r, err := s.getRange(ctx, key, off, length)
	return r.Data, err
}

// GetRangeMeta is GetRange that also returns the object's user metadata
// and size (from Content-Range).
func (s *Store) GetRangeMeta(ctx context.Context, key string, off, length int64) (chunkstore.RangeMeta, error) {
	return s.getRange(ctx, key, off, length)
}

func (s *Store) getRange(ctx context.Context, key string, off, length int64) (chunkstore.RangeMeta, error) {
	var r chunkstore.RangeMeta
	if err := checkKey(key); err != nil {
		return r, s.invalid("get range", key, err)
	}
	if off < 0 || length < 0 {
		return r, s.invalid("get range", key, fmt.Errorf("negative offset %d or length %d", off, length))
	}
	if length == 0 {
		// S3 cannot express an empty range; Stat keeps the ErrNotFound
		// contract for a missing object.
		info, err := s.Stat(ctx, key)
		r.Size = info.Size
		return r, err
	}
	out, err := s.client.GetObject(ctx, &s3sdk.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
		Range:  aws.String(fmt.Sprintf("bytes=%d-%d", off, off+length-1)),
	})
	if err != nil {
		if status, _ := statusAndCode(err); status == 416 {
			// Range not satisfiable: the object exists and ends at or
			// before off.
			return r, nil
		}
		return r, s.wrap(ctx, "get range", key, err)
	}
	defer out.Body.Close()
	maxObj := chunkstore.MaxObjectSize(key)
	limit := length
	if out.ContentRange == nil {
		limit = maxObj // the whole object
	}
	data, err := chunkstore.ReadLimit(out.Body, key, contentLength(out.ContentLength), limit)
	if err != nil {
		return r, fmt.Errorf("s3 get range %s: read body: %w", s.where(key), err)
	}
	r.Meta = out.Metadata
	if out.ContentRange == nil {
		// The server ignored Range and sent the whole object.
		r.Size = int64(len(data))
		if off >= int64(len(data)) {
			return r, nil
		}
		data = data[off:min(off+length, int64(len(data)))]
	} else if r.Size, err = rangeTotal(aws.ToString(out.ContentRange)); err != nil {
		return r, fmt.Errorf("s3 get range %s: %w", s.where(key), err)
	} else if r.Size > maxObj {
		return chunkstore.RangeMeta{}, fmt.Errorf("s3 get range %s: %w", s.where(key), chunkstore.TooLarge(key, r.Size, maxObj))
	}
	r.Data = data
	return r, nil
}

// rangeTotal returns the object size of a Content-Range "bytes a-b/size".
func rangeTotal(cr string) (int64, error) {
	i := strings.LastIndexByte(cr, '/')
	n, err := strconv.ParseInt(cr[i+1:], 10, 64)
	if i < 0 || err != nil || n < 0 {
		return 0, fmt.Errorf("unreadable Content-Range %q", cr)
	}
	return n, nil
}

// Put writes data under key with a single PutObject, which S3 applies
// atomically. Cond becomes If-None-Match: * and If-Match: <etag>; the server
// checks it atomically with the write. A failed condition (412, 409
// ConditionalRequestConflict, or 404 for If-Match on a missing object) is
// ErrPrecondition.
func (s *Store) Put(ctx context.Context, key string, data []byte, cond chunkstore.Cond) (string, error) {
	return s.PutMeta(ctx, key, data, cond, nil)
}

// PutMeta is Put that stores meta as the object's user metadata.
func (s *Store) PutMeta(ctx context.Context, key string, data []byte, cond chunkstore.Cond, meta chunkstore.Meta) (string, error) {
	if err := checkKey(key); err != nil {
		return "", s.invalid("put", key, err)
	}
	in := &s3sdk.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(s.objectKey(key)),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		Metadata:      meta,
	}
	if cond.IfNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	if cond.IfMatch != "" {
		in.IfMatch = aws.String(cond.IfMatch)
	}
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		if cond.IfMatch != "" && classify(err) == notFound {
			return "", fmt.Errorf("s3 put %s: if-match on a missing object: %w", s.where(key), chunkstore.ErrPrecondition)
		}
		return "", s.wrap(ctx, "put", key, err)
	}
	s.log.Debug("put", zap.String("key", key), zap.Int("bytes", len(data)),
		zap.Bool("if_none_match", cond.IfNoneMatch), zap.String("if_match", cond.IfMatch))
	return aws.ToString(out.ETag), nil
}

// Stat returns the object's size, ETag and modification time (HeadObject).
func (s *Store) Stat(ctx context.Context, key string) (chunkstore.Info, error) {
	if err := checkKey(key); err != nil {
		return chunkstore.Info{}, s.invalid("stat", key, err)
	}
	out, err := s.client.HeadObject(ctx, &s3sdk.HeadObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
	})
	if err != nil {
		return chunkstore.Info{}, s.wrap(ctx, "stat", key, err)
	}
	return chunkstore.Info{
		Key:     key,
		Size:    aws.ToInt64(out.ContentLength),
		ETag:    aws.ToString(out.ETag),
		ModTime: aws.ToTime(out.LastModified),
	}, nil
}

// Delete removes the object. S3 answers a delete of a missing key with
// success, which is the Store contract.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return s.invalid("delete", key, err)
	}
	_, err := s.client.DeleteObject(ctx, &s3sdk.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.objectKey(key)),
	})
	if err != nil {
		if classify(err) == notFound {
			return nil
		}
		return s.wrap(ctx, "delete", key, err)
	}
	return nil
}

// List calls fn for every object under the store's prefix whose key starts
// with prefix, in S3's order (lexical by UTF-8 bytes), one ListObjectsV2 page
// (up to 1000 keys) at a time. Keys given to fn have the store's prefix
// removed.
func (s *Store) List(ctx context.Context, prefix string, fn func(chunkstore.Info) error) error {
	p := s3sdk.NewListObjectsV2Paginator(s.client, &s3sdk.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.prefix + prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return s.wrap(ctx, "list", prefix+"*", err)
		}
		for _, o := range page.Contents {
			key, ok := strings.CutPrefix(aws.ToString(o.Key), s.prefix)
			if !ok {
				continue
			}
			if err := fn(chunkstore.Info{
				Key:     key,
				Size:    aws.ToInt64(o.Size),
				ETag:    aws.ToString(o.ETag),
				ModTime: aws.ToTime(o.LastModified),
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// contentLength is a response's Content-Length, -1 when it has none.
func contentLength(n *int64) int64 {
	if n == nil {
		return -1
	}
	return *n
}

// checkKey enforces the Store key syntax: a relative slash-separated path
// with no empty, "." or ".." elements.
func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("empty key")
	}
	for _, el := range strings.Split(key, "/") {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("key %q is not a clean relative path", key)
		}
	}
	return nil
}

// invalid reports a caller error, which no retry can heal.
func (s *Store) invalid(op, key string, err error) error {
	return &chunkstore.Permanent{Err: fmt.Errorf("s3 %s %s: %w", op, s.where(key), err)}
}
