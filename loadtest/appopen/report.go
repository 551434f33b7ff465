package appopen

import (
	"fmt"
	"io"
	"time"
)

// Targets of the app-open figures (issue 17).
const (
	// MaxP95Ratio: the batch's P95 at most this times the slowest call's.
	MaxP95Ratio = 1.2
	// MinSaving: the five calls at least this many times the batch's bytes
	// and round trips.
	MinSaving = 3.0
)

// Verdicts are the figures against the targets.
type Verdicts struct {
	P95Ratio, BytesRatio, TripsRatio float64
	P95OK, BytesOK, TripsOK          bool
}

// Verdicts computes the ratios.
func (r *Result) Verdicts() Verdicts {
	v := Verdicts{
		P95Ratio:   float64(r.Batch.Percentile(0.95)) / float64(max(r.Slowest.Percentile(0.95), 1)),
		BytesRatio: float64(r.Five.Bytes()) / float64(max(r.Batch.Bytes(), 1)),
		TripsRatio: float64(r.Five.RoundTrips) / float64(max(r.Batch.RoundTrips, 1)),
	}
	v.P95OK, v.BytesOK, v.TripsOK = v.P95Ratio <= MaxP95Ratio, v.BytesRatio >= MinSaving, v.TripsRatio >= MinSaving
	return v
}

// OK reports whether every figure met its target.
func (v Verdicts) OK() bool { return v.P95OK && v.BytesOK && v.TripsOK }

// Write prints the figures, each form beside the references, and the
// ratios with their targets.
func (r *Result) Write(w io.Writer) {
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	fmt.Fprintf(w, "App open over a simulated link (%s), %d calls, %d runs each:\n", r.Link, len(r.Calls), len(r.Batch.Latency))
	for _, c := range r.Calls {
		fmt.Fprintf(w, "  %s\n", c)
	}
	fmt.Fprintf(w, "%-48s %8s %8s %10s %10s %6s %5s\n", "", "P50 ms", "P95 ms", "bytes up", "bytes down", "trips", "hits")
	for _, f := range []*Form{&r.Slowest, &r.Five, &r.Batch} {
		fmt.Fprintf(w, "%-48s %8.1f %8.1f %10d %10d %6d %5d\n", f.Name, ms(f.Percentile(0.5)), ms(f.Percentile(0.95)),
			f.BytesUp, f.BytesDown, f.RoundTrips, f.Hits)
	}
	v := r.Verdicts()
	pf := func(ok bool) string {
		if ok {
			return "PASS"
		}
		return "FAIL"
	}
	fmt.Fprintf(w, "batch P95 / slowest call P95:      %.2f (required <= %.1f) %s\n", v.P95Ratio, MaxP95Ratio, pf(v.P95OK))
	fmt.Fprintf(w, "five calls' bytes / batch bytes:   %.2f (required >= %.0f) %s\n", v.BytesRatio, MinSaving, pf(v.BytesOK))
	fmt.Fprintf(w, "five calls' trips / batch trips:   %.2f (required >= %.0f) %s\n", v.TripsRatio, MinSaving, pf(v.TripsOK))
	fmt.Fprintf(w, "batch P95 / five calls' P95:       %.2f\n", float64(r.Batch.Percentile(0.95))/float64(max(r.Five.Percentile(0.95), 1)))
}
