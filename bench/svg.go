package bench

import (
	"fmt"
	"html"
	"math"
	"strconv"
	"strings"
)

// Size of a chart and its plot area, in SVG user units.
const (
	chartW, chartH = 1000, 360
	plotL, plotR   = 80, 950
	plotT, plotB   = 40, 310
)

// chart is a line chart with a linear x axis and a logarithmic latency axis.
type chart struct {
	x, y   axis
	series []series
}

type axis struct {
	label  string
	lo, hi float64
	log    bool
	ticks  []tick
}

type tick struct {
	at    float64
	label string
}

type series struct {
	name   string
	color  string
	dashed bool
	thin   bool
	pts    []point
}

type point struct{ x, y float64 }

// pos maps v onto the pixel range [a, b] of the axis.
func (ax axis) pos(v, a, b float64) float64 {
	lo, hi := ax.lo, ax.hi
	if ax.log {
		v, lo, hi = math.Log10(v), math.Log10(lo), math.Log10(hi)
	}
	if hi == lo {
		return a
	}
	return a + (v-lo)/(hi-lo)*(b-a)
}

// svg renders the chart as an SVG element.
func (c *chart) svg() string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" `+
		`viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`,
		chartW, chartH, chartW, chartH)
	b.WriteString("\n")
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#fbfbfb" `+
		`stroke="#999"/>`+"\n", plotL, plotT, plotR-plotL, plotB-plotT)
	c.gridX(&b)
	c.gridY(&b)
	for _, s := range c.series {
		c.line(&b, s)
	}
	c.legend(&b)
	b.WriteString("</svg>")
	return b.String()
}

func (c *chart) gridX(b *strings.Builder) {
	for _, t := range c.x.ticks {
		x := c.x.pos(t.at, plotL, plotR)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n",
			x, plotT, x, plotB)
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n",
			x, plotB+18, html.EscapeString(t.label))
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n",
		(plotL+plotR)/2, plotB+42, html.EscapeString(c.x.label))
}

func (c *chart) gridY(b *strings.Builder) {
	for _, t := range c.y.ticks {
		y := c.y.pos(t.at, plotB, plotT)
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n",
			plotL, y, plotR, y)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			plotL-6, y+4, html.EscapeString(t.label))
	}
	fmt.Fprintf(b, `<text x="18" y="%d" text-anchor="middle" `+
		`transform="rotate(-90 18 %d)">%s</text>`+"\n",
		(plotT+plotB)/2, (plotT+plotB)/2, html.EscapeString(c.y.label))
}

// line draws a series; points that a log axis cannot show (zero) are left out.
func (c *chart) line(b *strings.Builder, s series) {
	var pts []string
	for _, p := range s.pts {
		if c.y.log && p.y <= 0 {
			continue
		}
		pts = append(pts, fmt.Sprintf("%.1f,%.1f",
			c.x.pos(p.x, plotL, plotR), c.y.pos(p.y, plotB, plotT)))
	}
	if len(pts) == 0 {
		return
	}
	width, dash := "2", ""
	if s.thin {
		width = "1"
	}
	if s.dashed {
		dash = ` stroke-dasharray="6 4"`
	}
	fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="%s"%s points="%s">`+
		`<title>%s</title></polyline>`+"\n", s.color, width, dash, strings.Join(pts, " "),
		html.EscapeString(s.name))
	if len(pts) <= 40 {
		for _, p := range pts {
			x, y, _ := strings.Cut(p, ",")
			fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`+"\n", x, y, s.color)
		}
	}
}

func (c *chart) legend(b *strings.Builder) {
	x := float64(plotL)
	for _, s := range c.series {
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(b, `<line x1="%.0f" y1="20" x2="%.0f" y2="20" stroke="%s" `+
			`stroke-width="2"%s/>`+"\n", x, x+24, s.color, dash)
		fmt.Fprintf(b, `<text x="%.0f" y="24">%s</text>`+"\n", x+30,
			html.EscapeString(s.name))
		x += 40 + 7*float64(len(s.name))
	}
}

// latencyAxis returns a log axis in microseconds that covers every y of ss, with ticks
// at 1, 2 and 5 times powers of ten, or at powers of ten alone for wide ranges.
func latencyAxis(ss []series) axis {
	lo, hi := math.Inf(1), 0.0
	for _, s := range ss {
		for _, p := range s.pts {
			if p.y > 0 {
				lo, hi = min(lo, p.y), max(hi, p.y)
			}
		}
	}
	if hi == 0 {
		lo, hi = 1, 1000
	}
	steps := []float64{1, 2, 5}
	if math.Log10(hi/lo) > 4 {
		steps = []float64{1}
	}
	ax := axis{label: "latency", log: true}
	for e := math.Floor(math.Log10(lo)); ; e++ {
		for _, m := range steps {
			v := m * math.Pow(10, e)
			if v <= lo {
				ax.ticks, ax.lo = ax.ticks[:0], v
			}
			ax.ticks = append(ax.ticks, tick{v, formatTick(v)})
			if v >= hi {
				ax.hi = v
				return ax
			}
		}
	}
}

// formatTick formats a round latency in microseconds as briefly as it goes: 50µs, 2ms.
func formatTick(us float64) string {
	unit, div := "µs", 1.0
	switch {
	case us >= 1e6:
		unit, div = "s", 1e6
	case us >= 1e3:
		unit, div = "ms", 1e3
	}
	return strconv.FormatFloat(us/div, 'g', -1, 64) + unit
}

// timeAxis returns a linear axis from 0 to end seconds with about eight ticks.
func timeAxis(end float64) axis {
	end = max(end, 1)
	step := niceStep(end / 8)
	ax := axis{label: "seconds since the warm-up ended (intended send time)", lo: 0,
		hi: math.Ceil(end/step) * step}
	for v := 0.0; v <= ax.hi+step/2; v += step {
		ax.ticks = append(ax.ticks, tick{v, strconv.FormatFloat(v, 'f', -1, 64)})
	}
	return ax
}

// niceStep returns the smallest of 1, 2 and 5 times a power of ten that is at least v.
func niceStep(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// ninesAxis returns the percentile axis: x is the number of nines, -log10(1 - p/100),
// with a tick at each whole nine.
func ninesAxis(end float64) axis {
	ax := axis{label: "percentile", lo: 0, hi: max(math.Ceil(end), 2)}
	for k := 0.0; k <= ax.hi; k++ {
		ax.ticks = append(ax.ticks, tick{k, ninesLabel(int(k))})
	}
	return ax
}

func ninesLabel(k int) string {
	switch k {
	case 0:
		return "0%"
	case 1:
		return "90%"
	case 2:
		return "99%"
	}
	return "99." + strings.Repeat("9", k-2) + "%"
}

// nines returns -log10(1 - p/100) for a percentile p below 100.
func nines(p float64) float64 { return -math.Log10(1 - p/100) }
