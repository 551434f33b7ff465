-- 0007: the realtime event log (shared/design: realtime §1) and per-conversation
-- message numbers.
--
-- event_heads holds each user's newest sequence number. A write that
-- appends events locks the heads of the users concerned (ascending user id,
-- so concurrent writes never deadlock), numbers the events from last_seq,
-- inserts them and advances last_seq, all in its own transaction: per user
-- the numbers are gapless and follow commit order, and a write that rolls
-- back leaves no number used. A statement trigger gives every new user a
-- head, so the heads are always there to lock (no insert race on the
-- request path).
-- Half-full pages leave room for heap-only updates: advancing a head
-- touches no index.
CREATE TABLE event_heads (
    user_id  bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    last_seq bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 50);
INSERT INTO event_heads (user_id) SELECT id FROM users;

CREATE FUNCTION event_heads_for_new_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_heads (user_id) SELECT id FROM new_users ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;
CREATE TRIGGER users_event_heads AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_users FOR EACH STATEMENT EXECUTE FUNCTION event_heads_for_new_users();

-- The events, keyed (user_id, seq): the events API reads a range of one
-- user's key. data is json, not jsonb: the bytes published at commit are
-- the bytes read back. No foreign key: a head exists for every user.
-- A user's kept events are always one run of seqs ending at last_seq:
-- retention deletes a prefix, so "is seq N+1 still here" answers whether a
-- client holding N can catch up.
CREATE TABLE events (
    user_id bigint      NOT NULL,
    seq     bigint      NOT NULL,
    kind    text        NOT NULL CHECK (kind IN ('message', 'match', 'read', 'unmatch')),
    at      timestamptz NOT NULL,
    data    json        NOT NULL,
    PRIMARY KEY (user_id, seq)
);

-- Retention (the last 10,000 or 30 days per user, whichever is more) is a
-- background DELETE of each user's oldest events; event_prunes remembers
-- where it got to per user, so a pass looks only at users with more than
-- the count limit left. Only the pruner writes it: it never waits for a
-- writer's head lock, nor a writer for it.
CREATE TABLE event_prunes (
    user_id        bigint PRIMARY KEY,
    pruned_through bigint NOT NULL
);

-- conv_seq numbers a conversation's messages 1, 2, 3 … in commit order;
-- conversations.last_conv_seq is the counter (its row is written only by
-- sends, which already hold both participants' heads). Existing messages
-- are numbered by (created_at, id). Rewrites every message: run it when
-- sends can wait (590,000 seeded messages: a few seconds).
ALTER TABLE conversations ADD COLUMN last_conv_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN conv_seq bigint;
UPDATE messages m SET conv_seq = n.rn
FROM (SELECT id, row_number() OVER (PARTITION BY conversation_id ORDER BY created_at, id) AS rn FROM messages) n
WHERE m.id = n.id;
ALTER TABLE messages ALTER COLUMN conv_seq SET NOT NULL;
CREATE UNIQUE INDEX messages_conv_seq ON messages (conversation_id, conv_seq);
UPDATE conversations c SET last_conv_seq = n.last
FROM (SELECT conversation_id, max(conv_seq) AS last FROM messages GROUP BY conversation_id) n
WHERE c.id = n.conversation_id;
