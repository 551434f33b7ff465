-- 0006: stored locations become coarse. Every located user's point moves to
-- the centre of its cell of the coarse grid (geocache/grid.go: 20,000 rows
-- of 0.009°, floor(360 · cos(row centre) / 0.009) columns per row, at least
-- one), and its precision-6 geohash cell follows the point. From now on the
-- origin stores only such centres (store.Store.SetLocation), so distances,
-- their order and the radius only ever see them. The arithmetic below is
-- geocache.GridCellOf and GridCell.Center step for step, in float8, in the
-- same order (TestMigrationCoarseLocations: every row's column count, random
-- points and points on cell edges give the very same doubles). Rewrites every
-- located user, as 0005 did: run it when location updates can wait.
DROP INDEX IF EXISTS users_cell_prefix;
WITH rowed AS (
    SELECT id, ST_X(geog::geometry) AS lng,
           LEAST(GREATEST(floor((ST_Y(geog::geometry) + 90) * 20000 / 180), 0), 19999) AS r
    FROM users WHERE geog IS NOT NULL
), centred AS (
    SELECT id, lng, -90 + (r + 0.5) * 180 / 20000 AS lat_c FROM rowed
), counted AS (
    SELECT id, lng, lat_c,
           GREATEST(1, floor(360 * cos(lat_c * pi() / 180) / (180::float8 / 20000))) AS n
    FROM centred
), columned AS (
    SELECT id, lat_c, n, floor((lng + 180) * n / 360) AS c FROM counted
), snapped AS (
    SELECT id, lat_c,
           -180 + ((CASE WHEN c >= n THEN c - n ELSE c END) + 0.5) * 360 / n AS lng_c
    FROM columned
)
UPDATE users u
SET geog = ST_SetSRID(ST_MakePoint(s.lng_c, s.lat_c), 4326)::geography,
    cell = ST_GeoHash(ST_SetSRID(ST_MakePoint(s.lng_c, s.lat_c), 4326), 6)
FROM snapped s
WHERE u.id = s.id;
CREATE INDEX users_cell_prefix ON users (cell text_pattern_ops) WHERE is_active;
