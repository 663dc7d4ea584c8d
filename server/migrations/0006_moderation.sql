-- Moderation: each room's mutes and bans (one per kind and target, until a time), its audit log
-- (the latest entries are kept), and the address each guest last posted from (kept a week, so a
-- moderator can act on a guest's message).
CREATE TABLE sanctions (
    room TEXT NOT NULL,
    key TEXT NOT NULL,
    until_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (room, key)
) WITHOUT ROWID;

CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    room TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX audit_by_room ON audit (room, id);

CREATE TABLE guest_addresses (
    room TEXT NOT NULL,
    scope TEXT NOT NULL,
    address TEXT NOT NULL,
    seen_ms INTEGER NOT NULL,
    PRIMARY KEY (room, scope)
) WITHOUT ROWID;
CREATE INDEX guest_addresses_by_age ON guest_addresses (seen_ms);
