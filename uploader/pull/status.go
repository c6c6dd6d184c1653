package pull

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/cloudfs/cloudfs/chunkstore"
	"github.com/cloudfs/cloudfs/index"
	"github.com/cloudfs/cloudfs/index/bucket"
)

// Status is what `cloudfs status` shows of the pulls.
type Status struct {
	Pulls              int64     `json:"pulls"`
	LastPull           time.Time `json:"last_pull,omitzero"`
	LastPullCommit     string    `json:"last_pull_commit,omitempty"`
	LastPullGeneration uint64    `json:"last_pull_generation,omitempty"`
	LastPullDevice     string    `json:"last_pull_device,omitempty"`
	LastError          string    `json:"last_pull_error,omitempty"`
	// ConflictCount is how many conflicts the index keeps; Conflicts
	// the newest of them.
	ConflictCount int        `json:"conflict_count"`
	Conflicts     []Conflict `json:"conflicts,omitempty"`
	// DeviceShared is set when another copy of this cache dir writes this
	// device's record.
	DeviceShared string `json:"device_shared,omitempty"`
}

// Conflict is one conflict a merge met (index.Conflict with its kind
// named).
type Conflict struct {
	Time     time.Time `json:"time"`
	Kind     string    `json:"kind"`
	Path     string    `json:"path"`
	CopyPath string    `json:"copy_path,omitempty"`
}

// statusConflicts is how many conflicts Status lists.
const statusConflicts = 20

// Status returns the pulls' figures.
func (p *Puller) Status(ctx context.Context) (Status, error) {
	p.mu.Lock()
	st := p.st
	if p.ack.shared {
		st.DeviceShared = fmt.Sprintf("another copy of this cache dir writes device %s's record", p.opts.Device)
	}
	p.mu.Unlock()
	cs, n, err := p.db.Conflicts(ctx, statusConflicts)
	if err != nil {
		return st, err
	}
	st.ConflictCount = n
	for _, c := range cs {
		st.Conflicts = append(st.Conflicts, Conflict{Time: c.Time, Kind: c.Kind.String(), Path: "/" + c.Path, CopyPath: copyPath(c.CopyPath)})
	}
	return st, nil
}

func copyPath(p string) string {
	if p == "" {
		return ""
	}
	return "/" + p
}

// Acknowledge writes this device's record when the base commit moved
// since the last write, at most every AckInterval (force: whatever the
// interval, e.g. at unmount). A record someone else wrote since (another
// copy of this cache dir) is not overwritten: it is reported in Status
// and the log.
func (p *Puller) Acknowledge(ctx context.Context, force bool) error {
	base, err := p.metaID(ctx, index.MetaBaseCommit)
	if err != nil {
		return err
	}
	now := p.opts.Now()
	p.mu.Lock()
	skip := p.ack.shared || base == p.ack.commit && p.ack.etag != "" ||
		!force && now.Sub(p.ack.at) < p.opts.AckInterval
	etag := p.ack.etag
	p.mu.Unlock()
	if skip {
		return nil
	}
	d := bucket.Device{ID: p.opts.Device, Host: p.opts.Host, Machine: p.opts.Machine, Instance: p.opts.Instance, Time: now.UTC()}
	if !base.IsZero() {
		d.Commit = base.String()
		if c, err := p.commit(ctx, base); err == nil {
			d.Generation = c.Generation
		}
	}
	tag, err := bucket.PutDevice(ctx, p.store, d, etag, false)
	if errors.Is(err, chunkstore.ErrPrecondition) {
		other, otherTag, rerr := bucket.ReadDevice(ctx, p.store, p.opts.Device)
		if rerr == nil && other.Instance == p.opts.Instance {
			// Ours after all (a lost reply): take its ETag.
			tag, err = otherTag, nil
		} else {
			p.mu.Lock()
			p.ack.shared = true
			p.mu.Unlock()
			p.log.Error("another mount writes this device's record: a copy of this cache dir is in use elsewhere; "+
				"this mount stops writing the record (remount to become a new device)",
				zap.String("device", p.opts.Device), zap.String("other_host", other.Host), zap.String("other_instance", other.Instance))
			return nil
		}
	}
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ack.commit, p.ack.at, p.ack.etag = base, now, tag
	p.mu.Unlock()
	return nil
}
