package postgis_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/spark-edge/spark/geocache"
	"github.com/spark-edge/spark/origin/store"
	"github.com/spark-edge/spark/origin/store/postgis"
	"github.com/spark-edge/spark/origin/store/postgis/pgtest"
	"github.com/spark-edge/spark/origin/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTestStore(t) })
}

func TestMigrateIdempotent(t *testing.T) {
	s := openTestStore(t)
	applied, err := postgis.Migrate(context.Background(), s.Primary())
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 0 {
		t.Fatalf("second migrate applied %v", applied)
	}
	ms, err := postgis.Migrations()
	if err != nil || len(ms) == 0 || ms[0].Version != 1 {
		t.Fatalf("embedded migrations: %v %v", ms, err)
	}
}

// TestSuggestionPlanUsesKNNIndex checks the nearest-first query is an index
// scan ordered by distance on the partial (geog, age) GiST index, with the
// age condition inside it, not a sort over everyone in the radius.
func TestSuggestionPlanUsesKNNIndex(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	p := s.Primary()
	if _, err := p.Exec(ctx, `
		INSERT INTO users (name, age, gender, is_active, geog)
		SELECT 'u' || g, 18 + g % 40, (ARRAY['woman','man','nonbinary'])[1 + g % 3], g % 7 <> 0,
		       ST_SetSRID(ST_MakePoint(-3.7 + (g % 100) * 0.001, 40.4 + (g / 100) * 0.001), 4326)::geography
		FROM generate_series(1, 5000) g`); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exec(ctx, `ANALYZE users`); err != nil {
		t.Fatal(err)
	}
	var plan []string
	rows, err := p.Query(ctx, "EXPLAIN "+postgis.SuggestionsSQL(), int64(1), 40.41, -3.69, int16(25), int16(35),
		[]string{"woman"}, 50, 50000.0)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	if !strings.Contains(text, "users_active_geog_age") || !strings.Contains(text, "Order By: (geog <-> ") ||
		!strings.Contains(text, "Index Cond: ((age >= ") {
		t.Fatalf("suggestion query does not use the KNN index with age inside:\n%s", text)
	}
	if strings.Contains(text, "Sort Key: ((u.geog <->") {
		t.Fatalf("suggestion query sorts instead of walking the index:\n%s", text)
	}
}

func withCellCache(c *postgis.Config) { c.CellCache = postgis.CellCacheConfig{Enabled: true} }

// TestConformanceWithCellCache runs the whole suite with suggestions built
// through the cell-candidate cache.
func TestConformanceWithCellCache(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return pgtest.OpenWith(t, "test_postgis", withCellCache)
	})
}

// TestMigrationCellPrecision6 runs migration 0005 on users stored with the
// old precision-5 cells: afterwards every cell is the one the origin
// computes, so loads by prefix find everyone.
func TestMigrationCellPrecision6(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	p := s.Primary()
	if _, err := p.Exec(ctx, `
		INSERT INTO users (name, age, gender, geog, cell)
		SELECT 'u' || g, 30, 'woman', pt, ST_GeoHash(pt::geometry, 5)
		FROM (SELECT g, ST_SetSRID(ST_MakePoint(random() * 360 - 180, random() * 170 - 85), 4326)::geography AS pt
		      FROM generate_series(1, 3000) g) AS r`); err != nil {
		t.Fatal(err)
	}
	// Round coordinates, on cell edges at every precision.
	for _, pt := range [][2]float64{{0, 0}, {45, 90}, {-45, -90}, {48.75, 2.25}, {-16.875, 179.6484375}} {
		if _, err := p.Exec(ctx, `INSERT INTO users (name, age, gender, geog, cell)
			VALUES ('edge', 30, 'woman', ST_SetSRID(ST_MakePoint($2, $1), 4326)::geography, $3)`,
			pt[0], pt[1], geocache.Cell(pt[0], pt[1], 5)); err != nil {
			t.Fatal(err)
		}
	}
	rerunMigration(t, p, 5)
	n := forEachUserPoint(t, p, func(id int64, lat, lng float64, cell string) {
		if want := geocache.Cell(lat, lng, store.CellPrecision); cell != want {
			t.Errorf("user %d at (%v, %v): cell %q after the migration, the origin computes %q", id, lat, lng, cell, want)
		}
	})
	if n != 3005 {
		t.Fatalf("%d users checked", n)
	}
}

// rerunMigration forgets that migration version was applied and migrates:
// it, and only it, must be applied again.
func rerunMigration(t *testing.T, p *pgxpool.Pool, version int) {
	t.Helper()
	ctx := context.Background()
	if _, err := p.Exec(ctx, `DELETE FROM schema_migrations WHERE version = $1`, version); err != nil {
		t.Fatal(err)
	}
	applied, err := postgis.Migrate(ctx, p)
	if err != nil || len(applied) != 1 || applied[0] != version {
		t.Fatalf("migrate from version %d: applied %v, %v", version-1, applied, err)
	}
}

// forEachUserPoint calls check with every user's stored point and cell, in
// id order, and returns how many there were.
func forEachUserPoint(t *testing.T, p *pgxpool.Pool, check func(id int64, lat, lng float64, cell string)) int {
	t.Helper()
	rows, err := p.Query(context.Background(), `SELECT id, ST_Y(geog::geometry), ST_X(geog::geometry), cell FROM users ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var id int64
	var lat, lng float64
	var cell string
	if _, err := pgx.ForEachRow(rows, []any{&id, &lat, &lng, &cell}, func() error {
		n++
		check(id, lat, lng, cell)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMigrationCoarseLocations runs migration 0006 on users stored with
// exact points: afterwards every point is, to the bit, the cell centre
// geocache.SnapToGrid computes, and every cell the geohash of that centre.
// One user per grid row (so every row's column count is compared), random
// points, and points on row and column edges, the poles and ±180°.
func TestMigrationCoarseLocations(t *testing.T) {
	s := openTestStore(t)
	ctx := context.Background()
	p := s.Primary()
	rng := rand.New(rand.NewPCG(6, 6))
	var lats, lngs []float64
	add := func(lat, lng float64) { lats, lngs = append(lats, lat), append(lngs, lng) }
	for r := int32(0); r < geocache.GridRows; r++ {
		add(-90+(float64(r)+rng.Float64())*geocache.GridRowHeightDeg, rng.Float64()*360-180)
	}
	for i := 0; i < 3000; i++ {
		add(rng.Float64()*180-90, rng.Float64()*360-180)
		r := int32(rng.IntN(geocache.GridRows))
		n := geocache.GridColumns(r)
		add(-90+float64(r)*180/geocache.GridRows, -180+float64(rng.Int32N(n))*360/float64(n))
	}
	for _, pt := range [][2]float64{{90, 0}, {-90, 0}, {0, 180}, {0, -180}, {89.9999, 180}, {-16.8, 179.95}, {-16.8, -179.95}} {
		add(pt[0], pt[1])
	}
	if _, err := p.Exec(ctx, `INSERT INTO users (name, age, gender, geog, cell)
		SELECT 'u', 30, 'woman', ST_SetSRID(ST_MakePoint(lng, lat), 4326)::geography, 'stale'
		FROM unnest($1::float8[], $2::float8[]) WITH ORDINALITY AS x(lat, lng, k) ORDER BY k`, lats, lngs); err != nil {
		t.Fatal(err)
	}
	rerunMigration(t, p, 6)
	n := forEachUserPoint(t, p, func(id int64, lat, lng float64, cell string) {
		olat, olng := lats[id-1], lngs[id-1]
		wlat, wlng := geocache.SnapToGrid(olat, olng)
		if lat != wlat || lng != wlng {
			t.Errorf("(%v, %v) snapped by the migration to (%v, %v), by the origin to (%v, %v) (row %d)",
				olat, olng, lat, lng, wlat, wlng, geocache.GridCellOf(olat, olng).Row)
		}
		if want := geocache.Cell(wlat, wlng, store.CellPrecision); cell != want {
			t.Errorf("user %d at (%v, %v): cell %q after the migration, want %q", id, lat, lng, cell, want)
		}
	})
	if n != len(lats) {
		t.Fatalf("%d of %d users checked", n, len(lats))
	}
}
