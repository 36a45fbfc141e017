-- When an operator last put a failed message back in the queue: the retry policy counts
-- only the failed attempts since then, so a retried message gets a fresh schedule.

-- +goose Up
ALTER TABLE messages ADD COLUMN retried_at BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE messages DROP COLUMN retried_at;
