package promreg

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterTakesTheExisting(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "x_total", Help: "x"}
	first, err := Register(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatal(err)
	}
	again, err := Register(reg, prometheus.NewCounter(opts))
	if err != nil || again != first {
		t.Fatalf("second registration: %v, same collector %v", err, again == first)
	}
	if _, err := Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_total", Help: "x"})); err == nil {
		t.Error("a gauge taken for the counter of the same name")
	}
}

func TestSetTakesTheExistingAndKeepsTheFirstError(t *testing.T) {
	reg := prometheus.NewRegistry()
	first := NewSet(reg)
	c := first.Counter("a_total", "a")
	v := first.CounterVec("b_total", "b", "result")
	h := first.Histogram("c_seconds", "c", []float64{1, 2})
	if err := first.Err(); err != nil {
		t.Fatal(err)
	}
	again := NewSet(reg)
	if got := again.Counter("a_total", "a"); got != c {
		t.Error("a second set registered a new counter instead of taking the existing one")
	}
	if got := again.CounterVec("b_total", "b", "result"); got != v {
		t.Error("a second set registered a new counter vector instead of taking the existing one")
	}
	if got := again.Histogram("c_seconds", "c", []float64{1, 2}); got != h {
		t.Error("a second set registered a new histogram instead of taking the existing one")
	}
	if err := again.Err(); err != nil {
		t.Fatal(err)
	}

	clash := NewSet(reg)
	clash.Counter("d_total", "d")
	if got := clash.Counter("a_total", "other help"); got == nil || got == c {
		t.Errorf("a clashing registration returned %v: want a new, usable counter", got)
	}
	late := clash.Counter("e_total", "e")
	late.Inc() // usable although not registered
	err := clash.Err()
	if err == nil || !strings.Contains(err.Error(), "a_total") {
		t.Fatalf("Err() = %v, want the failure of a_total", err)
	}
	families, _ := reg.Gather()
	for _, f := range families {
		if f.GetName() == "e_total" {
			t.Error("a collector registered after the first failure")
		}
	}
}
