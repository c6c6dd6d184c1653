package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/cloudfs/cloudfs/integration/harness"
)

// TestWritebackMinIOOutage stops MinIO in the middle of an upload: close()
// keeps working, `cloudfs sync` fails with the reason while the server is
// down, and once it is back the upload converges and a fresh mount reads
// everything.
func TestWritebackMinIOOutage(t *testing.T) {
	m := harness.StartMinIO(t)
	vol := s3Volume{m: m, prefix: "outage"}
	a := vol.mount(t, "", "--settle-delay", "0")
	writeClose(t, a.Path("warmup"), []byte("committed before the outage\n"))
	cloudfsSyncOK(t, m, a.Dir)

	want := map[string]string{"warmup": sha([]byte("committed before the outage\n"))}
	big := patterned(40, 24<<20)
	writeClose(t, a.Path("big"), big)
	want["big"] = sha(big)
	if !waitUploading(t, a) {
		t.Log("the upload finished before status saw it; MinIO stops after it")
	}
	m.Stop()

	down := []byte("written while the bucket is unreachable\n")
	writeClose(t, a.Path("while-down"), down)
	want["while-down"] = sha(down)
	start := time.Now()
	code, out := cloudfsCmd(t, m.Env(), "sync", "--timeout", "60s", a.Dir)
	t.Logf("sync while MinIO is down: exit %d after %v: %s", code, time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	if code == 0 {
		t.Fatal("sync succeeded while MinIO was down")
	}
	oneLine(t, out, "unreachable")
	if st := cloudfsStatus(t, a.Dir); st.QueuedFiles == 0 {
		t.Fatalf("nothing queued while MinIO is down: %+v", st)
	}
	checkFiles(t, a.Dir, want, "while MinIO is down")

	m.Restart()
	d := cloudfsSyncOK(t, m, a.Dir)
	t.Logf("sync after the restart took %v", d.Round(time.Millisecond))
	vol.checkReachable(t)
	b := vol.mount(t, "")
	checkFiles(t, b.Dir, want, "fresh mount after the outage")
}
