-- 0005: users' cells go from geohash precision 5 (~4.9 x 4.9 km) to 6
-- (~1.2 x 0.6 km), so a location update invalidates 1/32 of the area it
-- used to and the cell cache reloads only that (store.CellPrecision). The
-- origin computes cells with mmcloughlin/geohash; ST_GeoHash agrees with it
-- (TestMigrationCellPrecision6: random points and points on cell edges; all
-- 1,000,000 seeded users). Rewrites every located user: 37 s for 1,000,000
-- on 2 loaded cores, holding their row locks meanwhile — run it when
-- location updates can wait.
DROP INDEX IF EXISTS users_cell_prefix;
UPDATE users SET cell = ST_GeoHash(geog::geometry, 6)
WHERE geog IS NOT NULL AND cell IS DISTINCT FROM ST_GeoHash(geog::geometry, 6);
CREATE INDEX users_cell_prefix ON users (cell text_pattern_ops) WHERE is_active;
