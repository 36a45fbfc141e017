-- When an inbound message's payloads reached the inbox, so that a delivery interrupted by a
-- crash is done at the next start.

-- +goose Up
ALTER TABLE messages ADD COLUMN delivered_at BIGINT NOT NULL DEFAULT 0;
-- Undelivered: the few received messages whose delivery is not recorded.
CREATE INDEX messages_undelivered ON messages (id) WHERE direction = 'in' AND state = 'received' AND delivered_at = 0;

-- +goose Down
DROP INDEX messages_undelivered;
ALTER TABLE messages DROP COLUMN delivered_at;
