// Package benchreport is the table of `make bench`: each figure of cloudfs
// beside the baselines measured in the same run (local disk, go-fuse's
// loopback example, raw S3), the ratio to each, the goal from the issues and
// whether it was met.
//
// Terms: a Row is one figure. Its Value is what cloudfs did; a Baseline is
// the same workload on something else, measured in the same run, and the
// ratio is Value / Baseline. A Goal is either absolute (at least 450 MiB/s,
// at most 3 ms) or relative to a named baseline (at least 80% of loopback,
// at most 110% of a raw GET's latency); a speed goal on a row measured in
// time compares speeds instead (Baseline / Value: at least 60% of
// loopback's speed is at most loopback's time / 0.6). A row whose cloudfs
// feature does not exist yet is NotImplemented, one whose measurement broke
// is Failed with the reason, and one the run was told not to measure is
// Skipped; none carries a number, so nothing in the table is assumed.
package benchreport

import (
	"fmt"
	"math"
	"strings"
)

// Unit is the unit of a row's value and of its baselines.
type Unit int

const (
	MiBPerSec     Unit = iota // throughput, MiB/s
	FilesPerSec               // files per second
	EntriesPerSec             // directory entries per second
	Millis                    // a latency, in milliseconds
	Seconds                   // a duration, in seconds
	Bytes                     // a size, in bytes
	Requests                  // a count of store requests
)

// HigherIsBetter reports whether a larger value of u is an improvement
// (throughput) rather than a regression (latency, time, size).
func (u Unit) HigherIsBetter() bool {
	return u == MiBPerSec || u == FilesPerSec || u == EntriesPerSec
}

// Format renders v in unit u, e.g. "512 MiB/s", "3,412 files/s", "2.41 ms",
// "1.50 MiB".
func (u Unit) Format(v float64) string {
	switch u {
	case MiBPerSec:
		return trimNumber(v) + " MiB/s"
	case FilesPerSec:
		return thousands(v) + " files/s"
	case EntriesPerSec:
		return thousands(v) + " entries/s"
	case Millis:
		return fmt.Sprintf("%.2f ms", v)
	case Seconds:
		return fmt.Sprintf("%.2f s", v)
	case Bytes:
		return FormatBytes(v)
	case Requests:
		return trimNumber(v) + " requests"
	}
	return fmt.Sprintf("%g", v)
}

// trimNumber prints v with three significant digits, at least as an integer.
func trimNumber(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return thousands(v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

// thousands prints v rounded to an integer with comma separators.
func thousands(v float64) string {
	n := int64(math.Round(v))
	neg := n < 0
	if neg {
		n = -n
	}
	s := fmt.Sprint(n)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// FormatBytes prints a size in binary units: "0 B", "812 B", "12.3 KiB",
// "1.00 MiB", "2.50 GiB".
func FormatBytes(v float64) string {
	neg := v < 0
	a := math.Abs(v)
	sign := ""
	if neg {
		sign = "-"
	}
	if a < 1024 {
		return fmt.Sprintf("%s%.0f B", sign, a)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	for i, u := range units {
		a /= 1024
		if a < 1024 || i == len(units)-1 {
			return sign + trimNumber(a) + " " + u
		}
	}
	panic("unreachable")
}

// Op is how a goal compares.
type Op int

const (
	NoGoal  Op = iota // reported only
	AtLeast           // value (or ratio) >= target
	AtMost            // value (or ratio) <= target
	Below             // value (or ratio) < target
)

// Goal is the target a row must meet. With Of empty Target is in the row's
// unit; otherwise Target is a ratio to the baseline named Of: Value /
// Baseline, or with Speed the ratio of speeds, which for a row measured in
// time (Seconds, Millis: lower is better) is Baseline / Value.
type Goal struct {
	Op     Op
	Target float64
	Of     string
	Speed  bool
}

// Min, Max and Under are absolute goals; MinRatio and MaxRatio are relative
// to a baseline (Value / Baseline at least or at most r); MinSpeedRatio is
// a speed at least r times the baseline's, for a row whose unit is a time
// (its value at most the baseline's / r).
func Min(v float64) Goal                 { return Goal{Op: AtLeast, Target: v} }
func Max(v float64) Goal                 { return Goal{Op: AtMost, Target: v} }
func Under(v float64) Goal               { return Goal{Op: Below, Target: v} }
func MinRatio(r float64, of string) Goal { return Goal{Op: AtLeast, Target: r, Of: of} }
func MaxRatio(r float64, of string) Goal { return Goal{Op: AtMost, Target: r, Of: of} }
func MinSpeedRatio(r float64, of string) Goal {
	return Goal{Op: AtLeast, Target: r, Of: of, Speed: true}
}

// Text renders the goal for a row in unit u: "≥ 450 MiB/s", "≥ 80% of
// loopback", "≤ 3.00 ms", "< 1.00 s", "speed ≥ 60% of loopback's"; "—"
// for none.
func (g Goal) Text(u Unit) string {
	var op string
	switch g.Op {
	case NoGoal:
		return "—"
	case AtLeast:
		op = "≥"
	case AtMost:
		op = "≤"
	case Below:
		op = "<"
	}
	if g.Speed {
		return fmt.Sprintf("speed %s %s%% of %s's", op, trimNumber(g.Target*100), g.Of)
	}
	if g.Of != "" {
		return fmt.Sprintf("%s %s%% of %s", op, trimNumber(g.Target*100), g.Of)
	}
	return op + " " + u.Format(g.Target)
}

// holds reports whether v meets the goal's comparison.
func (g Goal) holds(v float64) bool {
	switch g.Op {
	case AtLeast:
		return v >= g.Target
	case AtMost:
		return v <= g.Target
	case Below:
		return v < g.Target
	}
	return true
}

// Status is the result of a row.
type Status int

const (
	Info           Status = iota // measured; no goal
	Pass                         // measured and the goal is met
	Fail                         // measured and the goal is missed
	NotImplemented               // the cloudfs feature the row needs does not exist yet
	Failed                       // the measurement itself broke (Note says why)
	Skipped                      // not measured on purpose in this run (Note says why)
)

// Baseline is the same workload measured on something other than cloudfs.
type Baseline struct {
	Name  string // "local disk", "loopback", "raw S3 8-stream GET"
	Value float64
}

// Row is one figure of the report.
type Row struct {
	Figure    string
	Unit      Unit
	Value     float64 // meaningful only when Measured
	Measured  bool
	Baselines []Baseline
	Goal      Goal
	// Status is set by Evaluate for measured rows; NotImplemented and
	// Failed are set by the caller (see NA and Broken).
	Status Status
	// Method says how the figure is measured when its name does not
	// (printed below the table).
	Method string
	// Note qualifies the row: why it is n/a or broken, or something the
	// reader must know about a measured value (printed below the table).
	Note string

	goalNote string // why Evaluate could not judge the goal
}

// NA marks r as not measurable because a cloudfs feature is missing.
func (r *Row) NA(reason string) {
	r.Measured, r.Status, r.Note = false, NotImplemented, reason
}

// Skip marks r as not measured in this run on purpose (e.g. its phase was
// left out): neither a failure nor a missing feature.
func (r *Row) Skip(reason string) {
	r.Measured, r.Status, r.Note = false, Skipped, reason
}

// Broken marks r as a measurement that failed with err.
func (r *Row) Broken(err error) {
	r.Measured, r.Status, r.Note = false, Failed, err.Error()
}

// Pending reports whether nothing has been decided about r yet: not
// measured, not n/a, not broken.
func (r *Row) Pending() bool {
	return !r.Measured && r.Status == Failed && r.Note == ""
}

// Set records the measured cloudfs value and evaluates the goal.
func (r *Row) Set(v float64) {
	r.Value, r.Measured = v, true
	r.Evaluate()
}

// AddBaseline records a baseline value (measured whether or not cloudfs's
// value could be) and re-evaluates the goal.
func (r *Row) AddBaseline(name string, v float64) {
	r.Baselines = append(r.Baselines, Baseline{Name: name, Value: v})
	if r.Measured {
		r.Evaluate()
	}
}

// Baseline returns the value of the baseline named name.
func (r *Row) Baseline(name string) (float64, bool) {
	for _, b := range r.Baselines {
		if b.Name == name {
			return b.Value, true
		}
	}
	return 0, false
}

// Ratio returns Value / the baseline named name; ok is false when either
// is missing or the baseline is zero.
func (r *Row) Ratio(name string) (ratio float64, ok bool) {
	b, found := r.Baseline(name)
	if !r.Measured || !found || b == 0 {
		return 0, false
	}
	return r.Value / b, true
}

// SpeedRatio returns cloudfs's speed over the speed of the baseline named
// name: Value / Baseline for a unit where higher is better, Baseline /
// Value for a time; ok is false when either is missing or zero.
func (r *Row) SpeedRatio(name string) (ratio float64, ok bool) {
	if r.Unit.HigherIsBetter() {
		return r.Ratio(name)
	}
	b, found := r.Baseline(name)
	if !r.Measured || !found || b == 0 || r.Value == 0 {
		return 0, false
	}
	return b / r.Value, true
}

// Evaluate sets Status from Value, the baselines and the goal. A relative
// goal whose baseline is missing is Failed: the run did not measure what
// the goal needs.
func (r *Row) Evaluate() {
	if !r.Measured {
		return
	}
	r.goalNote = ""
	if r.Goal.Op == NoGoal {
		r.Status = Info
		return
	}
	v := r.Value
	if r.Goal.Of != "" {
		ratio, ok := r.Ratio(r.Goal.Of)
		if r.Goal.Speed {
			ratio, ok = r.SpeedRatio(r.Goal.Of)
		}
		if !ok {
			r.Status = Failed
			r.goalNote = fmt.Sprintf("baseline %q was not measured", r.Goal.Of)
			return
		}
		v = ratio
	}
	if r.Goal.holds(v) {
		r.Status = Pass
	} else {
		r.Status = Fail
	}
}
