package main
import (
 _ "github.com/hanwen/go-fuse/v2/fs"
 _ "github.com/mattn/go-sqlite3"
 _ "github.com/restic/chunker"
 _ "github.com/zeebo/blake3"
 _ "github.com/aws/aws-sdk-go-v2/service/s3"
 _ "github.com/aws/aws-sdk-go-v2/config"
 _ "github.com/aws/aws-sdk-go-v2/credentials"
 _ "go.uber.org/zap"
 _ "github.com/klauspost/compress/zstd"
 _ "github.com/cenkalti/backoff/v5"
 _ "golang.org/x/sys/unix"
 _ "golang.org/x/sync/errgroup"
 _ "github.com/spf13/pflag"
)
func main(){}
