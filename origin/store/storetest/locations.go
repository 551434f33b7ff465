package storetest

import (
	"fmt"
	"math"
	"testing"

	"github.com/spark-edge/spark/geocache"
	"github.com/spark-edge/spark/origin/store"
)

func testLocation(t *testing.T, s store.Store) {
	id := mk(t, s, "di", 22, "woman", nil, nil)
	ch, err := s.SetLocation(ctx(t), id, store.Point{Lat: 48.8566, Lng: 2.3522})
	if err != nil {
		t.Fatal(err)
	}
	paris, london := snapped(pt(48.8566, 2.3522)), snapped(pt(51.5072, -0.1276))
	if ch.OldCell != "" || ch.NewCell != geocache.Cell(paris.Lat, paris.Lng, store.CellPrecision) || ch.Stored != paris || ch.Kept {
		t.Fatalf("first change: %+v", ch)
	}
	ch2, err := s.SetLocation(ctx(t), id, store.Point{Lat: 51.5072, Lng: -0.1276})
	if err != nil {
		t.Fatal(err)
	}
	if ch2.OldCell != ch.NewCell || ch2.NewCell != geocache.Cell(london.Lat, london.Lng, store.CellPrecision) || ch2.Stored != london || ch2.Kept {
		t.Fatalf("second change: %+v", ch2)
	}
	_, err = s.SetLocation(ctx(t), id+999, store.Point{Lat: 1, Lng: 1})
	wantErr(t, err, store.ErrNotFound, "location of missing user")
	for _, bad := range []store.Point{{Lat: 91}, {Lng: -181}, {Lat: math.NaN()}, {Lng: math.Inf(1)}} {
		_, err = s.SetLocation(ctx(t), id, bad)
		wantErr(t, err, store.ErrInvalid, fmt.Sprintf("bad point %v", bad))
	}
}

// testCoarseLocation: what is stored is the centre of the reported point's
// cell, for new users and moves alike; suggestions measure between centres,
// so two users anywhere in one cell are the same distance from everyone.
func testCoarseLocation(t *testing.T, s store.Store) {
	const lat, lng = 52.5200, 13.4050 // Berlin
	c := geocache.GridCellOf(lat, lng)
	clat, clng := c.Center()
	// Two points of the same cell, on either side of its centre.
	inA, inB := pt(clat-0.003, clng-0.004), pt(clat+0.0035, clng+0.005)
	if geocache.GridCellOf(inA.Lat, inA.Lng) != c || geocache.GridCellOf(inB.Lat, inB.Lng) != c {
		t.Fatal("test points left the cell")
	}
	prefs := &store.Preferences{MinAge: 18, MaxAge: 99, MaxDistanceKm: 50, Genders: []string{"woman"}}
	askers := []*store.Point{offset(lat, lng, 3.3, 20), offset(lat, lng, 7.9, 250), offset(lat, lng, 0.9, 130)}
	var me []int64
	for i, at := range askers {
		me = append(me, mk(t, s, fmt.Sprintf("asker%d", i), 30, "man", at, prefs))
	}
	a := mk(t, s, "a", 30, "woman", inA, nil)
	b := mk(t, s, "b", 30, "woman", inB, nil)
	for i, asker := range me {
		got, err := s.Suggestions(ctx(t), asker, 10)
		if err != nil {
			t.Fatal(err)
		}
		if !equalIDs(ids(got), []int64{a, b}) {
			t.Fatalf("asker %d sees %v, want [%d %d] (equal distances, by id)", i, ids(got), a, b)
		}
		want := geocache.DistanceM(clat, clng, snapped(askers[i]).Lat, snapped(askers[i]).Lng)
		if got[0].DistanceM != got[1].DistanceM || math.Abs(got[0].DistanceM-want) > 1 {
			t.Fatalf("asker %d: distances %.3f and %.3f m, want both %.3f (cell centre to cell centre)", i, got[0].DistanceM, got[1].DistanceM, want)
		}
	}
	// A moved user is stored at the centre of the new cell.
	far := offset(lat, lng, 25, 75)
	ch, err := s.SetLocation(ctx(t), a, *far)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Kept || ch.Stored != snapped(far) || ch.NewCell != geocache.Cell(ch.Stored.Lat, ch.Stored.Lng, store.CellPrecision) ||
		ch.OldCell != geocache.Cell(clat, clng, store.CellPrecision) {
		t.Fatalf("move: %+v, want stored %v", ch, snapped(far))
	}
	got, err := s.Suggestions(ctx(t), me[0], 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].ID != a || math.Abs(got[1].DistanceM-coarseDist(askers[0], far)) > 1 {
		t.Fatalf("after the move: %+v", got)
	}
}

// testLocationHysteresis: a report inside the current cell, or within 0 m
// of it, keeps the stored point; one beyond the largest margin moves it to
// the new cell's centre; in between, either — never anything else.
func testLocationHysteresis(t *testing.T, s store.Store) {
	c := geocache.GridCellOf(-33.8688, 151.2093) // Sydney
	clat, clng := c.Center()
	id := mk(t, s, "walker", 30, "woman", pt(clat, clng), nil)
	north := geocache.GridCell{Row: c.Row + 1, Col: geocache.GridCellOf(clat+geocache.GridRowHeightDeg, clng).Col}
	nlat, nlng := north.Center()
	edge := clat + geocache.GridRowHeightDeg/2 // the boundary with the row to the north
	const mPerDeg = geocache.EarthRadiusM * math.Pi / 180
	for i, step := range []struct {
		lat, lng   float64
		keep, move bool // keep: must keep; move: must move north
	}{
		{clat + 0.002, clng + 0.003, true, false},     // inside the cell
		{edge - 1/mPerDeg, clng - 0.002, true, false}, // a metre inside the edge
		{edge + 100/mPerDeg, clng, false, false},      // 100 m past it: margin decides
		{edge + 250/mPerDeg, clng, false, false},      // 250 m past it: margin decides
		{edge + 450/mPerDeg, clng, false, true},       // beyond any margin
	} {
		// Start each step from the cell's centre.
		if _, err := s.SetLocation(ctx(t), id, store.Point{Lat: clat + 0.03, Lng: clng}); err != nil {
			t.Fatal(err)
		}
		if ch, err := s.SetLocation(ctx(t), id, store.Point{Lat: clat, Lng: clng}); err != nil || ch.Stored != (store.Point{Lat: clat, Lng: clng}) {
			t.Fatalf("step %d: back to the centre: %+v %v", i, ch, err)
		}
		ch, err := s.SetLocation(ctx(t), id, store.Point{Lat: step.lat, Lng: step.lng})
		if err != nil {
			t.Fatal(err)
		}
		kept := ch.Stored == store.Point{Lat: clat, Lng: clng}
		moved := ch.Stored == store.Point{Lat: nlat, Lng: nlng}
		switch {
		case !kept && !moved:
			t.Fatalf("step %d: stored %+v: neither the old centre nor the northern neighbour's", i, ch.Stored)
		case kept != ch.Kept || (kept && ch.NewCell != ch.OldCell):
			t.Fatalf("step %d: change %+v contradicts itself", i, ch)
		case step.keep && !kept:
			t.Fatalf("step %d: a report inside the cell moved the user to %+v", i, ch.Stored)
		case step.move && !moved:
			t.Fatalf("step %d: a report %0.f m past the edge kept the user", i, (step.lat-edge)*mPerDeg)
		}
	}
	// 100 m past the edge over many updates: both outcomes occur (the
	// margin is drawn per update), so the crossing line is not fixed.
	seen := map[bool]int{}
	for i := 0; i < 60 && len(seen) < 2; i++ {
		if _, err := s.SetLocation(ctx(t), id, store.Point{Lat: clat, Lng: clng}); err != nil {
			t.Fatal(err)
		}
		ch, err := s.SetLocation(ctx(t), id, store.Point{Lat: edge + 150/mPerDeg, Lng: clng})
		if err != nil {
			t.Fatal(err)
		}
		seen[ch.Kept]++
	}
	if len(seen) < 2 {
		t.Fatalf("150 m past the edge: always kept=%v in 60 updates; the margin is not drawn per update", seen)
	}
}
