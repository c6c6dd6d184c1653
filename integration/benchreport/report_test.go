package benchreport

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		u    Unit
		v    float64
		want string
	}{
		{MiBPerSec, 512.4, "512 MiB/s"},
		{MiBPerSec, 1234.5, "1,235 MiB/s"},
		{MiBPerSec, 45.67, "45.7 MiB/s"},
		{MiBPerSec, 0.5, "0.50 MiB/s"},
		{FilesPerSec, 3412.2, "3,412 files/s"},
		{EntriesPerSec, 1234567, "1,234,567 entries/s"},
		{EntriesPerSec, 999, "999 entries/s"},
		{Millis, 2.4149, "2.41 ms"},
		{Seconds, 0.5, "0.50 s"},
		{Bytes, 0, "0 B"},
		{Bytes, 812, "812 B"},
		{Bytes, 12.34 * 1024, "12.3 KiB"},
		{Bytes, 1 << 20, "1.00 MiB"},
		{Bytes, 2.5 * (1 << 30), "2.50 GiB"},
		{Bytes, -3 << 20, "-3.00 MiB"},
	} {
		if got := tc.u.Format(tc.v); got != tc.want {
			t.Errorf("Format(%v, %v) = %q, want %q", tc.u, tc.v, got, tc.want)
		}
	}
}

func TestGoalText(t *testing.T) {
	for _, tc := range []struct {
		g    Goal
		u    Unit
		want string
	}{
		{Goal{}, MiBPerSec, "—"},
		{Min(450), MiBPerSec, "≥ 450 MiB/s"},
		{Max(3), Millis, "≤ 3.00 ms"},
		{Under(1), Seconds, "< 1.00 s"},
		{Max(2 << 20), Bytes, "≤ 2.00 MiB"},
		{MinRatio(0.8, "loopback"), MiBPerSec, "≥ 80.0% of loopback"},
		{MinRatio(0.5, "local disk"), MiBPerSec, "≥ 50.0% of local disk"},
		{MaxRatio(1.1, "raw S3 4 KiB GET"), Millis, "≤ 110% of raw S3 4 KiB GET"},
		{MinSpeedRatio(0.6, "loopback"), Seconds, "speed ≥ 60.0% of loopback's"},
	} {
		if got := tc.g.Text(tc.u); got != tc.want {
			t.Errorf("%+v.Text = %q, want %q", tc.g, got, tc.want)
		}
	}
}

// goalCase is a row with a goal, a value and baselines, and the status it
// must get.
type goalCase struct {
	name  string
	goal  Goal
	value float64
	bases []Baseline
	want  Status
}

// checkGoals evaluates each case as a row of unit u.
func checkGoals(t *testing.T, u Unit, cases []goalCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &Row{Figure: "x", Unit: u, Goal: tc.goal}
			for _, b := range tc.bases {
				r.AddBaseline(b.Name, b.Value)
			}
			r.Set(tc.value)
			if r.Status != tc.want {
				t.Fatalf("status %v, want %v (row %+v)", r.Status, tc.want, r)
			}
		})
	}
}

func TestEvaluate(t *testing.T) {
	checkGoals(t, MiBPerSec, []goalCase{
		{"no goal", Goal{}, 1, nil, Info},
		{"min met", Min(450), 450, nil, Pass},
		{"min missed", Min(450), 449.9, nil, Fail},
		{"max met", Max(3), 3, nil, Pass},
		{"max missed", Max(3), 3.01, nil, Fail},
		{"below is strict", Under(1), 1, nil, Fail},
		{"below met", Under(1), 0.99, nil, Pass},
		{"ratio met", MinRatio(0.8, "loopback"), 80, []Baseline{{"local", 1000}, {"loopback", 100}}, Pass},
		{"ratio missed", MinRatio(0.8, "loopback"), 79, []Baseline{{"loopback", 100}}, Fail},
		{"ratio without its baseline", MinRatio(0.8, "loopback"), 79, []Baseline{{"local", 100}}, Failed},
		{"ratio over a zero baseline", MinRatio(0.8, "loopback"), 79, []Baseline{{"loopback", 0}}, Failed},
	})
}

// TestTimeGoals checks the goals of rows measured in time: MaxRatio on
// Value / Baseline, MinSpeedRatio on the speeds (Baseline / Value), and
// that the table's ratio of a speed-goal row is the speed ratio.
func TestTimeGoals(t *testing.T) {
	checkGoals(t, Seconds, []goalCase{
		{"max ratio met", MaxRatio(1.1, "raw"), 2.2, []Baseline{{"raw", 2}}, Pass},
		{"max ratio missed", MaxRatio(1.1, "raw"), 2.3, []Baseline{{"raw", 2}}, Fail},
		{"max ratio without its baseline", MaxRatio(1.1, "raw"), 1, nil, Failed},
		// Loopback took 6 s: 10 s is 0.6× its speed, 10.1 s less.
		{"speed met", MinSpeedRatio(0.6, "loopback"), 10, []Baseline{{"local disk", 1}, {"loopback", 6}}, Pass},
		{"speed missed", MinSpeedRatio(0.6, "loopback"), 10.1, []Baseline{{"loopback", 6}}, Fail},
		{"faster than the baseline", MinSpeedRatio(0.6, "loopback"), 3, []Baseline{{"loopback", 6}}, Pass},
		{"speed without its baseline", MinSpeedRatio(0.6, "loopback"), 3, []Baseline{{"local disk", 6}}, Failed},
		{"speed over a zero time", MinSpeedRatio(0.6, "loopback"), 0, []Baseline{{"loopback", 6}}, Failed},
	})
	rep := &Report{}
	sp := rep.Add("tar -xf", Seconds, MinSpeedRatio(0.6, "loopback"))
	sp.AddBaseline("local disk", 2)
	sp.AddBaseline("loopback", 5)
	sp.Set(10)
	lat := rep.Add("p50", Millis, MaxRatio(1.1, "raw GET"))
	lat.AddBaseline("raw GET", 2)
	lat.Set(2.5)
	table := rep.Table()
	for _, want := range []string{
		"| tar -xf | 10.00 s | local disk 2.00 s; loopback 5.00 s | speed 0.20× local disk; speed 0.50× loopback | speed ≥ 60.0% of loopback's | **FAIL** |",
		"| p50 | 2.50 ms | raw GET 2.00 ms | 1.25× raw GET | ≤ 110% of raw GET | **FAIL** |",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if v, ok := sp.SpeedRatio("loopback"); !ok || v != 0.5 {
		t.Errorf("SpeedRatio = %v, %v; want 0.5", v, ok)
	}
	if v, ok := lat.Ratio("raw GET"); !ok || v != 1.25 {
		t.Errorf("Ratio = %v, %v; want 1.25", v, ok)
	}
}

// TestSkipped checks that a skipped row is neither pending nor a failure,
// says why, and is counted apart in the summary.
func TestSkipped(t *testing.T) {
	rep := sample()
	r := rep.Add("programs", Seconds, MinSpeedRatio(0.6, "loopback"))
	r.Skip("skipped by CLOUDFS_BENCH_ONLY")
	if r.Pending() || r.Status != Skipped {
		t.Fatalf("skipped row: pending %v, status %v", r.Pending(), r.Status)
	}
	md := rep.Markdown()
	for _, want := range []string{
		"| programs | n/a | — | — | speed ≥ 60.0% of loopback's | n/a (skipped by CLOUDFS_BENCH_ONLY) |",
		"Summary: 1 pass, 0 FAIL, 1 n/a (not implemented), 2 broken, 1 reported without a goal, 1 skipped.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if n := rep.Counts()[Failed]; n != 2 {
		t.Errorf("%d broken rows, want 2 (the skipped one is not)", n)
	}
}

func TestBaselineAfterValueReevaluates(t *testing.T) {
	r := &Row{Unit: MiBPerSec, Goal: MinRatio(0.5, "local disk")}
	r.Set(60)
	if r.Status != Failed {
		t.Fatalf("status %v before the baseline, want Failed", r.Status)
	}
	r.AddBaseline("local disk", 100)
	if r.Status != Pass || r.result() != "pass" {
		t.Fatalf("status %v (%q) after the baseline, want Pass", r.Status, r.result())
	}
}

func sample() *Report {
	rep := &Report{
		Title: "cloudfs bench",
		Time:  time.Date(2026, 11, 24, 13, 48, 0, 0, time.UTC),
		Host:  "build host/1",
		Setup: []string{"remote: s3://bucket/vol"},
	}
	w := rep.Add("sequential write | 512 MiB", MiBPerSec, MinRatio(0.5, "local disk"))
	w.AddBaseline("local disk", 400)
	w.AddBaseline("loopback", 300)
	w.Set(250)
	rss := rep.Add("daemon peak RSS", Bytes, Goal{})
	rss.Method = "VmHWM of the mount daemon"
	rss.Set(80 << 20)
	rss.Note = "after the tree"
	cold := rep.Add("cold sequential read", MiBPerSec, MinRatio(0.8, "raw S3"))
	cold.Method = "dd after dropping caches"
	cold.AddBaseline("raw S3", 900)
	cold.NA("cloudfs sync")
	rep.Add("never reached", Seconds, Under(1))
	bad := rep.Add("rm -rf", EntriesPerSec, Goal{})
	bad.Broken(errors.New("exit status 1: rm: cannot remove"))
	return rep
}

func TestMarkdown(t *testing.T) {
	md := sample().Markdown()
	for _, want := range []string{
		"# cloudfs bench\n",
		"- run: 2026-11-24T13:48:00Z on build host/1\n",
		"- remote: s3://bucket/vol\n",
		"| Figure | cloudfs | Baseline(s) | Ratio | Goal | Result |\n",
		`| sequential write \| 512 MiB | 250 MiB/s | local disk 400 MiB/s; loopback 300 MiB/s | 0.62× local disk; 0.83× loopback | ≥ 50.0% of local disk | pass |`,
		"| daemon peak RSS | 80.0 MiB | — | — | — | — |",
		"| cold sequential read | n/a | raw S3 900 MiB/s | — | ≥ 80.0% of raw S3 | n/a (not implemented: cloudfs sync) |",
		"| never reached | n/a | — | — | < 1.00 s | **broken**: not measured (an earlier step failed) |",
		"| rm -rf | n/a | — | — | — | **broken**: exit status 1: rm: cannot remove |",
		"- daemon peak RSS: VmHWM of the mount daemon; after the tree\n",
		"- cold sequential read: dd after dropping caches\n",
		"Summary: 1 pass, 0 FAIL, 1 n/a (not implemented), 2 broken, 1 reported without a goal.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	// One table: every row line sits in one contiguous block.
	lines := strings.Split(md, "\n")
	first, last := -1, -1
	for i, l := range lines {
		if strings.HasPrefix(l, "|") {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if got := last - first + 1; got != 2+5 {
		t.Errorf("table spans %d lines, want 7 (header, rule, 5 rows)", got)
	}
	for _, l := range lines[first : last+1] {
		if !strings.HasPrefix(l, "|") {
			t.Errorf("table interrupted by %q", l)
		}
	}
}

func TestAppendix(t *testing.T) {
	rep := sample()
	rep.AppendixTitle = "Go benchmarks"
	rep.Appendix = "BenchmarkChunkAndHash 10 100 ns/op\n\n"
	md := rep.Markdown()
	if !strings.HasSuffix(md, "## Go benchmarks\n\n```\nBenchmarkChunkAndHash 10 100 ns/op\n```\n") {
		t.Errorf("appendix not at the end:\n%s", md)
	}
}

func TestWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bench", "results")
	rep := sample()
	path, err := rep.Write(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "2026-11-24-build-host-1.md"); path != want {
		t.Errorf("path %s, want %s", path, want)
	}
	for _, p := range []string{path, filepath.Join(dir, "latest.md")} {
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != rep.Markdown() {
			t.Errorf("%s differs from Markdown()", p)
		}
	}
	// A second run the same day replaces both; no temporary file stays.
	rep.Rows = rep.Rows[:1]
	if _, err := rep.Write(dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "2026-11-24-build-host-1.md latest.md" {
		t.Errorf("results dir holds %v", names)
	}
	got, err := os.ReadFile(filepath.Join(dir, "latest.md"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(got), "daemon peak RSS") {
		t.Errorf("latest.md was not replaced")
	}
}

func TestWriteUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := sample().Write(filepath.Join(file, "results")); err == nil {
		t.Fatal("Write under a regular file succeeded")
	}
}

func TestPending(t *testing.T) {
	rep := &Report{}
	r := rep.Add("x", Seconds, Under(1))
	if !r.Pending() {
		t.Fatal("a new row is not pending")
	}
	r.AddBaseline("local disk", 1)
	if !r.Pending() {
		t.Fatal("a baseline decided the row")
	}
	r.Set(0.5)
	if r.Pending() {
		t.Fatal("a measured row is pending")
	}
	for _, mark := range []func(*Row){
		func(r *Row) { r.NA("lazy tree") },
		func(r *Row) { r.Broken(errors.New("boom")) },
	} {
		r := rep.Add("y", Seconds, Under(1))
		mark(r)
		if r.Pending() {
			t.Fatalf("row %+v still pending", r)
		}
	}
}
