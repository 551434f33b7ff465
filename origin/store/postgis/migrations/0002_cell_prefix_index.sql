-- 0002: the cell-candidate cache loads a geohash cell's active users by
-- prefix of their stored cell; text_pattern_ops makes the byte-wise range
-- (cell ~>=~ prefix AND cell ~<~ prefix || '~') an index range scan.
DROP INDEX IF EXISTS users_cell;
CREATE INDEX users_cell_prefix ON users (cell text_pattern_ops) WHERE is_active;
