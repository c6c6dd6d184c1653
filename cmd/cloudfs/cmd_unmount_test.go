package main

import (
	"bytes"
	"strings"
	"testing"
)

// Without a terminal the progress is plain lines: what is left is the
// queue's bytes less those cut since the first report, and the last line
// says everything is committed.
func TestPushProgressLines(t *testing.T) {
	var b bytes.Buffer
	p := newPushProgress(&b, false)
	p.update(3, 10<<20, 100) // the first report: nothing cut yet
	p.last = p.last.Add(-unmountLines)
	p.update(3, 10<<20, 100+4<<20) // 4 MiB cut since
	p.update(3, 10<<20, 100+5<<20) // within unmountLines of the last line: not shown
	p.finish(true)
	want := "cloudfs unmount: 3 files, 10.0 MiB left to upload\n" +
		"cloudfs unmount: 3 files, 6.0 MiB left to upload\n" +
		"cloudfs unmount: everything is committed\n"
	if got := b.String(); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	b.Reset()
	p = newPushProgress(&b, false)
	p.update(1, 1<<20, 0)
	p.finish(false)
	if strings.Contains(b.String(), "committed") {
		t.Fatalf("a failed sync says it committed:\n%s", b.String())
	}
}
