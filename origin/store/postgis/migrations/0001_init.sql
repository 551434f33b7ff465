-- 0001: users, preferences, swipes, blocks, matches, conversations, messages.
-- Design notes: ../../../../shared/design/postgis.md (measured on 2 cores).
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE users (
    id                  bigserial PRIMARY KEY,
    name                text        NOT NULL,
    age                 smallint    NOT NULL CHECK (age BETWEEN 18 AND 120),
    gender              text        NOT NULL CHECK (gender IN ('woman', 'man', 'nonbinary')),
    bio                 text        NOT NULL DEFAULT '',
    photos              text[]      NOT NULL DEFAULT '{}',
    is_active           boolean     NOT NULL DEFAULT true,
    -- geography, not Web Mercator: correct across the ±180° meridian and near
    -- the poles; KNN (<->) on geography is index-assisted.
    geog                geography(Point, 4326),
    cell                text,
    version             bigint      NOT NULL DEFAULT 1,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    location_updated_at timestamptz
);

-- Nearest-first suggestions: KNN on geog with the age condition inside the
-- index (btree_gist), only active users.
CREATE INDEX users_active_geog_age ON users USING gist (geog, age) WHERE is_active;
CREATE INDEX users_cell ON users (cell) WHERE is_active;

CREATE TABLE preferences (
    user_id         bigint   PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    min_age         smallint NOT NULL,
    max_age         smallint NOT NULL,
    max_distance_km integer  NOT NULL,
    genders         text[]   NOT NULL,
    CHECK (min_age <= max_age)
);

-- direction: 1 like, 2 superlike, -1 pass. The primary key serves the
-- suggestion anti-join and the mutual-like lookup.
CREATE TABLE swipes (
    swiper_id  bigint      NOT NULL,
    target_id  bigint      NOT NULL,
    direction  smallint    NOT NULL CHECK (direction IN (-1, 1, 2)),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (swiper_id, target_id)
);

CREATE TABLE blocks (
    blocker_id bigint      NOT NULL,
    blocked_id bigint      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id)
);

CREATE TABLE matches (
    id           bigserial   PRIMARY KEY,
    user_a       bigint      NOT NULL REFERENCES users (id),
    user_b       bigint      NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    unmatched_at timestamptz,
    CHECK (user_a < user_b),
    UNIQUE (user_a, user_b)
);
CREATE INDEX matches_user_b ON matches (user_b);

CREATE TABLE conversations (
    id         bigserial   PRIMARY KEY,
    match_id   bigint      NOT NULL UNIQUE REFERENCES matches (id),
    user_a     bigint      NOT NULL,
    user_b     bigint      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversations_user_a ON conversations (user_a);
CREATE INDEX conversations_user_b ON conversations (user_b);

CREATE TABLE messages (
    id              bigserial   PRIMARY KEY,
    conversation_id bigint      NOT NULL REFERENCES conversations (id),
    sender_id       bigint      NOT NULL,
    body            text        NOT NULL,
    client_msg_id   text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz,
    UNIQUE (conversation_id, sender_id, client_msg_id)
);
-- History, keyset paging newest first.
CREATE INDEX messages_history ON messages (conversation_id, created_at DESC, id DESC) WHERE deleted_at IS NULL;
-- Unread counts: count(*) on a partial index (measured as cheap as a counter
-- table, without taxing every insert); sender_id included for index-only scans.
CREATE INDEX messages_unread ON messages (conversation_id, id) INCLUDE (sender_id) WHERE deleted_at IS NULL;

CREATE TABLE conversation_reads (
    conversation_id      bigint NOT NULL REFERENCES conversations (id),
    user_id              bigint NOT NULL,
    last_read_message_id bigint NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
