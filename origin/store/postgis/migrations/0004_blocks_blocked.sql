-- 0004: blocks by the blocked user, for the one-query load of a user's
-- exclusion set (swiped, blocked, blocked by) behind the cached suggestions.
CREATE INDEX IF NOT EXISTS blocks_blocked ON blocks (blocked_id);
