package nstest

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// report is the campaign's table: per fault kind, how many, the failover
// time (fault to the first request answered by the new holder) median and
// p99, the requests lost per fault, and the invariant violations in its
// spans (all must be 0). The timing is reported, not asserted.
func report(faults []fault, v verdict, rec recording, took time.Duration, seed uint64) string {
	per := attribute(v, faults)
	var kinds []string
	for _, f := range faults {
		if !slices.Contains(kinds, f.kind) {
			kinds = append(kinds, f.kind)
		}
	}
	slices.SortStableFunc(kinds, func(a, b string) int { return slices.Index(allKinds, a) - slices.Index(allKinds, b) })
	var b strings.Builder
	unknown := 0
	for _, tr := range rec.truths {
		if len(tr.unknown) > 0 {
			unknown++
		}
	}
	fmt.Fprintf(&b, "%d faults in %s (seed %d); %d client requests, %d ARP probes, %d ground-truth samples (%d unreadable), %d arping -D runs\n",
		len(faults), took.Round(time.Second), seed, len(rec.answers), len(rec.probes), len(rec.truths), unknown, rec.arpings)
	fmt.Fprintf(&b, "%-22s %5s %5s %9s %9s %9s %9s %9s %7s %7s %7s %7s\n", "fault", "count", "moved",
		"fo-median", "fo-p99", "fo-max", "lost-med", "lost-max", "dualARP", "dualTru", "nonHold", "arpDup")
	total := counts{}
	for _, k := range kinds {
		var fo []time.Duration
		var lost []int
		c := counts{}
		n, moved := 0, 0
		for i, f := range faults {
			if f.kind != k {
				continue
			}
			n++
			lost = append(lost, f.lost)
			if f.moved {
				moved++
				fo = append(fo, f.failover)
			}
			if x := per[i]; x != nil {
				c.add(*x)
			}
		}
		total.add(c)
		fmt.Fprintf(&b, "%-22s %5d %5d %9s %9s %9s %9s %9s %7d %7d %7d %7d\n", k, n, moved,
			ms(quantile(fo, 0.5)), ms(quantile(fo, 0.99)), ms(quantile(fo, 1)),
			intQ(lost, 0.5), intQ(lost, 1), c.dualARP, c.dualHolder, c.nonHolder, c.arpingDup)
	}
	if x := per[-1]; x != nil {
		fmt.Fprintf(&b, "%-22s %5s %5s %9s %9s %9s %9s %9s %7d %7d %7d %7d\n", "(before the first)", "", "", "", "", "", "", "",
			x.dualARP, x.dualHolder, x.nonHolder, x.arpingDup)
		total.add(*x)
	}
	fmt.Fprintf(&b, "%-22s %5d %5s %9s %9s %9s %9s %9s %7d %7d %7d %7d\n", "total", len(faults), "", "", "", "", "", "",
		total.dualARP, total.dualHolder, total.nonHolder, total.arpingDup)
	b.WriteString("fo = failover, fault to the first answer from the new holder, in ms; lost = client requests failed per fault\n" +
		"(poll every 25 ms, 300 ms timeout, new connection each); dualARP = ARP requests answered by two MACs; dualTru = ground-truth\n" +
		"samples with two holders; nonHold = answers from a node holding the VIP in no sample within ~20 ms; arpDup = arping duplicates.\n")
	return b.String()
}

func (c *counts) add(o counts) {
	c.dualARP += o.dualARP
	c.dualHolder += o.dualHolder
	c.nonHolder += o.nonHolder
	c.arpingDup += o.arpingDup
}

// quantile is the nearest-rank quantile q of ds, or -1 for none.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return -1
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func intQ(xs []int, q float64) string {
	if len(xs) == 0 {
		return "-"
	}
	ds := make([]time.Duration, len(xs))
	for i, x := range xs {
		ds[i] = time.Duration(x)
	}
	return fmt.Sprint(int(quantile(ds, q)))
}

func ms(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return fmt.Sprint(d.Milliseconds())
}

var truncateReport sync.Once

// writeReport adds a test's report to HALO_NSTEST_REPORT, if set: the
// first report of the run replaces what the file had.
func writeReport(title, text string) error {
	p := os.Getenv("HALO_NSTEST_REPORT")
	if p == "" {
		return nil
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	truncateReport.Do(func() { flags |= os.O_TRUNC })
	f, err := os.OpenFile(p, flags, 0o644)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "== %s\n%s\n", title, text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
