package report

import (
	"fmt"
	"image/color"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Chart is one line chart: a line per series.
type Chart struct {
	Name     string // file name without extension
	Scenario string // the report section it belongs to
	Title    string
	X, Y     string // axis labels
	LogX     bool   // tunnel counts 1..256 read better on a log axis
	// Fraction is a Y axis from 0 to 1 (a CDF), with the legend in the bottom right.
	Fraction bool
	Lines    []Line
}

// Line is one series of a chart.
type Line struct {
	Name string
	X, Y []float64
	// Colour picks the line's colour from a fixed palette: the lab gives each contestant
	// its own, the same in every chart.
	Colour int
	// Style tells lines of one colour apart: 0 solid, 1 dashed, 2 dotted.
	Style int
}

// palette gives each line its colour by index; the same contestant gets the same colour
// in every chart because the lab adds lines in contestant order.
var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff},
	color.RGBA{0xd6, 0x27, 0x28, 0xff},
	color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xff, 0x7f, 0x0e, 0xff},
	color.RGBA{0x94, 0x67, 0xbd, 0xff},
	color.RGBA{0x8c, 0x56, 0x4b, 0xff},
	color.RGBA{0x7f, 0x7f, 0x7f, 0xff},
	color.RGBA{0xe3, 0x77, 0xc2, 0xff},
}

// Draw writes dir/<Name>.png and dir/<Name>.svg.
func (c Chart) Draw(dir string) error {
	p := plot.New()
	p.Title.Text = c.Title
	p.X.Label.Text = c.X
	p.Y.Label.Text = c.Y
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	if c.LogX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	ymax := 0.0
	for _, l := range c.Lines {
		if len(l.X) != len(l.Y) {
			return fmt.Errorf("line %s: %d x, %d y", l.Name, len(l.X), len(l.Y))
		}
		xys := make(plotter.XYs, 0, len(l.X))
		for j := range l.X {
			if c.LogX && l.X[j] <= 0 {
				continue
			}
			xys = append(xys, plotter.XY{X: l.X[j], Y: l.Y[j]})
		}
		if len(xys) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(xys)
		if err != nil {
			return fmt.Errorf("line %s: %w", l.Name, err)
		}
		col := palette[l.Colour%len(palette)]
		line.Color = col
		line.Width = vg.Points(1.5)
		points.Color = col
		points.Shape = draw.CircleGlyph{}
		points.Radius = vg.Points(2)
		if len(xys) > 40 {
			points.Radius = 0 // a time series or a CDF: the line alone
		}
		switch l.Style {
		case 1:
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		case 2:
			line.Dashes = []vg.Length{vg.Points(1.5), vg.Points(2)}
		}
		for _, xy := range xys {
			ymax = max(ymax, xy.Y)
		}
		p.Add(line, points)
		p.Legend.Add(l.Name, line)
	}
	if c.Fraction {
		p.Y.Min, p.Y.Max = 0, 1
		p.Legend.Top, p.Legend.Left = false, false
		p.Legend.XOffs = -vg.Points(10)
		p.Legend.YOffs = vg.Points(10)
	} else {
		// Room above the highest line for the legend, which sits in the top left corner.
		p.Y.Min = min(p.Y.Min, 0)
		p.Y.Max = ymax * (1.15 + 0.07*float64(len(c.Lines)))
	}
	for _, ext := range []string{".png", ".svg"} {
		if err := p.Save(7*vg.Inch, 4*vg.Inch, filepath.Join(dir, c.Name+ext)); err != nil {
			return err
		}
	}
	return nil
}
