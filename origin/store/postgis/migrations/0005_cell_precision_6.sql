-- 0005: users' cells go from geohash precision 5 (~4.9 x 4.9 km) to 6
-- (~1.2 x 0.6 km), so a location update invalidates 1/32 of the area it
-- used to and the cell cache reloads only that (store.CellPrecision). The
-- origin computes cells with mmcloughlin/geohash; ST_GeoHash agrees with it
-- except for a point lying exactly on a cell edge, which the user's next
-- location update puts right.
DROP INDEX IF EXISTS users_cell_prefix;
UPDATE users SET cell = ST_GeoHash(geog::geometry, 6)
WHERE geog IS NOT NULL AND cell IS DISTINCT FROM ST_GeoHash(geog::geometry, 6);
CREATE INDEX users_cell_prefix ON users (cell text_pattern_ops) WHERE is_active;
