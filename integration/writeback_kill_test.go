package integration

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/integration/harness"
)

// killPoint says when an iteration of TestWritebackKill9 kills the daemon:
// delay after the last close, or (upload) delay after status first shows
// an upload in progress.
type killPoint struct {
	upload bool
	delay  time.Duration
	large  bool // write a 6 MiB file, so the upload takes a while
}

func (p killPoint) String() string {
	if p.upload {
		return fmt.Sprintf("%v into an upload", p.delay)
	}
	return fmt.Sprintf("%v after close", p.delay)
}

// TestWritebackKill9: kill -9 of the daemon at 24 points (right after
// closes, inside chunk uploads, late in a round where trees, commit and
// head are written), each followed by a remount with the same cache dir
// that must show every byte close() returned for. In the end the queue
// drains with no user action, sync succeeds, every object reachable from
// head is in the bucket, and a fresh cache dir sees the same files.
func TestWritebackKill9(t *testing.T) {
	m := harness.StartMinIO(t)
	vol := s3Volume{m: m, prefix: "kill"}
	a := vol.mount(t, t.TempDir(), "--settle-delay", "0")

	var points []killPoint
	for _, d := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond,
		50 * time.Millisecond, 120 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond, 1200 * time.Millisecond} {
		points = append(points, killPoint{delay: d})
	}
	for _, d := range []time.Duration{0, 2 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond,
		50 * time.Millisecond, 80 * time.Millisecond, 120 * time.Millisecond, 180 * time.Millisecond,
		250 * time.Millisecond, 350 * time.Millisecond, 500 * time.Millisecond, 700 * time.Millisecond,
		1000 * time.Millisecond, 1500 * time.Millisecond, 2000 * time.Millisecond} {
		points = append(points, killPoint{upload: true, delay: d, large: true})
	}

	want := map[string]string{}
	big := patterned(100, 4<<20)
	writeClose(t, a.Path("big"), big)
	want["big"] = sha(big)
	inFlight := 0
	for i, p := range points {
		// A new file, a rewrite of one file, and an in-place edit.
		size := (i%4)*768<<10 + 64<<10 + i
		if p.large {
			size = 6<<20 + i
		}
		name := fmt.Sprintf("round/%02d.bin", i)
		data := patterned(uint64(200+i), size)
		writeClose(t, a.Path(name), data)
		want[name] = sha(data)
		shared := []byte(fmt.Sprintf("iteration %d\n", i))
		writeClose(t, a.Path("shared.txt"), shared)
		want["shared.txt"] = sha(shared)
		patch := patterned(uint64(300+i), 64<<10)
		off := int64(i*97<<10) % int64(len(big)-len(patch))
		f, err := os.OpenFile(a.Path("big"), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(patch, off); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		copy(big[off:], patch)
		want["big"] = sha(big)

		sampled := ""
		tw := time.Now()
		if p.upload {
			if waitUploading(t, a) {
				inFlight++
				sampled = " (status showed it uploading)"
			} else {
				sampled = " (the upload finished before status saw it)"
			}
		}
		if p.upload {
			sampled += fmt.Sprintf(" after %v", time.Since(tw).Round(time.Millisecond))
		}
		time.Sleep(p.delay)
		t0 := time.Now()
		a.Kill9()
		a.Remount()
		t1 := time.Now()
		checkFiles(t, a.Dir, want, fmt.Sprintf("remount after kill point %d (%v)", i+1, p))
		t.Logf("kill point %d: %v%s; checked %d files (kill+remount %v, check %v)", i+1, p, sampled, len(want),
			t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	}
	if inFlight < 3 {
		t.Errorf("only %d of the kill points hit an upload in progress (status uploading > 0)", inFlight)
	}

	// The queue drains with no user action.
	deadline := time.Now().Add(90 * time.Second)
	for {
		st := cloudfsStatus(t, a.Dir)
		if st.QueuedFiles == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still queued 90s after the last remount: %+v", st)
		}
		time.Sleep(200 * time.Millisecond)
	}
	vol.checkReachable(t)
	cloudfsSyncOK(t, m, a.Dir)
	vol.checkReachable(t)
	sums := treeSums(t, a.Dir)
	b := vol.mount(t, "")
	checkFiles(t, b.Dir, want, "fresh mount after the kills")
	sameTree(t, treeSums(t, b.Dir), sums, "fresh mount after the kills")
}
