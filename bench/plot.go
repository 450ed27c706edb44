package main

import (
	"errors"
	"fmt"
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// groupColors tells the families apart: grey for the machine's ceilings,
// orange for the kernel, blue for xvs.
var groupColors = map[string]color.RGBA{
	"ceiling":  {R: 0x9e, G: 0x9e, B: 0x9e, A: 0xff},
	"kernel":   {R: 0xe6, G: 0x7e, B: 0x22, A: 0xff},
	"xvs":      {R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"xvs-fast": {R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
}

var errNoCases = errors.New("no throughput cases to plot")

var legendNames = map[string]string{
	"ceiling":  "machine ceilings (XDP, AF_XDP)",
	"kernel":   "kernel (nftables DNAT, synproxy)",
	"xvs":      "xvs (userspace)",
	"xvs-fast": "xvs, XDP fast path",
}

// WritePNG draws the median delivered rate of every case as a horizontal bar,
// with the runs' min and max as error bars.
func (r *Report) WritePNG(w io.Writer) error {
	if len(r.Cases) == 0 {
		return errNoCases
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("xvs throughput: delivered Mpps, median of %d run(s), min–max bars (Linux %s, %d CPUs)",
		r.Settings.Runs, r.Machine.Kernel, r.Machine.NProc)
	p.X.Label.Text = "Mpps"
	p.X.Min = 0
	grid := plotter.NewGrid()
	grid.Horizontal.Width = 0
	p.Add(grid)
	n := len(r.Cases)
	// The first case goes on top: nominal Y positions count upwards.
	labels := make([]string, n)
	inLegend := map[string]bool{}
	// The bottom rows are the slowest (SYN), so the legend fits there.
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	xys := make(plotter.XYs, 0, n)
	errs := make(plotter.XErrors, 0, n)
	for i, c := range r.Cases {
		y := float64(n - 1 - i)
		labels[n-1-i] = c.Label()
		bar, err := plotter.NewBarChart(plotter.Values{c.Delivered.Median}, vg.Points(11))
		if err != nil {
			return err
		}
		bar.Horizontal = true
		bar.XMin = y
		bar.Color = groupColors[c.Group]
		bar.LineStyle.Width = 0
		p.Add(bar)
		if !inLegend[c.Group] {
			inLegend[c.Group] = true
			p.Legend.Add(legendNames[c.Group], bar)
		}
		if c.Delivered.N > 1 {
			xys = append(xys, plotter.XY{X: c.Delivered.Median, Y: y})
			errs = append(errs, struct{ Low, High float64 }{c.Delivered.Median - c.Delivered.Min, c.Delivered.Max - c.Delivered.Median})
		}
		value, err := plotter.NewLabels(plotter.XYLabels{
			XYs:    []plotter.XY{{X: c.Delivered.Max, Y: y}},
			Labels: []string{fmt.Sprintf(" %.2f", c.Delivered.Median)},
		})
		if err != nil {
			return err
		}
		for i := range value.TextStyle {
			value.TextStyle[i].YAlign = draw.YCenter
			value.TextStyle[i].Font.Size = vg.Points(8)
		}
		p.Add(value)
	}
	if len(xys) > 0 {
		eb := &plotter.XErrorBars{XYs: xys, XErrors: errs, LineStyle: plotter.DefaultLineStyle, CapWidth: vg.Points(6)}
		p.Add(eb)
	}
	p.NominalY(labels...)
	// Room for the value labels right of the longest bar.
	var top float64
	for _, c := range r.Cases {
		top = max(top, c.Delivered.Max)
	}
	p.X.Max = top * 1.15
	height := vg.Points(float64(60 + 16*n))
	wt, err := p.WriterTo(vg.Points(760), height, "png")
	if err != nil {
		return err
	}
	_, err = wt.WriteTo(w)
	return err
}
