-- 0003: photos uploaded to the origin (POST /api/users/me/photos), by name,
-- oldest first. Kept apart from photos (the URLs PUT /profile replaces) so a
-- profile update never drops an upload whose file is stored. A constant
-- default: no table rewrite.
ALTER TABLE users ADD COLUMN uploads text[] NOT NULL DEFAULT '{}';
