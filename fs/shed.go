package fs

import (
	"sync"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"go.uber.org/zap"
)

// defaultMaxKernelInodes is Config.MaxKernelInodes when it is 0. go-fuse
// keeps a node (~0.5 KiB with its maps) for every inode the kernel holds,
// and the kernel keeps every inode a walk looked up until memory runs
// short: a walk of a million files would cost the daemon ~800 MiB.
const defaultMaxKernelInodes = 50_000

// shedBatch is how many inodes one round asks the kernel to forget.
const shedBatch = 4096

// shedder keeps the number of inodes the kernel holds near a bound: it
// remembers the inodes handed to the kernel, oldest first, and once there
// are more than the bound asks the kernel to forget the oldest
// (FUSE_NOTIFY_PRUNE, or an entry invalidation per inode on kernels
// without it). The kernel drops only dentries nobody uses (no open file,
// no cwd, no cached child), exactly what it would drop under memory
// pressure, so this changes no semantics: a forgotten name is looked up
// again when next used. The notifications run on the shedder's own
// goroutine, never in a FUSE request (the kernel may hold a directory lock
// that a request it waits for needs). mu is a leaf lock.
type shedder struct {
	max int
	log *zap.Logger

	mu    sync.Mutex
	queue []*gofs.Inode // handed to the kernel, oldest first (may repeat, may be forgotten already)
	root  *gofs.Inode   // to send notifications through; nil until mounted

	kick    chan struct{}
	noPrune bool // the kernel lacks FUSE_NOTIFY_PRUNE (shedder goroutine only)
}

func newShedder(max int, log *zap.Logger) *shedder {
	return &shedder{max: max, log: log, kick: make(chan struct{}, 1)}
}

// start begins shedding through the mounted root.
func (s *shedder) start(root *gofs.Inode) {
	s.mu.Lock()
	s.root = root
	s.mu.Unlock()
	go s.run()
}

// handed records that the kernel got inode in (a lookup, readdirplus or
// create reply).
func (s *shedder) handed(in *gofs.Inode) {
	if s.max <= 0 {
		return
	}
	s.mu.Lock()
	s.queue = append(s.queue, in)
	over := len(s.queue) > s.max+shedBatch
	s.mu.Unlock()
	if over {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// run sheds whenever handed signals that the queue is over the bound.
// It stops with the process (a mount lives as long as its daemon).
func (s *shedder) run() {
	for range s.kick {
		for {
			s.mu.Lock()
			n := len(s.queue) - s.max
			if n < shedBatch {
				s.mu.Unlock()
				break
			}
			batch := make([]*gofs.Inode, shedBatch)
			copy(batch, s.queue)
			rest := copy(s.queue, s.queue[shedBatch:])
			clear(s.queue[rest:])
			s.queue = s.queue[:rest]
			root := s.root
			s.mu.Unlock()
			s.forget(root, batch)
		}
	}
}

// forget asks the kernel to forget the inodes of batch.
func (s *shedder) forget(root *gofs.Inode, batch []*gofs.Inode) {
	if root == nil {
		return
	}
	live := batch[:0]
	for _, in := range batch {
		if !in.Forgotten() && in.StableAttr().Ino != root.StableAttr().Ino {
			live = append(live, in)
		}
	}
	if len(live) == 0 {
		return
	}
	if !s.noPrune {
		switch errno := root.NotifyPrune(live); errno {
		case 0:
			return
		case syscall.ENOSYS:
			s.noPrune = true
			s.log.Debug("kernel lacks FUSE_NOTIFY_PRUNE; shedding inodes by entry invalidation")
		default:
			s.log.Debug("prune inodes", zap.Error(errno))
			return
		}
	}
	for _, in := range live {
		if name, parent := in.Parent(); parent != nil {
			parent.NotifyEntry(name) // ENOENT: the kernel no longer has it
		}
	}
}
