-- Every room's messages. (room, seq) is the identity and the order; client_id makes sends
-- idempotent per room.
CREATE TABLE messages (
    room        TEXT    NOT NULL,
    seq         INTEGER NOT NULL CHECK (seq > 0),
    id          TEXT    NOT NULL,
    sender      TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    sent_at_ms  INTEGER NOT NULL,
    client_id   TEXT    NOT NULL,
    PRIMARY KEY (room, seq)
) WITHOUT ROWID;

CREATE UNIQUE INDEX messages_by_client_id ON messages (room, client_id);
