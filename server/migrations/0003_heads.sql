-- Each room's head: the last sequence number given and its timestamp. Kept apart from the
-- messages so that numbering continues after retention removed every message of a room.
CREATE TABLE heads (
    room        TEXT    PRIMARY KEY,
    seq         INTEGER NOT NULL,
    sent_at_ms  INTEGER NOT NULL
) WITHOUT ROWID;

-- SQLite takes the other columns from the row with the max.
INSERT INTO heads (room, seq, sent_at_ms)
    SELECT room, max(seq), sent_at_ms FROM messages GROUP BY room;
