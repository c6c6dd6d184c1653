package index

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"
	"go.uber.org/zap"
)

//go:embed schema/*.sql
var schemaFS embed.FS

// readConns is the size of the read connection pool.
const readConns = 6

// RootIno is the inode number of the root directory.
const RootIno uint64 = 1

// Options configure Open.
type Options struct {
	// Root owner and mode of a new index's root directory (mode bits only;
	// 0 means 0755).
	RootUID, RootGID uint32
	RootMode         uint32
	// Now returns the current time; nil means time.Now. Tests fix it.
	Now func() time.Time
	// OnFull, when set, is called when a write transaction finds the
	// disk full; if it reports that it freed space (a ballast), the
	// transaction is run once more.
	OnFull func() bool
}

// DB is an open index. It is safe for concurrent use.
type DB struct {
	path   string
	log    *zap.Logger
	now    func() time.Time
	onFull func() bool
	r      *sql.DB // read-only pool

	// wmu serialises all writes; it guards the fields below it.
	wmu sync.Mutex
	w   *sql.Conn // the one write connection
	wdb *sql.DB
	// unpersisted holds inodes whose staging file has bytes written that
	// no commit records yet (MarkUnpersisted .. CommitData).
	unpersisted map[uint64]int
	seq         uint64 // last dirty queue sequence number handed out
	// inoNext..inoEnd are inode numbers reserved for Create (newInoLocked).
	inoNext, inoEnd uint64
	stmts           map[string]*sql.Stmt // the write connection's, under wmu
	// unsynced is set by a commit made with synchronous=NORMAL and
	// cleared by one made with synchronous=FULL (which fsyncs the whole
	// WAL, so every earlier commit with it): Sync has nothing to do
	// while it is false.
	unsynced bool

	// xattrs knows which inodes may have extended attributes, so that
	// the getxattr and listxattr calls ls -l and every write(2) make
	// (security.capability) are answered without a query for the many
	// inodes that have none. It has its own lock (readers never take
	// wmu); writers update it under wmu.
	xattrs xattrSet

	// orphans holds the inodes that may have no links left (a superset:
	// an inode joins when a transaction that may leave it unlinked runs,
	// and leaves when Forget finds it linked or deletes it). Forget, which
	// the kernel sends for every inode it drops, runs a query only for
	// these: a walk of a large tree makes the kernel forget inodes by the
	// thousand. Open starts it empty (purgeOrphans deleted every orphan).
	omu     sync.Mutex // a leaf lock; guards orphans and displaced
	orphans map[uint64]struct{}
	// displaced holds the inodes a pull took the last name of (a
	// superset: the displaced table's rows): CommitData of one links it
	// back as a conflict copy (resurrectTx).
	displaced map[uint64]struct{}
	// device names this machine in conflict copies the index makes
	// (SetDevice); under wmu.
	device string

	rmu    sync.Mutex
	rstmts map[string]*sql.Stmt // the read pool's (database/sql prepares them once per connection)
	closed bool
}

// Open opens (creating and migrating if needed) the index at path.
func Open(ctx context.Context, path string, opts Options, log *zap.Logger) (*DB, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RootMode == 0 {
		opts.RootMode = 0o755
	}
	dsn := func(extra string) string {
		q := url.Values{}
		q.Set("_journal_mode", "WAL")
		q.Set("_synchronous", "NORMAL")
		q.Set("_busy_timeout", "10000")
		q.Set("_foreign_keys", "0")
		// 4 MiB of page cache per connection: the OS page cache holds the
		// file anyway, and 1 + readConns connections multiply it.
		q.Set("_cache_size", "-4096")
		s := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
		if extra != "" {
			s += "&" + extra
		}
		return s
	}
	if err := createFile(path); err != nil {
		return nil, err
	}
	wdb, err := sql.Open("sqlite3", dsn("_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	w, err := wdb.Conn(ctx)
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open index %s: %w", path, mapErr(err))
	}
	db := &DB{path: path, log: log, now: opts.Now, onFull: opts.OnFull, w: w, wdb: wdb, unpersisted: map[uint64]int{},
		stmts: map[string]*sql.Stmt{}, rstmts: map[string]*sql.Stmt{}, orphans: map[uint64]struct{}{},
		displaced: map[uint64]struct{}{}, device: "unknown"}
	if err := db.migrate(ctx, opts); err != nil {
		w.Close()
		wdb.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite3", dsn("_query_only=true"))
	if err != nil {
		w.Close()
		wdb.Close()
		return nil, fmt.Errorf("open index %s: %w", path, err)
	}
	r.SetMaxOpenConns(readConns)
	r.SetMaxIdleConns(readConns)
	db.r = r
	if err := db.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM dirty`).Scan(&db.seq); err != nil {
		db.Close()
		return nil, fmt.Errorf("open index %s: %w", path, mapErr(err))
	}
	if err := db.loadXattrSet(ctx); err != nil {
		db.Close()
		return nil, err
	}
	n, err := db.purgeOrphans(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := db.loadDisplaced(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if n > 0 {
		log.Info("purged orphan inodes left by an unclean shutdown", zap.Int("count", n))
	}
	return db, nil
}

// loadDisplaced fills db.displaced from the displaced table (after
// purgeOrphans, which deleted the rows of orphans).
func (db *DB) loadDisplaced(ctx context.Context) error {
	return db.read(ctx, func(tx querier) error {
		inos, err := queryInos(tx, `SELECT ino FROM displaced`)
		for _, ino := range inos {
			db.displaced[ino] = struct{}{}
		}
		if err != nil {
			return fmt.Errorf("open index %s: %w", db.path, err)
		}
		return nil
	})
}

// PageSize is the page size of a new index file. Every commit appends
// each page it changed to the WAL, and creating a file changes about seven
// (the inode, its name in three B-trees, the parent, the dirty queue):
// 1 KiB pages make that commit about a quarter cheaper than SQLite's
// default 4 KiB, while point queries cost the same (BenchmarkCreate,
// BenchmarkCloseCommit). An existing index keeps the size it was made
// with.
const PageSize = 1024

// createFile makes an empty index file with PageSize pages if path does
// not exist yet: SQLite fixes the page size when it writes the first page,
// and WAL mode (set by every connection) cannot change it afterwards.
func createFile(path string) error {
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		return tighten(path) // there (or unreadable: the real open says why)
	}
	// Mode 0600 from the start (SQLite gives the -wal and -shm files the
	// database's mode): the index names every file of the mounting user.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create index %s: %w", path, err)
	}
	f.Close()
	d, err := sql.Open("sqlite3", "file:"+(&url.URL{Path: path}).EscapedPath())
	if err != nil {
		return fmt.Errorf("create index %s: %w", path, err)
	}
	defer d.Close()
	if _, err := d.Exec(fmt.Sprintf("PRAGMA page_size = %d; VACUUM", PageSize)); err != nil {
		return fmt.Errorf("create index %s: %w", path, mapErr(err))
	}
	return nil
}

// tighten makes an existing index and its -wal and -shm files 0600 (an
// index made before they were created so, or copied in with a wider mode).
func tighten(path string) error {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 == 0 {
			continue
		}
		if err := os.Chmod(p, fi.Mode().Perm()&0o700); err != nil {
			return fmt.Errorf("index %s: tighten mode %v: %w", p, fi.Mode().Perm(), err)
		}
	}
	return nil
}

var errClosed = errors.New("index already closed")

// Close checkpoints the WAL and closes the database. Closing twice returns
// an error matching errClosed.
func (db *DB) Close() error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if db.closed {
		return fmt.Errorf("close index %s: %w", db.path, errClosed)
	}
	db.closed = true
	var errs []error
	db.rmu.Lock()
	for _, st := range db.rstmts {
		errs = append(errs, st.Close())
	}
	db.rmu.Unlock()
	if db.r != nil {
		errs = append(errs, db.r.Close())
	}
	if _, err := db.w.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		errs = append(errs, fmt.Errorf("checkpoint: %w", err))
	}
	for _, st := range db.stmts {
		errs = append(errs, st.Close())
	}
	errs = append(errs, db.w.Close(), db.wdb.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close index %s: %w", db.path, err)
	}
	return nil
}

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

func (db *DB) nowNS() int64 { return db.now().UnixNano() }

// write runs fn in one write transaction. With durable set, the commit is
// made with synchronous=FULL (the WAL is fsynced before write returns).
func (db *DB) write(ctx context.Context, durable bool, fn func(tx querier) error) error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	return db.writeLocked(ctx, durable, fn)
}

// read1 runs fn, which must run a single statement (atomic by itself)
// and consume its rows, without a transaction: a BEGIN and a ROLLBACK cost
// more than a point query. When no write is running it runs on the write
// connection: SQLite drops a connection's page cache whenever another
// connection committed since its last read, so in a workload that mixes
// writes and reads (creating files) the pool's connections would re-read
// every B-tree page from the file, while the writer's cache is always
// warm. Otherwise it runs on the read pool and never waits for a writer.
func (db *DB) read1(ctx context.Context, fn func(tx querier) error) error {
	if db.wmu.TryLock() {
		defer db.wmu.Unlock()
		if !db.closed {
			return mapErr(fn(&wtx{db: db, ctx: ctx}))
		}
	}
	return mapErr(fn(db.rtx(ctx)))
}

// rtx returns a querier that runs each statement on the read pool without
// a transaction (see read1).
func (db *DB) rtx(ctx context.Context) querier { return &rtx{db: db, ctx: ctx} }

// read runs fn in one read transaction (a consistent snapshot).
func (db *DB) read(ctx context.Context, fn func(tx querier) error) error {
	tx, err := db.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return mapErr(err)
	}
	defer tx.Rollback()
	return mapErr(fn(&rtx{db: db, tx: tx, ctx: ctx}))
}

// Sync makes every earlier commit durable (fsync, fsyncdir). It costs
// nothing when no commit since the last durable one is pending.
func (db *DB) Sync(ctx context.Context) error {
	db.wmu.Lock()
	defer db.wmu.Unlock()
	if !db.unsynced {
		return nil
	}
	err := db.writeLocked(ctx, true, func(tx querier) error {
		_, err := tx.Exec(`INSERT INTO meta(key, value) VALUES('sync_seq', 1)
			ON CONFLICT(key) DO UPDATE SET value = value + 1`)
		return err
	})
	if err != nil {
		return fmt.Errorf("sync index: %w", err)
	}
	return nil
}

// mapErr turns SQLite's disk-full error into ErrFull, keeping the original.
func mapErr(err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) && se.Code == sqlite3.ErrFull {
		return fmt.Errorf("%w: %w", ErrFull, err)
	}
	return err
}

func (db *DB) migrate(ctx context.Context, opts Options) error {
	files, err := fs.Glob(schemaFS, "schema/*.sql")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sort.Strings(files)
	var version int
	if err := db.w.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("migrate %s: read user_version: %w", db.path, mapErr(err))
	}
	if version > len(files) {
		return fmt.Errorf("migrate %s: index schema version %d is newer than this cloudfs (%d)", db.path, version, len(files))
	}
	for i := version; i < len(files); i++ {
		name := files[i]
		want, err := strconv.Atoi(strings.SplitN(strings.TrimPrefix(name, "schema/"), "_", 2)[0])
		if err != nil || want != i+1 {
			return fmt.Errorf("migrate: schema file %s out of sequence", name)
		}
		text, err := schemaFS.ReadFile(name)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		err = db.writeLocked(ctx, true, func(tx querier) error {
			// A script of many statements: not through the statement cache.
			if _, err := db.w.ExecContext(ctx, string(text)); err != nil {
				return fmt.Errorf("apply %s: %w", name, err)
			}
			if i == 0 {
				if err := initRoot(tx, opts, db.nowNS()); err != nil {
					return err
				}
			}
			_, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", i+1))
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s: %w", db.path, err)
		}
		db.log.Info("index schema migrated", zap.String("path", db.path), zap.Int("version", i+1))
	}
	return nil
}

func initRoot(tx querier, opts Options, now int64) error {
	_, err := tx.Exec(`INSERT INTO inodes(ino, mode, uid, gid, nlink, atime_ns, mtime_ns, ctime_ns, btime_ns)
		VALUES(?, ?, ?, ?, 2, ?, ?, ?, ?)`,
		RootIno, sIFDIR|(opts.RootMode&0o7777), opts.RootUID, opts.RootGID, now, now, now, now)
	if err != nil {
		return fmt.Errorf("create root: %w", err)
	}
	return nil
}
