package gc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index/bucket"
	"github.com/cloudfs/cloudfs/index/tree"
)

// kept is the set of kept commits, and why some were looked at and not
// kept.
type kept struct {
	commits        map[chunkstore.ID]*tree.Commit
	devices        int      // live devices
	expired        []string // devices past DeviceExpiry
	missingDevices []string // live devices whose commit is not in the store
}

// keptCommits walks head's history newest generation first and keeps what
// the retention policy asks for; the history below a commit it does not
// keep is not read (nothing older is kept by the policy). Then it adds the
// live devices' commits and the young commit objects listed.
func (r *run) keptCommits(ctx context.Context, head chunkstore.ID, hasHead bool) (*kept, error) {
	k := &kept{commits: map[chunkstore.ID]*tree.Commit{}}
	if hasHead {
		rank := 0
		err := bucket.History(ctx, r.store, head, func(id chunkstore.ID, c *tree.Commit) (bool, error) {
			age := r.now.Sub(time.Unix(0, c.TimeNs))
			if rank > 0 && rank >= r.opts.KeepLast && age > r.opts.KeepWithin {
				return false, nil
			}
			rank++
			k.commits[id] = c
			return true, nil
		})
		if err != nil {
			return nil, err
		}
	}
	devs, _, err := bucket.ListDevices(ctx, r.store)
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		if r.now.Sub(d.Time) > r.opts.DeviceExpiry {
			k.expired = append(k.expired, d.ID)
			continue
		}
		k.devices++
		if d.Commit == "" {
			continue
		}
		id, _ := chunkstore.ParseID(d.Commit) // checked by ListDevices
		if _, ok := k.commits[id]; ok {
			continue
		}
		c, err := bucket.ReadCommit(ctx, r.store, id)
		if errors.Is(err, chunkstore.ErrNotFound) {
			k.missingDevices = append(k.missingDevices, d.ID)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("commit of device %s: %w", d.ID, err)
		}
		k.commits[id] = c
	}
	for ref, info := range r.listed {
		if ref.Kind != bucket.RefCommit || !r.young(info) {
			continue
		}
		if _, ok := k.commits[ref.ID]; ok {
			continue
		}
		c, err := bucket.ReadCommit(ctx, r.store, ref.ID)
		if errors.Is(err, chunkstore.ErrNotFound) || errors.Is(err, chunkstore.ErrCorrupt) || errors.Is(err, tree.ErrCorrupt) {
			continue // gone, or no one can use it; young, so not marked either
		}
		if err != nil {
			return nil, fmt.Errorf("young commit %s: %w", ref.ID, err)
		}
		k.commits[ref.ID] = c
	}
	return k, nil
}
