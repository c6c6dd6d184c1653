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
// directory fsync. Unused pool files are removed by the next mount's sweep.
type stagingPool struct {
	dir    string
	prefix string // unique per mount

	mu    sync.Mutex
	next  int
	ready []string
}

const stagingPoolBatch = 64

func newStagingPool(dir string) *stagingPool {
	return &stagingPool{dir: dir, prefix: fmt.Sprintf("s%x-", time.Now().UnixNano())}
}

// take returns the name of an empty, durably created staging file.
func (p *stagingPool) take() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ready) == 0 {
		var made []string
		for i := 0; i < stagingPoolBatch; i++ {
			name := p.prefix + fmt.Sprint(p.next)
			p.next++
			f, err := os.OpenFile(filepath.Join(p.dir, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				if len(made) > 0 {
					break // use what exists (e.g. out of inodes)
				}
				return "", fmt.Errorf("create staging file: %w", err)
			}
			f.Close()
			made = append(made, name)
		}
		if err := syncDir(p.dir); err != nil {
			return "", err
		}
		p.ready = made
	}
	name := p.ready[len(p.ready)-1]
	p.ready = p.ready[:len(p.ready)-1]
	return name, nil
}
