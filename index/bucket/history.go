package bucket

import (
	"container/heap"
	"context"
	"errors"
	"fmt"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/tree"
)

// History visits head and its ancestors, newest generation first (a merge
// commit's parents both come after it). visit says whether to go on to
// the commit's parents; an ancestor missing from the store (collected)
// ends the history there. A corrupt commit, or visit's error, stops the
// walk with that error.
func History(ctx context.Context, s chunkstore.Store, head chunkstore.ID, visit func(id chunkstore.ID, c *tree.Commit) (parents bool, err error)) error {
	c, err := ReadCommit(ctx, s, head)
	if err != nil {
		return fmt.Errorf("head: %w", err)
	}
	q := &byGeneration{{head, c}}
	seen := map[chunkstore.ID]bool{head: true}
	for q.Len() > 0 {
		ic := heap.Pop(q).(idCommit)
		more, err := visit(ic.id, ic.c)
		if err != nil {
			return err
		}
		if !more {
			continue
		}
		for _, p := range ic.c.Parents {
			if seen[p] {
				continue
			}
			seen[p] = true
			pc, err := ReadCommit(ctx, s, p)
			if errors.Is(err, chunkstore.ErrNotFound) {
				continue // collected: the history ends here
			}
			if err != nil {
				return fmt.Errorf("parent of %s: %w", ic.id, err)
			}
			heap.Push(q, idCommit{p, pc})
		}
	}
	return nil
}

type idCommit struct {
	id chunkstore.ID
	c  *tree.Commit
}

// byGeneration is a max-heap of commits by generation.
type byGeneration []idCommit

func (h byGeneration) Len() int           { return len(h) }
func (h byGeneration) Less(i, j int) bool { return h[i].c.Generation > h[j].c.Generation }
func (h byGeneration) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *byGeneration) Push(x any)        { *h = append(*h, x.(idCommit)) }
func (h *byGeneration) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
