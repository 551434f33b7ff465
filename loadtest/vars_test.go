package loadtest

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
)

func TestZipfIsSkewedAndCoversIDs(t *testing.T) {
	const n = 1000
	z := NewZipf(n, 1.1)
	rng := rand.New(rand.NewPCG(3, 4))
	counts := make(map[int64]int)
	const draws = 200000
	for i := 0; i < draws; i++ {
		id := z.Sample(rng.Float64())
		if id < 1 || id > n {
			t.Fatalf("id %d out of 1..%d", id, n)
		}
		counts[id]++
	}
	top := z.Sample(0) // rank 0
	if share := float64(counts[top]) / draws; share < 0.10 {
		t.Errorf("most popular id has %.3f of draws, want a Zipf head (> 0.10)", share)
	}
	// The 10 most popular ids take a large share; a uniform draw would give 1%.
	var shares []int
	for _, c := range counts {
		shares = append(shares, c)
	}
	sortDesc(shares)
	top10 := 0
	for _, c := range shares[:10] {
		top10 += c
	}
	if f := float64(top10) / draws; f < 0.3 {
		t.Errorf("top 10 ids take %.2f of draws, want > 0.3", f)
	}
	// Ranks map to distinct ids (a bijection).
	seen := map[int64]bool{}
	for r := 0; r < n; r++ {
		id := (int64(r)*z.m)%z.n + 1
		if seen[id] {
			t.Fatalf("rank %d maps to id %d twice", r, id)
		}
		seen[id] = true
	}
}

func sortDesc(a []int) {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] > a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
}

func TestVarsPartnerAndDirection(t *testing.T) {
	v := func(id int64, users int) Vars { return Vars{vu: NewVU(id, "t", users)} }
	for _, c := range []struct {
		id, users, want int64
	}{{1, 10, 2}, {2, 10, 1}, {9, 10, 10}, {10, 10, 9}, {9, 9, 8}} {
		if got := v(c.id, int(c.users)).Partner(); got != c.want {
			t.Errorf("Partner(%d of %d) = %d, want %d", c.id, c.users, got, c.want)
		}
	}
	x := v(5, 100)
	if d := x.Direction("6"); d != "like" {
		t.Errorf("partner direction = %q, want like", d)
	}
	likes := 0
	for target := 10; target < 1010; target++ {
		s := x.Direction(strconv.Itoa(target))
		if s != x.Direction(strconv.Itoa(target)) {
			t.Fatal("direction not stable for a pair")
		}
		if s == "like" {
			likes++
		}
	}
	if likes < 250 || likes > 420 {
		t.Errorf("%d likes in 1000, want about a third", likes)
	}
	if id := x.RandomUser(); id == 5 || id < 1 || id > 100 {
		t.Errorf("RandomUser = %d", id)
	}
}

func TestVarsPickSkipsUntilCaptured(t *testing.T) {
	vu := NewVU(1, "t", 10)
	x := Vars{vu: vu}
	if _, err := x.Pick("suggested"); !errors.Is(err, ErrSkip) {
		t.Fatalf("Pick before capture: %v, want ErrSkip", err)
	}
	vu.Set("suggested", []string{"7"})
	if got, err := x.Pick("suggested"); err != nil || got != "7" {
		t.Fatalf("Pick = %q, %v", got, err)
	}
	// Through a template, the skip still surfaces as ErrSkip.
	tmpl, err := parseTemplate("t", `/api/users/{{.Pick "other"}}/profile`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := execTemplate(tmpl, x); !errors.Is(err, ErrSkip) {
		t.Errorf("template with empty pick: %v, want ErrSkip", err)
	}
}

func TestExtract(t *testing.T) {
	body := []byte(`{"suggestions":[{"id":12,"name":"a"},{"id":13}],"next":{"cursor":"x"},"flag":true,"none":null}`)
	for path, want := range map[string][]string{
		"suggestions[].id": {"12", "13"},
		"next.cursor":      {"x"},
		"flag":             {"true"},
		"none":             {},
		"missing[].id":     {},
	} {
		got, err := extract(body, path)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("extract(%q) = %v, %v; want %v", path, got, err, want)
		}
	}
	if _, err := extract([]byte("<html>"), "a"); err == nil {
		t.Error("extract from non-JSON: no error")
	}
}

func TestPopularMod(t *testing.T) {
	x := Vars{vu: NewVU(1, "t", 10000), zipf: NewZipf(10000, 1.1)}
	counts := map[int64]int{}
	for i := 0; i < 20000; i++ {
		v := x.PopularMod(256)
		if v < 1 || v > 256 {
			t.Fatalf("PopularMod(256) = %d", v)
		}
		counts[v]++
	}
	top := 0
	for _, c := range counts {
		top = max(top, c)
	}
	if float64(top)/20000 < 0.05 {
		t.Errorf("top blob share %.3f: popularity skew lost", float64(top)/20000)
	}
	if x.PopularMod(0) != 1 {
		t.Error("PopularMod(0) != 1")
	}
}

func TestPickPath(t *testing.T) {
	vu := NewVU(1, "t", 10)
	x := Vars{vu: vu}
	vu.Set("photos", []string{"https://img.example/a.jpg", "/api/users/1/photos/b.jpg"})
	for i := 0; i < 20; i++ {
		if got, err := x.PickPath("photos"); err != nil || got != "/api/users/1/photos/b.jpg" {
			t.Fatalf("PickPath = %q, %v", got, err)
		}
	}
	vu.Set("photos", []string{"https://img.example/a.jpg"})
	if _, err := x.PickPath("photos"); !errors.Is(err, ErrSkip) {
		t.Errorf("PickPath without paths: %v, want ErrSkip", err)
	}
}
