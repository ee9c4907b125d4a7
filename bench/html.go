package bench

import (
	"fmt"
	"html/template"
	"io"
	"time"
)

// Colours of the report's lines: the target's solid, the baseline's dashed in the same
// colour.
const (
	colourP50 = "#1f77b4"
	colourP99 = "#e8710a"
	colourMax = "#c5221f"
)

var pageTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<title>segd bench: {{.Target.Target}}</title>
<style>
body { font-family: sans-serif; margin: 24px 32px; color: #222; max-width: 1040px; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin-top: 28px; }
p.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; }
td, th { padding: 3px 14px; border-bottom: 1px solid #e4e4e4; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child, th:first-child { text-align: left; white-space: pre; }
p.note { color: #555; font-size: 13px; }
</style>
</head>
<body>
<h1>segd bench report</h1>
<p class="meta">{{.Pace}}. Started {{.Started}}.<br/>
target {{.Target.Target}}{{if .Baseline}}<br/>
{{.BaselineName}} {{.Baseline.Target}}
({{if .InProcessEcho}}in-process fasthttp echo, {{end}}same load){{end}}</p>
{{if .Target.Interrupted}}<p><strong>Interrupted: the figures cover only part of the run.
</strong></p>
{{end}}<table>
{{range $i, $row := .Rows}}<tr>{{range $j, $c := $row}}
{{- if eq $i 0}}<th{{if $j}} class="n"{{end}}>{{$c}}</th>
{{- else}}<td{{if $j}} class="n"{{end}}>{{$c}}</td>{{end}}{{end}}</tr>
{{end}}</table>
<h2>Latency over time</h2>
{{.Timeline}}
<p class="note">Each point covers the requests intended in one {{.Step}} interval
{{- if .Baseline}}; dashed lines are the {{.BaselineName}}{{end}}. A stall of the target
shows as a rise at the time the requests were meant to leave.</p>
<h2>Latency by percentile</h2>
{{.Curve}}
<p class="note">The horizontal axis counts nines: each step right is ten times rarer. The
last point is the maximum.</p>
<p class="note">Latency is measured from each request's intended send time, so time spent
waiting for a free connection counts. Send lag is how late the harness itself sent (a busy
pool, a late timer, a pause of the harness): every latency includes it. Failed connections
are counted as errors and not timed.</p>
</body>
</html>
`))

// page is what pageTemplate shows.
type page struct {
	*Report
	Pace     string
	Started  string
	Step     string
	Rows     [][]string
	Timeline template.HTML
	Curve    template.HTML
}

// WriteHTML writes rep as a self-contained HTML page with inline SVG charts: latency over
// time and latency by percentile. It loads nothing from elsewhere.
func WriteHTML(w io.Writer, rep *Report) error {
	p := page{
		Report:   rep,
		Pace:     describeRun(rep.Target),
		Started:  rep.Target.Started.Format(time.RFC3339),
		Step:     timelineStep(rep.Target),
		Rows:     summaryRows(rep),
		Timeline: template.HTML(timelineChart(rep).svg()),
		Curve:    template.HTML(percentileChart(rep).svg()),
	}
	if err := pageTemplate.Execute(w, p); err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	return nil
}

func timelineStep(r *Result) string {
	if len(r.Timeline) < 2 {
		return "1s"
	}
	return formatSeconds(r.Timeline[1].AtS - r.Timeline[0].AtS)
}

// timelineChart plots p50, p99 and max per interval, and the baseline's p50 and p99.
func timelineChart(rep *Report) *chart {
	c := &chart{}
	add := func(r *Result, dashed bool, who string) {
		var p50, p99, mx []point
		for _, pt := range r.Timeline {
			p50 = append(p50, point{pt.AtS, pt.P50})
			p99 = append(p99, point{pt.AtS, pt.P99})
			mx = append(mx, point{pt.AtS, pt.Max})
		}
		c.series = append(c.series,
			series{name: who + "p50", color: colourP50, dashed: dashed, pts: p50},
			series{name: who + "p99", color: colourP99, dashed: dashed, pts: p99})
		if !dashed {
			c.series = append(c.series,
				series{name: who + "max", color: colourMax, thin: true, pts: mx})
		}
	}
	add(rep.Target, false, "")
	end := lastAt(rep.Target)
	if rep.Baseline != nil {
		add(rep.Baseline, true, rep.BaselineName()+" ")
		end = max(end, lastAt(rep.Baseline))
	}
	c.x = timeAxis(end)
	c.y = latencyAxis(c.series)
	return c
}

func lastAt(r *Result) float64 {
	if len(r.Timeline) == 0 {
		return 0
	}
	return r.Timeline[len(r.Timeline)-1].AtS
}

// percentileChart plots latency against percentile, the maximum one step past the finest
// percentile.
func percentileChart(rep *Report) *chart {
	c := &chart{}
	end := 0.0
	add := func(r *Result, dashed bool, name, colour string) {
		s := series{name: name, color: colour, dashed: dashed}
		for i, cp := range r.Percentiles {
			x := 0.0
			if cp.Percentile < 100 {
				x = nines(cp.Percentile)
			} else if i > 0 {
				x = s.pts[i-1].x + curveStep
			}
			s.pts = append(s.pts, point{x, cp.Latency})
			end = max(end, x)
		}
		c.series = append(c.series, s)
	}
	add(rep.Target, false, "target", colourP99)
	if rep.Baseline != nil {
		add(rep.Baseline, true, rep.BaselineName(), colourP50)
	}
	c.x = ninesAxis(end)
	c.y = latencyAxis(c.series)
	return c
}
