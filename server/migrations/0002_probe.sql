-- Where the write probe writes (and at once deletes) a little data, to learn whether the disk,
-- or the database's size limit, still has room.
CREATE TABLE probe (
    id   INTEGER PRIMARY KEY,
    pad  BLOB NOT NULL
);
