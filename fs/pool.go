package fs

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// stagingPool hands out empty staging files that are already durable in
// the staging directory: files are created in batches with one directory
// fsync per batch, so a new file's first close does not pay for its own
// directory fsync. Files are handed out open (no open(2) on the write
// path), and a batch is made in the background once half the pool is
// used, so a writer rarely waits for one. Unused pool files are removed by
// the next mount's sweep.
type stagingPool struct {
	dir    string
	prefix string // unique per mount

	mu        sync.Mutex // guards the fields below; a leaf lock
	next      int
	ready     []pooledFile
	refilling bool // a background batch is being made

	bg sync.WaitGroup // the background batch, for wait
}

type pooledFile struct {
	name string
	f    *os.File
}

const stagingPoolBatch = 64

// stagingPoolSyncBatch is the batch a writer makes itself when the pool is
// empty: small, since the writer may hold the file system's lock (a
// passthrough open) while the rest comes from the background.
const stagingPoolSyncBatch = 8

func newStagingPool(dir string) *stagingPool {
	return &stagingPool{dir: dir, prefix: fmt.Sprintf("s%x-", time.Now().UnixNano())}
}

// take returns the name of an empty, durably created staging file and the
// file, open for reading and writing.
func (p *stagingPool) take() (string, *os.File, error) {
	p.mu.Lock()
	if len(p.ready) == 0 {
		// Nothing ready (the first file, or writers outran the
		// background batch): make a batch here.
		p.mu.Unlock()
		made, err := p.makeBatch(stagingPoolSyncBatch)
		p.mu.Lock()
		p.ready = append(p.ready, made...)
		if len(p.ready) == 0 {
			p.mu.Unlock()
			return "", nil, err
		}
	}
	pf := p.ready[len(p.ready)-1]
	p.ready = p.ready[:len(p.ready)-1]
	if len(p.ready) < stagingPoolBatch/2 && !p.refilling {
		p.refilling = true
		p.bg.Add(1)
		go p.refill()
	}
	p.mu.Unlock()
	return pf.name, pf.f, nil
}

// put takes back an unused staging file: one taken for a file that never
// committed bytes to it (a new file closed empty, a passthrough session
// that wrote nothing), which no index row names. It is emptied and handed
// out again, sparing the cache disk an inode allocation and a removal;
// when the pool is full it is removed instead.
func (p *stagingPool) put(name string, f *os.File) error {
	if err := f.Truncate(0); err == nil {
		p.mu.Lock()
		if len(p.ready) < 2*stagingPoolBatch {
			p.ready = append(p.ready, pooledFile{name: name, f: f})
			p.mu.Unlock()
			return nil
		}
		p.mu.Unlock()
	}
	f.Close()
	return os.Remove(filepath.Join(p.dir, name))
}

// wait returns once no background batch is being made.
func (p *stagingPool) wait() { p.bg.Wait() }

// refill makes a batch in the background.
func (p *stagingPool) refill() {
	defer p.bg.Done()
	made, _ := p.makeBatch(stagingPoolBatch) // a failure shows at the next synchronous take
	p.mu.Lock()
	p.ready = append(p.ready, made...)
	p.refilling = false
	p.mu.Unlock()
}

// makeBatch creates up to n files and fsyncs the directory. It returns
// what it made (nothing with an error).
func (p *stagingPool) makeBatch(n int) ([]pooledFile, error) {
	var made []pooledFile
	for i := 0; i < n; i++ {
		p.mu.Lock()
		name := p.prefix + fmt.Sprint(p.next)
		p.next++
		p.mu.Unlock()
		f, err := os.OpenFile(filepath.Join(p.dir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			if len(made) > 0 {
				break // use what exists (e.g. out of inodes)
			}
			return nil, fmt.Errorf("create staging file: %w", err)
		}
		made = append(made, pooledFile{name: name, f: f})
	}
	if err := syncDir(p.dir); err != nil {
		for _, pf := range made {
			pf.f.Close()
			os.Remove(filepath.Join(p.dir, pf.name))
		}
		return nil, err
	}
	return made, nil
}
