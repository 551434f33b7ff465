-- Push notification devices (issue 13). A token belongs to one app install
-- on one phone, so (platform, token) is the key: registering it under
-- another user moves it. A user keeps at most store.MaxDevicesPerUser
-- devices; PutDevice removes the least recently updated beyond that, in
-- the transaction that registered the new one (under the user's row lock).
CREATE TABLE push_devices (
    platform   text        NOT NULL CHECK (platform IN ('ios', 'android')),
    token      text        NOT NULL,
    user_id    bigint      NOT NULL REFERENCES users (id),
    app_id     text        NOT NULL,
    locale     text        NOT NULL,
    previews   boolean     NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (platform, token)
);
CREATE INDEX push_devices_user ON push_devices (user_id, updated_at DESC);
