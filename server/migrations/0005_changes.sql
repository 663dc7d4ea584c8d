-- Edits (kind 1) and deletes (kind 2) are entries of a room's sequence like messages (kind 0),
-- each changing an earlier message (target). A message row holds its latest text and when it was
-- last edited; a deleted message, and every edit of it, holds no text at all.
ALTER TABLE messages ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN target INTEGER;
ALTER TABLE messages ADD COLUMN edited_at_ms INTEGER;
ALTER TABLE messages ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;

CREATE INDEX messages_by_target ON messages (room, target) WHERE target IS NOT NULL;
