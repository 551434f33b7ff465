package caddyargs

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// read runs Read on the one option in line, with the given setters.
func read(t *testing.T, line string, required int, setters ...Setter) error {
	t.Helper()
	d := caddyfile.NewTestDispenser(line)
	d.Next()
	return Read(d, required, setters...)
}

func TestReadSetsEachArgument(t *testing.T) {
	var (
		s  string
		n  int
		f  float64
		sz int64
		du caddy.Duration
	)
	err := read(t, "opt name 7 2.5 64KiB 1m30s", 5,
		String(&s), Int(&n, 1), Float(&f, 0, 10), Size(&sz, 1, 1<<20), Duration(&du, time.Second, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if s != "name" || n != 7 || f != 2.5 || sz != 64<<10 || du != caddy.Duration(90*time.Second) {
		t.Fatalf("got %q %d %g %d %v", s, n, f, sz, time.Duration(du))
	}
	// Optional arguments stay unset when absent.
	n = 0
	if err := read(t, "opt x", 1, String(&s), Int(&n, 1)); err != nil || s != "x" || n != 0 {
		t.Fatalf("optional: %v %q %d", err, s, n)
	}
}

func TestReadRefusesWithTheOptionsName(t *testing.T) {
	var (
		s   string
		n   int
		n64 int64
		f   float64
		sz  int64
		du  caddy.Duration
	)
	for _, c := range []struct {
		line    string
		setters []Setter
	}{
		{"opt", []Setter{String(&s)}},                                   // too few
		{"opt a b", []Setter{String(&s)}},                               // too many
		{"opt 0", []Setter{Int(&n, 1)}},                                 // below lo
		{"opt x", []Setter{Int(&n, 0)}},                                 // not a number
		{"opt -1", []Setter{Int64(&n64, 0)}},                            // below lo
		{"opt 1e3", []Setter{Int64(&n64, 0)}},                           // not decimal
		{"opt 0", []Setter{Float(&f, 0, 1)}},                            // lo is excluded
		{"opt 2", []Setter{Float(&f, 0, 1)}},                            // above hi
		{"opt NaN", []Setter{Float(&f, 0, 1)}},                          // not in range
		{"opt 0", []Setter{Size(&sz, 1, 100)}},                          // below lo
		{"opt 1KiB", []Setter{Size(&sz, 1, 100)}},                       // above hi
		{"opt lots", []Setter{Size(&sz, 1, 100)}},                       // not a size
		{"opt 0s", []Setter{Duration(&du, time.Nanosecond, time.Hour)}}, // below lo
		{"opt 2h", []Setter{Duration(&du, time.Nanosecond, time.Hour)}}, // above hi
		{"opt -1s", []Setter{Duration(&du, 0, time.Hour)}},              // negative
		{"opt 99999999999d", []Setter{Duration(&du, 0, 1<<62)}},         // would wrap
	} {
		err := read(t, c.line, 1, c.setters...)
		if err == nil {
			t.Errorf("%q: no error", c.line)
			continue
		}
		if !strings.HasPrefix(err.Error(), "opt: ") && !strings.Contains(err.Error(), "argument") {
			t.Errorf("%q: error %q names neither the option nor the arguments", c.line, err)
		}
	}
}

func TestOnOff(t *testing.T) {
	for _, c := range []struct {
		line string
		want bool
		err  bool
	}{
		{"opt", true, false},
		{"opt on", true, false},
		{"opt true", true, false},
		{"opt off", false, false},
		{"opt false", false, false},
		{"opt maybe", false, true},
		{"opt on off", false, true},
	} {
		d := caddyfile.NewTestDispenser(c.line)
		d.Next()
		got, err := OnOff(d)
		if (err != nil) != c.err || (err == nil && got != c.want) {
			t.Errorf("%q: got %v, %v; want %v (error: %v)", c.line, got, err, c.want, c.err)
		}
		if err != nil && !strings.Contains(err.Error(), "opt") && !strings.Contains(err.Error(), "argument") {
			t.Errorf("%q: error %q names neither the option nor the arguments", c.line, err)
		}
	}
}

func TestList(t *testing.T) {
	d := caddyfile.NewTestDispenser("opt a b")
	d.Next()
	if got, err := List(d); err != nil || strings.Join(got, " ") != "a b" {
		t.Fatalf("got %q, %v", got, err)
	}
	d = caddyfile.NewTestDispenser("opt")
	d.Next()
	if _, err := List(d); err == nil {
		t.Fatal("no arguments: no error")
	}
}

func TestBlockCallsOptionAtEachOption(t *testing.T) {
	var seen []string
	d := caddyfile.NewTestDispenser("dir {\n\ta 1\n\tb\n}")
	err := Block(d, func(d *caddyfile.Dispenser) error {
		seen = append(seen, d.Val())
		d.RemainingArgs()
		return nil
	})
	if err != nil || strings.Join(seen, " ") != "a b" {
		t.Fatalf("saw %q, %v", seen, err)
	}
	if err := Block(caddyfile.NewTestDispenser("dir arg"), nil); err == nil {
		t.Fatal("an argument to the directive: no error")
	}
}

func TestListOfParsesEachArgument(t *testing.T) {
	width := func(arg string) (int, error) {
		if arg == "big" {
			return 0, fmt.Errorf("%q is not a width", arg)
		}
		return strconv.Atoi(arg)
	}
	d := caddyfile.NewTestDispenser("sizes 150 300 600")
	d.Next()
	got, err := ListOf(d, width)
	if err != nil || !slices.Equal(got, []int{150, 300, 600}) {
		t.Fatalf("ListOf = %v, %v", got, err)
	}
	d = caddyfile.NewTestDispenser("sizes 150 big")
	d.Next()
	if _, err := ListOf(d, width); err == nil || !strings.Contains(err.Error(), `sizes: "big" is not a width`) {
		t.Fatalf("a bad argument: %v, want the option's name and the argument's problem", err)
	}
	d = caddyfile.NewTestDispenser("sizes")
	d.Next()
	if _, err := ListOf(d, width); err == nil || !strings.Contains(err.Error(), "wrong argument count") {
		t.Fatalf("no argument: %v, want an argument count error", err)
	}
}
