package gc

import (
	"encoding/json"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/spark-edge/spark/caddymodule/internal/caddytest"
)

func gcPercent() uint64 {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func config(admin int, option string) string {
	return caddytest.GlobalOptions(admin, option) + `
http://127.0.0.1:0 {
	respond "ok"
}
`
}

// Loaded from a Caddyfile, the app lowers the GC percent while a
// pointer-free arena is most of the heap, keeps pacing across a reload,
// and gives the percent back when the config without it replaces it.
func TestAppPacesAndGivesBack(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	before := gcPercent()
	arena := make([]byte, 256<<20) // pointer-free, never touched
	ports := caddytest.LoadOnFreePorts(t, 1, func(p []int) string {
		return config(p[0], "spark_gc {\n\t\tmin_headroom 4MiB\n\t}\n")
	})
	lowered := func() bool {
		for range 100 {
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
			if gcPercent() < before {
				return true
			}
		}
		return false
	}
	if !lowered() {
		t.Fatalf("GC percent still %d with a 256 MiB arena", gcPercent())
	}
	caddytest.Load(t, config(ports[0], "spark_gc {\n\t\tmin_headroom 8MiB\n\t\tpercent 50\n\t}\n"))
	if !lowered() {
		t.Fatalf("after a reload the GC percent is %d", gcPercent())
	}
	caddytest.Load(t, config(ports[0], ""))
	if got := gcPercent(); got != before {
		t.Fatalf("without spark_gc the percent is %d, want %d back", got, before)
	}
	runtime.KeepAlive(arena)
}

// With GOGC in the environment the app leaves the runtime alone.
func TestAppStandsAsideForGOGC(t *testing.T) {
	t.Setenv("GOGC", "100")
	before := gcPercent()
	arena := make([]byte, 256<<20)
	caddytest.LoadOnFreePorts(t, 1, func(p []int) string { return config(p[0], "spark_gc\n") })
	for range 5 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := gcPercent(); got != before {
		t.Fatalf("GOGC set, yet the percent moved to %d", got)
	}
	runtime.KeepAlive(arena)
}

func TestCaddyfile(t *testing.T) {
	cfg := caddytest.Adapt(t, config(2999, "spark_gc {\n\t\tpercent 80\n\t\tmin_headroom 32MiB\n\t}\n"))
	var c struct {
		Apps map[string]json.RawMessage `json:"apps"`
	}
	if err := json.Unmarshal(cfg, &c); err != nil {
		t.Fatal(err)
	}
	var a App
	if err := json.Unmarshal(c.Apps[AppID], &a); err != nil {
		t.Fatalf("%s: %v (%s)", AppID, err, cfg)
	}
	if a.Percent != 80 || a.MinHeadroom != 32<<20 {
		t.Fatalf("got %+v", a)
	}
	for _, bad := range []string{"spark_gc {\n\t\tpercent 0\n\t}\n", "spark_gc {\n\t\tmin_headroom 1KiB\n\t}\n",
		"spark_gc {\n\t\tburst 3\n\t}\n", "spark_gc on\n", "spark_gc\n\tspark_gc\n"} {
		_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(config(2999, bad)), map[string]any{"filename": "Caddyfile"})
		if err == nil {
			t.Errorf("accepted:\n%s", bad)
		} else if !strings.Contains(err.Error(), "spark_gc") && !strings.Contains(err.Error(), "argument") {
			t.Errorf("%s: error does not say what: %v", bad, err)
		}
	}
}
