-- When an inbound message's payloads reached the inbox, so that a delivery interrupted by a
-- crash is done at the next start.

-- +goose Up
ALTER TABLE messages ADD COLUMN delivered_at INTEGER NOT NULL DEFAULT 0;
-- Undelivered: the few received messages whose delivery is not recorded.
CREATE INDEX messages_undelivered ON messages (direction, state, delivered_at);

-- +goose Down
DROP INDEX messages_undelivered;
ALTER TABLE messages DROP COLUMN delivered_at;
