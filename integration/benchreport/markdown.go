package benchreport

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Report is one run of the benchmark: what ran where, and its rows.
type Report struct {
	Title string
	Time  time.Time // when the run started
	Host  string
	// Setup lines are printed as a list above the table: the remote used,
	// the sizes, the baselines, the machine.
	Setup []string
	Rows  []*Row
	// Appendix is printed verbatim (in a code block) after the table, under
	// AppendixTitle; e.g. the output of the hot-function Go benchmarks.
	AppendixTitle string
	Appendix      string
}

// Add appends a row with the figure's name, unit and goal and returns it
// for the measurement to fill in. Until it is, the row renders as not
// measured.
func (r *Report) Add(figure string, u Unit, g Goal) *Row {
	row := &Row{Figure: figure, Unit: u, Goal: g, Status: Failed}
	r.Rows = append(r.Rows, row)
	return row
}

// Counts returns how many rows have each status.
func (r *Report) Counts() map[Status]int {
	c := make(map[Status]int)
	for _, row := range r.Rows {
		c[row.Status]++
	}
	return c
}

// Summary is one line: "7 pass, 2 FAIL, 3 n/a (not implemented), 1 broken,
// 4 reported without a goal", and ", 5 skipped" when rows were skipped.
func (r *Report) Summary() string {
	c := r.Counts()
	s := fmt.Sprintf("%d pass, %d FAIL, %d n/a (not implemented), %d broken, %d reported without a goal",
		c[Pass], c[Fail], c[NotImplemented], c[Failed], c[Info])
	if c[Skipped] > 0 {
		s += fmt.Sprintf(", %d skipped", c[Skipped])
	}
	return s
}

// Table renders the rows as one markdown table: figure, cloudfs value,
// baselines, ratio to each baseline, goal, result. The ratio is Value /
// Baseline, except in a row with a speed goal, where it is the ratio of
// speeds ("speed 0.71× loopback").
func (r *Report) Table() string {
	var b strings.Builder
	b.WriteString("| Figure | cloudfs | Baseline(s) | Ratio | Goal | Result |\n")
	b.WriteString("|---|---:|---|---|---|---|\n")
	for _, row := range r.Rows {
		value := "n/a"
		if row.Measured {
			value = row.Unit.Format(row.Value)
		}
		var bases, ratios []string
		for _, base := range row.Baselines {
			bases = append(bases, fmt.Sprintf("%s %s", base.Name, row.Unit.Format(base.Value)))
			if row.Goal.Speed {
				if ratio, ok := row.SpeedRatio(base.Name); ok {
					ratios = append(ratios, fmt.Sprintf("speed %.2f× %s", ratio, base.Name))
				}
			} else if ratio, ok := row.Ratio(base.Name); ok {
				ratios = append(ratios, fmt.Sprintf("%.2f× %s", ratio, base.Name))
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n",
			cell(row.Figure), cell(value), cell(orDash(strings.Join(bases, "; "))),
			cell(orDash(strings.Join(ratios, "; "))), cell(row.Goal.Text(row.Unit)), cell(row.result()))
	}
	return b.String()
}

// result is the Result cell.
func (row *Row) result() string {
	switch row.Status {
	case Pass:
		return "pass"
	case Fail:
		return "**FAIL**"
	case NotImplemented:
		return "n/a (not implemented: " + row.Note + ")"
	case Skipped:
		return "n/a (" + row.Note + ")"
	case Failed:
		reason := row.Note
		if row.Measured {
			reason = row.goalNote
		}
		if reason == "" {
			reason = "not measured (an earlier step failed)"
		}
		return "**broken**: " + reason
	}
	return "—"
}

// Markdown renders the whole report: title, setup, table, each row's
// method and the notes on measured rows, summary and the appendix.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	fmt.Fprintf(&b, "- run: %s on %s\n", r.Time.Format(time.RFC3339), r.Host)
	for _, s := range r.Setup {
		fmt.Fprintf(&b, "- %s\n", s)
	}
	b.WriteString("\n")
	b.WriteString(r.Table())
	var notes []string
	for _, row := range r.Rows {
		var parts []string
		if row.Method != "" {
			parts = append(parts, row.Method)
		}
		if row.Measured && row.Note != "" {
			parts = append(parts, row.Note)
		}
		if len(parts) > 0 {
			notes = append(notes, fmt.Sprintf("- %s: %s", row.Figure, strings.Join(parts, "; ")))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\nHow the figures are measured:\n\n")
		b.WriteString(strings.Join(notes, "\n"))
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "\nSummary: %s.\n", r.Summary())
	if r.Appendix != "" {
		fmt.Fprintf(&b, "\n## %s\n\n```\n%s\n```\n", r.AppendixTitle, strings.TrimRight(r.Appendix, "\n"))
	}
	return b.String()
}

var unsafeHost = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// FileName is the report's file name under the results directory:
// "<date>-<host>.md", e.g. "2026-11-24-build1.md".
func (r *Report) FileName() string {
	host := unsafeHost.ReplaceAllString(r.Host, "-")
	if host == "" {
		host = "unknown"
	}
	return r.Time.Format("2006-01-02") + "-" + host + ".md"
}

// Write stores the report in dir (created if missing) as FileName and as
// latest.md, each replaced atomically (a temporary file renamed over it),
// and returns the path of the first.
func (r *Report) Write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("results dir: %w", err)
	}
	text := []byte(r.Markdown())
	path := filepath.Join(dir, r.FileName())
	for _, p := range []string{path, filepath.Join(dir, "latest.md")} {
		if err := writeAtomic(p, text); err != nil {
			return "", err
		}
	}
	return path, nil
}

func writeAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// cell makes s safe inside a table cell: pipes escaped, newlines folded.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}
