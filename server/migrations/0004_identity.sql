-- Who wrote a message, when a verified person did (their token's `sub`); NULL for guests.
ALTER TABLE messages ADD COLUMN user_id TEXT;

-- Revoked users: their tokens issued up to `revoked_at_ms` no longer count.
CREATE TABLE revocations (
    sub            TEXT    PRIMARY KEY,
    revoked_at_ms  INTEGER NOT NULL
) WITHOUT ROWID;

-- Each room's access rules and owner (JSON, `app::rules::RoomRules`); no row: open to everyone.
CREATE TABLE room_rules (
    room   TEXT PRIMARY KEY,
    rules  TEXT NOT NULL
) WITHOUT ROWID;
