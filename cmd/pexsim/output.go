package main

import (
	"encoding/csv"
	"fmt"
	"image/color"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/pexnet/pex/sim"
)

type row struct {
	label string
	get   func(*sim.Result) float64
	unit  string // formatting: "r" rounds, "s" seconds, "n" count, "x" ratio
}

func rows() []row {
	var rs []row
	for i, th := range sim.Thresholds {
		pct := fmt.Sprintf("%d%%", int(th*100))
		rs = append(rs,
			row{"average node knows " + pct + ": rounds", func(r *sim.Result) float64 { return r.Avg[i].Rounds }, "r"},
			row{"average node knows " + pct + ": sim seconds", func(r *sim.Result) float64 { return r.Avg[i].SimSeconds }, "s"},
			row{"average node knows " + pct + ": addresses received", func(r *sim.Result) float64 { return r.Avg[i].Addresses }, "n"},
			row{"worst node knows " + pct + ": rounds", func(r *sim.Result) float64 { return r.Worst[i].Rounds }, "r"},
			row{"worst node knows " + pct + ": sim seconds", func(r *sim.Result) float64 { return r.Worst[i].SimSeconds }, "s"},
			row{"99th-percentile node knows " + pct + ": rounds", func(r *sim.Result) float64 { return r.P99[i].Rounds }, "r"},
			row{"99th-percentile node knows " + pct + ": sim seconds", func(r *sim.Result) float64 { return r.P99[i].SimSeconds }, "s"},
		)
	}
	rs = append(rs,
		row{"requests sent per node", func(r *sim.Result) float64 { return r.RequestsPerNode }, "n"},
		row{"addresses received per node", func(r *sim.Result) float64 { return r.AddressesPerNode }, "n"},
		row{"  ... against the minimum", func(r *sim.Result) float64 {
			return r.AddressesPerNode / float64(r.MinAddressesPerNode)
		}, "x"},
		row{"bytes received per node", func(r *sim.Result) float64 { return r.BytesPerNode }, "n"},
		row{"  ... against the minimum (60 B/address)", func(r *sim.Result) float64 {
			return r.BytesPerNode / float64(r.MinBytesPerNode)
		}, "x"},
		row{"network size estimate", func(r *sim.Result) float64 { return r.SizeEstimate }, "n"},
		row{"network size, truth", func(r *sim.Result) float64 { return float64(r.TrueSize) }, "n"},
		row{"simulated seconds", func(r *sim.Result) float64 { return r.SimSeconds }, "s"},
		row{"wall seconds", func(r *sim.Result) float64 { return r.WallSeconds }, "s"},
		row{"peak heap MB", func(r *sim.Result) float64 { return r.PeakHeapMB }, "n"},
	)
	return rs
}

func format(v float64, unit string) string {
	if v < 0 {
		return "never"
	}
	switch unit {
	case "r":
		return strconv.FormatFloat(v, 'f', 1, 64)
	case "s":
		return strconv.FormatFloat(v, 'f', 1, 64)
	case "x":
		return strconv.FormatFloat(v, 'f', 2, 64) + "x"
	}
	if v >= 100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func printTable(w io.Writer, ours, base *sim.Result) {
	fmt.Fprintf(w, "\nscenario %s, %d nodes, seed %d, measured over %d node(s)", ours.Scenario, ours.Nodes, ours.Seed, ours.Measured)
	if ours.HealSimSeconds >= 0 {
		fmt.Fprintf(w, ", partition healed at %.1fs", ours.HealSimSeconds)
	}
	if ours.FullDiscoverySeconds >= 0 {
		fmt.Fprintf(w, ", every book full at %.3fs after %d requests (pexrace's figures)", ours.FullDiscoverySeconds, ours.FullDiscoveryRequests)
	}
	fmt.Fprintln(w)
	// Columns: ours, then the baseline (-compare) or, under attack, the
	// same honest nodes without it; the ratio of the first two.
	names, cols := []string{"pex"}, []*sim.Result{ours}
	switch {
	case base != nil:
		names, cols = append(names, "baseline"), append(cols, base)
	case ours.Reference != nil:
		names, cols = append(names, "no attack"), append(cols, ours.Reference)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := "\t" + strings.Join(names, "\t") + "\t"
	if len(cols) == 2 {
		head += names[0] + "/" + names[1] + "\t"
	}
	fmt.Fprintln(tw, head)
	for _, r := range rows() {
		line := r.label + "\t"
		for _, c := range cols {
			line += format(r.get(c), r.unit) + "\t"
		}
		if len(cols) == 2 {
			v, b := r.get(cols[0]), r.get(cols[1])
			ratio := "-"
			if v >= 0 && b > 0 {
				ratio = strconv.FormatFloat(v/b, 'f', 2, 64)
			}
			line += ratio + "\t"
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	for i, c := range cols {
		if c.Reference == nil {
			continue
		}
		fmt.Fprintf(w, "\n%s under attack by %d of %d nodes (%s):\n", names[i], c.Attackers, c.Nodes, attackKind(c))
		end := c.Curve[len(c.Curve)-1]
		fmt.Fprintf(w, "  honest network known at the end %.2f%% by the average node, %.2f%% by the worst\n", 100*end.Avg, 100*end.Min)
		fmt.Fprintf(w, "  attacker share in honest books  %.1f%%\n", 100*c.AttackerShareInBooks)
		fmt.Fprintf(w, "  ... at most, after the first min %.1f%% (30 s samples)\n", 100*c.MaxAttackerShareInBooks)
		fmt.Fprintf(w, "  honest nodes, outbound only to attackers  %d at the end, %d at most (30 s samples)\n", c.OutboundEclipsedNodes, c.MaxEclipsedNodes)
		fmt.Fprintf(w, "  honest nodes, all links to attackers      %d at the end, %d at most (30 s samples), %d at most at any second (at %.0fs)\n", c.EclipsedNodes, c.MaxFullyEclipsedNodes, c.EclipsedNodesMax, c.EclipsedMaxSimSeconds)
		fmt.Fprintf(w, "  honest network the worst node holds true addresses of  %.2f%%\n", 100*c.HonestWorstKnown)
		fmt.Fprintf(w, "  honest dials to spoofed addresses  %.1f%%; honest nodes censored by spoofs %d\n", 100*c.SpoofDialShare, c.CensoredNodes)
		fmt.Fprintf(w, "  peer errors per honest node     %.1f\n", c.PeerErrorsPerNode)
	}
	printLegend(w, ours)
	printVerdict(w, ours)
}

// attackKind describes the attack's options.
func attackKind(r *sim.Result) string {
	where := "66.0.0.0/16"
	if r.Groups > 1 {
		where = fmt.Sprintf("%d /16s of 66.0.0.0/8", r.Groups)
	}
	if r.CycleIdentities {
		where += ", cycling identities"
	}
	if r.Spoof {
		where += ", spoofing IDs"
	}
	if !r.Junk {
		where += ", no junk"
	}
	return where
}

func writeCSV(path string, ours, base *sim.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write([]string{"policy", "sim_seconds", "avg_coverage", "min_coverage"})
	for _, r := range []*sim.Result{ours, base} {
		if r == nil {
			continue
		}
		for _, p := range r.Curve {
			_ = w.Write([]string{r.Policy,
				strconv.FormatFloat(p.SimSeconds, 'f', 3, 64),
				strconv.FormatFloat(p.Avg, 'f', 5, 64),
				strconv.FormatFloat(p.Min, 'f', 5, 64)})
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writePlot(path string, ours, base *sim.Result) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("pexsim: %s, %d nodes, seed %d", ours.Scenario, ours.Nodes, ours.Seed)
	p.X.Label.Text = "simulated seconds (log scale)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Label.Text = "share of the network known"
	p.Y.Min, p.Y.Max = 0, 1.02
	p.Add(plotter.NewGrid())
	add := func(r *sim.Result, c color.Color) error {
		var avg, lo plotter.XYs
		for _, pt := range r.Curve {
			if pt.SimSeconds <= 0 {
				continue // no place on a log scale
			}
			avg = append(avg, plotter.XY{X: pt.SimSeconds, Y: pt.Avg})
			lo = append(lo, plotter.XY{X: pt.SimSeconds, Y: pt.Min})
		}
		la, err := plotter.NewLine(avg)
		if err != nil {
			return err
		}
		la.Color, la.Width = c, vg.Points(1.5)
		lw, err := plotter.NewLine(lo)
		if err != nil {
			return err
		}
		lw.Color, lw.Width = c, vg.Points(1)
		lw.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(la, lw)
		p.Legend.Add(r.Policy+" average node", la)
		p.Legend.Add(r.Policy+" worst node", lw)
		return nil
	}
	if err := add(ours, color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}); err != nil {
		return err
	}
	if base != nil {
		if err := add(base, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}); err != nil {
			return err
		}
	}
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.XOffs = -vg.Points(5)
	p.Legend.YOffs = vg.Points(5)
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}
