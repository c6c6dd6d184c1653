package fs

import (
	"context"
	"sync"
	"syscall"

	"github.com/cloudfs/cloudfs/index"
	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// dirBatch is how many entries one index query fetches for a listing.
const dirBatch = 512

// dirHandle is an open directory. Offsets are entry cookies (1 and 2 are
// "." and ".."), so a listing resumed at an offset is stable while other
// entries come and go.
type dirHandle struct {
	n *node

	mu   sync.Mutex
	pos  uint64           // offset of the last entry returned
	buf  []index.DirEntry // fetched entries after pos
	last *index.DirEntry  // the entry returned last, for readdirplus
}

var _ = (gofs.NodeOpendirHandler)((*node)(nil))

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return &dirHandle{n: n}, 0, 0
}

var _ = (gofs.FileReaddirenter)((*dirHandle)(nil))

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.last = nil
	switch d.pos {
	case 0:
		d.pos = 1
		return &fuse.DirEntry{Name: ".", Ino: d.n.ino(), Mode: syscall.S_IFDIR, Off: 1}, 0
	case 1:
		d.pos = 2
		ino := d.n.ino()
		if ino != index.RootIno {
			if p, _, err := d.n.fsys.idx.Parent(bg(ctx), ino); err == nil {
				ino = p
			}
		}
		return &fuse.DirEntry{Name: "..", Ino: ino, Mode: syscall.S_IFDIR, Off: 2}, 0
	}
	if len(d.buf) == 0 {
		var ents []index.DirEntry
		err := d.n.fsys.withLoad(ctx, func() (err error) {
			ents, err = d.n.fsys.idx.ReadDir(bg(ctx), d.n.ino(), d.pos, dirBatch)
			return err
		})
		if err != nil {
			return nil, d.n.fsys.toErrno("readdir", err)
		}
		if len(ents) == 0 {
			return nil, 0
		}
		d.buf = ents
	}
	e := d.buf[0]
	d.buf = d.buf[1:]
	d.pos = e.Cookie
	d.last = &e
	return &fuse.DirEntry{Name: e.Name, Ino: e.Attr.Ino, Mode: e.Attr.Mode, Off: e.Cookie}, 0
}

var _ = (gofs.FileSeekdirer)((*dirHandle)(nil))

func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	d.mu.Lock()
	defer d.mu.Unlock()
	if off != d.pos {
		d.pos, d.buf, d.last = off, nil, nil
	}
	return 0
}

var _ = (gofs.FileLookuper)((*dirHandle)(nil))

// Lookup serves readdirplus from the attributes the listing query already
// returned.
func (d *dirHandle) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	d.mu.Lock()
	last := d.last
	d.mu.Unlock()
	if last == nil || last.Name != name {
		return d.n.Lookup(ctx, name, out)
	}
	a := last.Attr
	d.n.fsys.overlayOpen(&a)
	d.n.fsys.fillEntry(a, out)
	return d.n.newChild(ctx, a), 0
}

var _ = (gofs.FileReleasedirer)((*dirHandle)(nil))

func (d *dirHandle) Releasedir(ctx context.Context, releaseFlags uint32) {}

var _ = (gofs.FileFsyncdirer)((*dirHandle)(nil))

func (d *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return d.n.fsys.toErrno("fsyncdir", d.n.fsys.idx.Sync(bg(ctx)))
}
