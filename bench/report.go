package bench

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// WriteText writes rep as a table a person reads: one column per run, and the target's
// rate and p99 over the baseline's when there is one.
func WriteText(w io.Writer, rep *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "segd bench: %s\n", describeRun(rep.Target))
	fmt.Fprintf(&b, "  target   %s\n", rep.Target.Target)
	if rep.Baseline != nil {
		fmt.Fprintf(&b, "  %-8s %s%s\n", rep.BaselineName(), rep.Baseline.Target,
			inProcessNote(rep))
	}
	if rep.Target.Interrupted {
		b.WriteString("  interrupted: the figures cover only part of the run\n")
	}
	b.WriteString("\n")
	writeTable(&b, summaryRows(rep))
	_, err := io.WriteString(w, b.String())
	return err
}

func inProcessNote(rep *Report) string {
	if rep.InProcessEcho {
		return " (in-process fasthttp echo)"
	}
	return ""
}

// describeRun says how a run was paced, for a heading.
func describeRun(r *Result) string {
	conns := fmt.Sprintf("%d connection", r.Connections)
	if r.Connections != 1 {
		conns += "s"
	}
	pace := "closed loop, " + conns
	if r.Mode == "open" {
		pace = fmt.Sprintf("open loop at %s/s, at most %s", formatCount(float64(r.Rate)), conns)
	}
	return fmt.Sprintf("%s, %s measured after %s of warm-up", pace,
		formatSeconds(r.ElapsedS), formatSeconds(r.WarmupS))
}

// summaryRows returns the summary table: a header row, then one row per figure.
func summaryRows(rep *Report) [][]string {
	runs := []*Result{rep.Target}
	head := []string{"", "target"}
	if rep.Baseline != nil {
		runs = append(runs, rep.Baseline)
		head = append(head, rep.BaselineName(), "target/"+rep.BaselineName())
	}
	row := func(label string, cell func(*Result) string, ratio float64) []string {
		r := []string{label}
		for _, res := range runs {
			r = append(r, cell(res))
		}
		if rep.Ratio != nil {
			r = append(r, formatRatio(ratio))
		}
		return r
	}
	lat := func(f func(Latency) float64) func(*Result) string {
		return func(r *Result) string { return formatMicros(f(r.Latency)) }
	}
	var rateRatio, p99Ratio float64 = -1, -1
	if rep.Ratio != nil {
		rateRatio, p99Ratio = rep.Ratio.Rate, rep.Ratio.P99
	}
	rows := [][]string{head,
		row("requests", func(r *Result) string { return formatCount(float64(r.Requests)) }, -1),
		row("rate", func(r *Result) string { return formatCount(r.RateAchieved) + "/s" },
			rateRatio),
	}
	rows = append(rows, errorRows(runs, row)...)
	return append(rows,
		row("p50", lat(func(l Latency) float64 { return l.P50 }), -1),
		row("p90", lat(func(l Latency) float64 { return l.P90 }), -1),
		row("p99", lat(func(l Latency) float64 { return l.P99 }), p99Ratio),
		row("p99.9", lat(func(l Latency) float64 { return l.P999 }), -1),
		row("max", lat(func(l Latency) float64 { return l.Max }), -1),
		row("send lag p99", func(r *Result) string { return formatMicros(r.SendLag.P99) }, -1),
		row("enriched", func(r *Result) string {
			return strconv.FormatFloat(r.EnrichedShare*100, 'f', 1, 64) + "%"
		}, -1),
	)
}

// errorRows returns the error total and its classes; other and unsent only when any run
// has some.
func errorRows(runs []*Result,
	row func(string, func(*Result) string, float64) []string) [][]string {
	count := func(f func(Errors) int64) func(*Result) string {
		return func(r *Result) string { return formatCount(float64(f(r.Errors))) }
	}
	rows := [][]string{
		row("errors", count(Errors.Total), -1),
		row("  connect", count(func(e Errors) int64 { return e.Connect }), -1),
		row("  timeout", count(func(e Errors) int64 { return e.Timeout }), -1),
		row("  status 4xx", count(func(e Errors) int64 { return e.Status4xx }), -1),
		row("  status 5xx", count(func(e Errors) int64 { return e.Status5xx }), -1),
	}
	var other, unsent bool
	for _, r := range runs {
		other = other || r.Errors.Other > 0
		unsent = unsent || r.Errors.Unsent > 0
	}
	if other {
		rows = append(rows, row("  other", count(func(e Errors) int64 { return e.Other }), -1))
	}
	if unsent {
		rows = append(rows, row("  unsent", count(func(e Errors) int64 { return e.Unsent }), -1))
	}
	return rows
}

// writeTable writes rows with the first column aligned left and the others right.
func writeTable(b *strings.Builder, rows [][]string) {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range rows {
		var line strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i == 0 {
				line.WriteString("  " + c + pad)
			} else {
				line.WriteString("   " + pad + c)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
}

// formatMicros formats a latency in microseconds with three significant digits.
func formatMicros(us float64) string {
	switch {
	case us == 0:
		return "0"
	case us < 1000:
		return trimFloat(us) + "µs"
	case us < 1e6:
		return trimFloat(us/1e3) + "ms"
	}
	return trimFloat(us/1e6) + "s"
}

// trimFloat formats v with three significant digits, or as an integer from 100 up.
func trimFloat(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// formatCount formats a non-negative count with thousands separators, rounded.
func formatCount(v float64) string {
	s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func formatRatio(v float64) string {
	if v < 0 {
		return ""
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

// formatSeconds formats seconds to the hundredth, without trailing zeros.
func formatSeconds(s float64) string {
	return strconv.FormatFloat(math.Round(s*100)/100, 'f', -1, 64) + "s"
}

// String formats p as one progress line, such as
// "12s  sent 118,240  rate 9,980/s  errors 0  p99 1.84ms".
func (p Progress) String() string {
	phase := ""
	if p.Warmup {
		phase = " (warm-up)"
	}
	return fmt.Sprintf("%s%s  sent %s  rate %s/s  errors %s  p99 %s",
		formatSeconds(p.Elapsed.Round(time.Second).Seconds()), phase,
		formatCount(float64(p.Sent)), formatCount(p.Rate), formatCount(float64(p.Errors)),
		formatP99(p.P99))
}

func formatP99(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return formatMicros(micros(d))
}
